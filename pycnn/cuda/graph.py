"""A Graph on a CUDA backend (Graph.to('cuda') / Graph.to('cuda_emu')): every node run by the
backend's kernels with its weights moved to the device once (convolutions as DeviceConv, whose
Winograd weights are transformed there on first use; batch norm folded to a per-channel scale and
shift; linear layers' effective weights). Nodes that only relabel a shape are reshapes of the
device array; an operator with no CUDA kernel (embedding lookups, reduce_max, an adaptive
pooling that does not divide evenly) runs its NumPy reference on a host copy, and
DeviceGraph.host_nodes names those.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import device as _device
from .. import layers
from ..ops import fold_batch_norm

_VIEWS = ("flatten", "reshape", "squeeze", "unsqueeze", "identity")


class DeviceGraph:
    """graph's nodes on backend's device; called as the Graph is: g(x) -> the output (a device
    array: CuPy on 'cuda', NumPy on 'cuda_emu') or {name: output} for several outputs."""

    def __init__(self, graph, backend) -> None:
        self.graph = graph
        self.backend = backend
        self.device = backend.device
        self.host_nodes: list = []
        self._steps = [(n, self._build(n)) for n in graph.nodes]

    def __repr__(self) -> str:
        return f"DeviceGraph({self.graph.name!r} on {self.device!r}, {len(self._steps)} nodes)"

    @property
    def name(self) -> str:
        return self.graph.name

    # ------------------------------------------------------------------ building
    def _build(self, n):
        be, m = self.backend, self.backend.memory
        a, p = n.attrs, n.params
        dev = lambda v: None if v is None else m.from_host(v)  # noqa: E731
        op = n.op
        if op == "conv2d":
            conv = be.prepare_conv(
                dev(p["weight"]),
                dev(p.get("bias")),
                a["stride"],
                a["padding"],
                a["dilation"],
                a["groups"],
                activation=a["activation"],
            )
            return lambda xs: conv(xs[0])
        if op == "linear":
            w, b = layers.Linear._effective(a, p)
            wd, bd, act = dev(w), dev(b), a["activation"]
            return lambda xs: be.linear(xs[0], wd, bd, activation=act)
        if op == "batch_norm":
            scale, shift = fold_batch_norm(
                p["running_mean"], p["running_var"], p.get("weight"), p.get("bias"), a["eps"]
            )
            sd, hd, relu = dev(scale), dev(shift), a["activation"] == "relu"
            return lambda xs: be.channel_affine(xs[0], sd, hd, relu)
        if op == "relu":
            return lambda xs: be.relu(xs[0])
        if op == "max_pool2d":
            return lambda xs: be.max_pool2d(xs[0], a["kernel"], a["stride"], a["padding"], 1, a["ceil_mode"])
        if op == "avg_pool2d":
            return lambda xs: be.avg_pool2d(
                xs[0], a["kernel"], a["stride"], a["padding"], a["ceil_mode"], a["count_include_pad"]
            )
        if op == "global_avg_pool2d":
            return lambda xs: be.global_avg_pool2d(xs[0])
        if op == "adaptive_avg_pool2d":
            return self._adaptive(n)
        if op == "local_response_norm":
            return lambda xs: be.local_response_norm(xs[0], a["size"], a["alpha"], a["beta"], a["k"])
        if op == "add":
            return lambda xs: be.add(xs[0], xs[1], activation=a["activation"])
        if op == "concat":
            return lambda xs: be.concat(list(xs), a["axis"])
        if op == "softmax":
            run = layers.Softmax._wrap(a, be.softmax)
            return lambda xs: run(xs[0])
        if op == "bias_add":
            bias = dev(p["bias"])
            return lambda xs: be.add(xs[0], m.xp.ascontiguousarray(m.xp.broadcast_to(bias, xs[0].shape)))
        if op in _VIEWS:
            spec = layers.OPS[op]
            return lambda xs: spec.reference(a, p, xs)
        return self._on_host(n)

    def _adaptive(self, n):
        be = self.backend
        Ho, Wo = n.attrs["output_size"]
        host = self._on_host(n, record=False)

        def run(xs):
            x = xs[0]
            H, W = x.shape[2:]
            if (Ho, Wo) == (1, 1):
                return be.global_avg_pool2d(x)
            if H % Ho == 0 and W % Wo == 0:
                return be.avg_pool2d(x, (H // Ho, W // Wo))
            if n.name not in self.host_nodes:
                self.host_nodes.append(n.name)
            return host(xs)

        return run

    def _on_host(self, n, record: bool = True):
        m = self.backend.memory
        spec = layers.OPS[n.op]
        if record:
            self.host_nodes.append(n.name)

        def run(xs):
            ys = spec.reference(n.attrs, n.params, [m.to_host(x) for x in xs])
            y = np.asarray(ys)
            return m.xp.asarray(y) if y.dtype.kind in "iu" else m.from_host(y)

        return run

    # ------------------------------------------------------------------ running
    def _feed(self, x) -> dict:
        m = self.backend.memory
        items = x.items() if isinstance(x, dict) else [(next(iter(self.graph.inputs)), x)]
        if not isinstance(x, dict) and len(self.graph.inputs) != 1:
            raise TypeError(f"x: this graph has inputs {sorted(self.graph.inputs)}; pass a dict")
        env = {}
        for k, v in items:
            if k not in self.graph.inputs:
                raise ValueError(f"x: unexpected input {k!r}; expected {sorted(self.graph.inputs)}")
            if self.graph.input_dtypes[k] == "int64":
                env[k] = m.xp.asarray(m.to_host(v) if _device.device_of(v) != "cpu" else np.asarray(v))
            elif _device.device_of(v) == "cpu" and self.device == "cuda":
                env[k] = m.from_host(v)  # a NumPy input is copied in
            else:
                env[k] = m.asarray(v, "x" if not isinstance(x, dict) else f"x[{k!r}]")
        self.graph.checked_shapes({k: tuple(v.shape) for k, v in env.items()})
        return env

    def __call__(self, x: Any):
        env = self._feed(x)
        for n, run in self._steps:
            env[n.output] = run([env[t] for t in n.inputs])
        outs = self.graph.outputs
        return env[outs[0]] if len(outs) == 1 else {t: env[t] for t in outs}

    run = __call__

    def to(self, device: str):
        """On another device: the CPU Graph this came from, or the graph moved there."""
        if _device.check(device) == self.device:
            return self
        return self.graph.to(device)


__all__ = ["DeviceGraph"]
