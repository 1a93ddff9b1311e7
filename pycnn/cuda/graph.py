"""A Graph on a CUDA backend (Graph.to('cuda') / Graph.to('cuda_emu')).

The plan is the CPU's fusion passes (pycnn/graph/passes.py): identities aliased, batch norm
folded into the conv before it, a residual add run in the conv's epilogue, a ReLU in the conv /
linear / add / batch norm before it; each intermediate is freed after its last reader, so CuPy's
caching pool hands its memory to the next step (summary() reports the plan's device peak). The
weights go to the device once (convolutions as DeviceConv, whose Winograd weights are
transformed there on first use). Every kernel is launched on the current stream, with no host
synchronization inside a run, except for the steps DeviceGraph.host_nodes names: an operator
with no CUDA kernel (an embedding lookup, reduce_max, LayerNorm over the last axis, an adaptive
pooling that does not divide evenly) runs its NumPy reference on a host copy. ONNX's
element-wise functions and broadcasting binary ops (squeeze-and-excitation's x * gate, SiLU's
x * sigmoid(x)) and LayerNorm over channels run as CUDA kernels, Slice as a device copy.

cuda_graph=True (on 'cuda' only) captures a whole run per input shape into a CUDA graph and
replays it: one launch per run instead of one per kernel.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from .. import device as _device
from .. import layers, reference
from ..graph import passes, report
from ..graph.fusion import nbytes
from ..layout import hw_axes
from ..ops import fold_batch_norm
from .backend import UNARY

_VIEWS = ("flatten", "reshape", "squeeze", "unsqueeze", "identity")
# The CPU plan's fusions; the kernels are made here, for the device (no conv banks, no max maps).
_DEVICE_PASSES = (
    passes.alias_identities,
    passes.fold_batch_norm,
    passes.fuse_residual_add,
    passes.fuse_relu,
    passes.mark_dead_tensors,
)


class DeviceGraph:
    """graph's plan on backend's device; called as the Graph is: g(x) -> the output (a device
    array: CuPy on 'cuda', NumPy on 'cuda_emu') or {name: output} for several outputs. x: device
    arrays, or NumPy arrays (copied in)."""

    def __init__(self, graph, backend, cuda_graph: bool = False) -> None:
        if cuda_graph and backend.device != "cuda":
            raise ValueError(
                f"cuda_graph: CUDA graph capture needs the 'cuda' device, not {backend.device!r} "
                f"(the emulator runs each launch as it comes)"
            )
        self.graph = graph
        self.backend = backend
        self.device = backend.device
        self.cuda_graph = bool(cuda_graph)
        self.host_nodes: list = []
        ctx = passes.PlanContext(tuple(graph.inputs), tuple(graph.outputs), graph.infer_shapes(), "auto")
        self.steps = passes.build_plan(graph.nodes, ctx, _DEVICE_PASSES)
        self._runs = [self._build(s) for s in self.steps]
        self._captured: dict = {}  # input shapes -> (CUDA graph, static inputs, static outputs, stream)
        self.last_peak_bytes = 0

    def __repr__(self) -> str:
        return f"DeviceGraph({self.graph.name!r} on {self.device!r}, {len(self.steps)} plan steps)"

    @property
    def name(self) -> str:
        return self.graph.name

    # ------------------------------------------------------------------ building
    def _build(self, s):
        be, m = self.backend, self.backend.memory
        a, p = s.attrs, s.params
        dev = lambda v: None if v is None else m.from_host(v)  # noqa: E731
        op = s.op
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
            s.conv = conv
            if len(s.inputs) == 2:  # a residual add fused into the epilogue
                return lambda xs: conv(xs[0], residual=xs[1])
            return lambda xs: conv(xs[0])
        if op == "linear":
            w, b = layers.Linear._effective(a, p)
            wd, bd, act = dev(w), dev(b), a["activation"]

            def linear(xs):  # (N, ..., In) as the matrix (N * ..., In): features are the last axis
                x = xs[0]
                if x.ndim == 2:
                    return be.linear(x, wd, bd, activation=act)
                return be.linear(x.reshape(-1, x.shape[-1]), wd, bd, activation=act).reshape(x.shape[:-1] + (-1,))

            return linear
        if op == "batch_norm":
            stats = (p["running_mean"], p["running_var"], p.get("weight"), p.get("bias"))
            scale, shift = fold_batch_norm(*stats, a["eps"])
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
            return self._adaptive(s)
        if op == "local_response_norm":
            return lambda xs: be.local_response_norm(xs[0], a["size"], a["alpha"], a["beta"], a["k"])
        if op == "add":

            def add(xs):
                if tuple(xs[0].shape) == tuple(xs[1].shape):
                    return be.add(xs[0], xs[1], activation=a["activation"])
                y = be.binary(xs[0], xs[1], "add")  # ONNX broadcasting
                return be.relu(y) if a["activation"] == "relu" else y

            return add
        if op == "concat":
            return lambda xs: be.concat(list(xs), a["axis"])
        if op == "softmax":
            run = layers.Softmax._wrap(a, be.softmax)
            return lambda xs: run(xs[0])
        if op == "bias_add":
            bias = dev(p["bias"])
            return lambda xs: be.binary(xs[0], bias, "add")  # broadcast in the kernel, no full-size copy
        if op == "transpose":  # a copy in the new axis order, on the device (CuPy / NumPy)
            perm = a["perm"]
            return lambda xs: m.xp.ascontiguousarray(m.xp.transpose(xs[0], perm))
        if op == "reduce_mean":
            host = self._on_host(s, record=False)

            def mean(xs):  # over H and W: the global average pooling kernel
                x = xs[0]
                if x.ndim == 4 and hw_axes(a["axes"]):
                    y = be.global_avg_pool2d(x)
                    return y if a["keepdims"] else y.reshape(x.shape[:2])
                if s.names[0] not in self.host_nodes:
                    self.host_nodes.append(s.names[0])
                return host(xs)

            return mean
        if op == "unary" and a["fn"] in UNARY:
            fn, args = a["fn"], (a.get("alpha"), a.get("beta"), a.get("lo"), a.get("hi"))
            return lambda xs: be.unary(xs[0], fn, *args)
        if op == "binary" and len(s.inputs) + ("other" in p) == 2:
            fn = a["fn"]
            if "other" not in p:
                return lambda xs: be.binary(xs[0], xs[1], fn)
            od = dev(p["other"])
            if a.get("const_first"):
                return lambda xs: be.binary(od, xs[0], fn)
            return lambda xs: be.binary(xs[0], od, fn)
        if op == "channel_norm":  # ConvNeXt's LayerNorm over channels
            w, b, made = p.get("weight"), p.get("bias"), {}

            def norm(xs):
                x = xs[0]
                C = x.shape[1]
                if C not in made:  # on the device once (1 and 0 where the node has no weight or bias)
                    ones, zeros = np.ones(C, np.float32), np.zeros(C, np.float32)
                    made[C] = (dev(ones if w is None else w.reshape(-1)), dev(zeros if b is None else b.reshape(-1)))
                return be.channel_norm(x, *made[C], a["eps"])

            return norm
        if op == "slice":  # a device copy of the sliced view
            spec = (a["starts"], a["ends"], a["axes"], a["steps"])
            return lambda xs: m.xp.ascontiguousarray(xs[0][reference.slice_index(xs[0].shape, *spec)])
        if op in _VIEWS:
            spec = layers.OPS[op]
            return lambda xs: spec.reference(a, p, xs)
        return self._on_host(s)

    def _adaptive(self, s):
        be = self.backend
        Ho, Wo = s.attrs["output_size"]
        host = self._on_host(s, record=False)

        def run(xs):
            x = xs[0]
            H, W = x.shape[2:]
            if (Ho, Wo) == (1, 1):
                return be.global_avg_pool2d(x)
            if H % Ho == 0 and W % Wo == 0:
                return be.avg_pool2d(x, (H // Ho, W // Wo))
            if s.names[0] not in self.host_nodes:
                self.host_nodes.append(s.names[0])
            return host(xs)

        return run

    def _on_host(self, s, record: bool = True):
        m = self.backend.memory
        spec = layers.OPS[s.op]
        if record:
            self.host_nodes.extend(s.names)

        def run(xs):
            y = np.asarray(spec.reference(s.attrs, s.params, [m.to_host(x) for x in xs]))
            return m.xp.asarray(y) if y.dtype.kind in "iu" else m.from_host(y)

        return run

    # ------------------------------------------------------------------ running
    def _feed(self, x) -> dict:
        m = self.backend.memory
        if not isinstance(x, dict) and len(self.graph.inputs) != 1:
            raise TypeError(f"x: this graph has inputs {sorted(self.graph.inputs)}; pass a dict")
        items = x.items() if isinstance(x, dict) else [(next(iter(self.graph.inputs)), x)]
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
        missing = set(self.graph.inputs) - set(env)
        if missing:
            raise ValueError(f"x: missing inputs {sorted(missing)}")
        self.graph.checked_shapes({k: tuple(v.shape) for k, v in env.items()})
        return env

    def _run(self, env: dict, track: bool = False) -> dict:
        peak = _live_bytes(env) if track else 0
        for s, run in zip(self.steps, self._runs):
            env[s.output] = run([env[t] for t in s.inputs])
            if track:
                peak = max(peak, _live_bytes(env))
            for t in s.free:
                del env[t]
        if track:
            self.last_peak_bytes = peak
        return env

    def _outputs(self, env):
        outs = self.graph.outputs
        return env[outs[0]] if len(outs) == 1 else {t: env[t] for t in outs}

    def __call__(self, x: Any):
        env = self._feed(x)
        if self.cuda_graph:
            return self._replay(env)
        return self._outputs(self._run(env))

    run = __call__

    def measure_peak(self, x: Any) -> int:
        """Run x once and return the largest sum of live device bytes seen after a step."""
        self._run(self._feed(x), track=True)
        return self.last_peak_bytes

    def _replay(self, env: dict):
        """The run as a captured CUDA graph: captured on the first call with these input shapes
        (after one plain run, so CuPy's pool already holds every block the run takes)."""
        if self.host_nodes:
            raise ValueError(f"cuda_graph: steps run on the host ({self.host_nodes}) cannot be captured")
        cp = self.backend.memory.xp
        key = tuple(sorted((k, tuple(v.shape)) for k, v in env.items()))
        entry = self._captured.get(key)
        if entry is None:
            stream = cp.cuda.Stream(non_blocking=True)
            static_in = {k: v.copy() for k, v in env.items()}
            with stream:
                self._run(dict(static_in))  # warm-up: allocations and Winograd transforms happen here
                stream.synchronize()
                stream.begin_capture()
                out = self._outputs(self._run(dict(static_in)))
                graph = stream.end_capture()
            entry = self._captured[key] = (graph, static_in, out, stream)
        graph, static_in, out, stream = entry
        stream.wait_event(cp.cuda.get_current_stream().record())
        with stream:
            for k, v in env.items():
                cp.copyto(static_in[k], v)
            graph.launch(stream)
            result = {k: v.copy() for k, v in out.items()} if isinstance(out, dict) else out.copy()
        cp.cuda.get_current_stream().wait_event(stream.record())
        return result

    def to(self, device: str, **options):
        """On another device: the CPU Graph this came from, or the graph moved there."""
        if _device.check(device) == self.device and not options:
            return self
        return self.graph.to(device, **options)

    # ------------------------------------------------------------------ reports
    def peak_bytes(self, shapes: dict) -> int:
        """Largest sum of live device bytes while the plan runs at these input shapes (inputs
        included; reshapes are views and cost nothing)."""
        all_shapes = self.graph.infer_shapes(shapes)
        size = {t: nbytes(s) for t, s in all_shapes.items()}
        root = {}  # a view's tensor -> the tensor whose memory it shares
        holders = dict.fromkeys(shapes, 1)  # memory -> how many live tensors use it
        live = sum(size[k] for k in shapes)
        peak = live
        for s in self.steps:
            if s.op in _VIEWS:
                r = root.get(s.inputs[0], s.inputs[0])
                root[s.output] = r
                holders[r] = holders.get(r, 0) + 1
            else:
                holders[s.output] = 1
                live += size[s.output]
            peak = max(peak, live)
            for t in s.free:
                r = root.get(t, t)
                holders[r] -= 1
                if holders[r] == 0 and r not in shapes:  # the caller's inputs stay the caller's
                    live -= size[r]
        return peak

    def summary(self, batch: int = 1) -> report.Summary:
        """The Graph's summary, with the peak of this device plan's freeing schedule."""
        s = self.graph.summary(batch)
        s.peak_bytes = self.peak_bytes(self.graph.example_shapes(batch))
        return s

    def profile(self, x: Any, runs: int = 10, warmup: int = 2) -> report.Profile:
        """Per plan step the median time (CUDA events on a GPU, the host clock on the emulator),
        GFLOP/s, algorithm and live device bytes after it; the whole run's median too."""
        env0 = self._feed(x)
        shapes = self.graph.infer_shapes({k: tuple(v.shape) for k, v in env0.items()})
        node = {n.name: n for n in self.graph.nodes}
        be = self.backend
        times = [[] for _ in self.steps]
        totals, live_after = [], [0] * len(self.steps)
        for it in range(warmup + runs):
            env = dict(env0)
            t0 = time.perf_counter()
            for i, (s, run) in enumerate(zip(self.steps, self._runs)):
                ms = be.time_ms(
                    lambda s=s, run=run, env=env: env.__setitem__(s.output, run([env[t] for t in s.inputs]))
                )
                for t in s.free:
                    env.pop(t)
                if it >= warmup:
                    times[i].append(ms / 1e3)
                    live_after[i] = _live_bytes(env)
            if it >= warmup:
                totals.append(time.perf_counter() - t0)
        rows = []
        for i, s in enumerate(self.steps):
            head = node[s.names[0]]
            flops = layers.OPS[head.op].flops(head.attrs, [shapes[t] for t in head.inputs], shapes[head.output])
            algo = s.conv.resolve(s.conv.shape(shapes[s.inputs[0]])) if s.op == "conv2d" else s.op
            rows.append(("+".join(s.names), s.op, shapes[s.output], float(np.median(times[i])), flops, algo,
                         live_after[i]))  # fmt: skip
        out0 = shapes[self.graph.outputs[0]]
        p = report.Profile(self.name, out0[0] if out0 else 1, rows, float(np.median(totals)), 0)
        p.where = self.device
        return p


def _live_bytes(env: dict) -> int:
    """Bytes of the distinct buffers env's arrays use (a reshape shares its source's)."""
    seen = {}
    for a in env.values():
        mem = getattr(getattr(a, "data", None), "mem", None)  # CuPy: the allocation
        if mem is None:
            base = a
            while isinstance(base, np.ndarray) and base.base is not None:
                base = base.base
            mem = base
        seen[id(mem)] = max(seen.get(id(mem), 0), int(getattr(mem, "nbytes", getattr(mem, "size", 0))))
    return sum(seen.values())


__all__ = ["DeviceGraph"]
