"""Graph: the network as written (named nodes), its shapes, its plan and the run loop.

A Graph holds the logical network exactly as it was written (one Node per PyTorch module or ONNX
operator, so state_dict keys are PyTorch's) and, next to it, a plan made when the Graph is built
or its weights change (pycnn/graph/passes.py: fusions, prepared weights, conv banks, dead
tensors), bound per input shape on the first run with that shape (pycnn/graph/binding.py:
layouts, concat elision). Tensors are NCHW float32; the first dimension of every input and
output is the batch.
"""

from __future__ import annotations

import os
from typing import Optional, Union

import numpy as np
from numpy.typing import ArrayLike

from .. import _C, _graph_file, registry
from .. import device as _device
from .._validate import F32, as_array, as_int, nhwc_hint
from ..layers import OPS
from . import binding, pad_channels, passes, report, weights
from .node import Node
from .report import Profile, Summary


class Graph:
    """g = Graph(inputs={'x': (None, 3, 224, 224)}, nodes=[...], outputs=['prob']); y = g(x).

    inputs: name -> shape with None for the batch (the declared shape is what summary() and
    random inputs use; other spatial sizes run when every node accepts them); an input whose
    first dimension is an int instead (a weight fed at run time) is not batched and must have it. input_dtypes:
    name -> 'float32' (default) or 'int64' (token ids). algo: the conv algorithm of every layer
    ('auto' by default; one named algorithm runs where it can and auto's choice elsewhere).
    ignore_keys: prefixes of state_dict keys that load_state_dict skips (GoogLeNet's
    auxiliary heads)."""

    device = _device.CPU

    def __init__(
        self, inputs, nodes, outputs, *, name="graph", input_dtypes=None, algo="auto", ignore_keys=(), meta=None
    ):
        self.name = name
        self.inputs = {k: tuple(v) for k, v in inputs.items()}
        self.input_dtypes = {k: (input_dtypes or {}).get(k, "float32") for k in self.inputs}
        self.nodes = list(nodes)
        self.outputs = list(outputs)
        self.ignore_keys = tuple(ignore_keys)
        self.meta = dict(meta or {})
        seen = set(self.inputs)
        names = set()
        for n in self.nodes:
            if n.name in names:
                raise ValueError(f"node {n.name!r}: duplicate node name")
            names.add(n.name)
            for t in n.inputs:
                if t not in seen:
                    raise ValueError(
                        f"node {n.name!r} ({n.op}): input {t!r} is not a graph input or an earlier node's output"
                    )
            if n.output in seen:
                raise ValueError(f"node {n.name!r}: output {n.output!r} is produced twice")
            seen.add(n.output)
        for t in self.outputs:
            if t not in seen:
                raise ValueError(f"outputs: {t!r} is not produced by any node")
        keys = [k for n in self.nodes for k in n.keys.values()]
        dup = sorted({k for k in keys if keys.count(k) > 1})
        if dup:
            raise ValueError(f"duplicate parameter keys: {dup}")
        self._shape_cache = {}
        self.infer_shapes()  # at the declared input shape: errors name the node and the shapes
        self._algo = None
        self.set_algo(algo)

    # ------------------------------------------------------------------ shapes
    def example_shapes(self, batch: int = 1) -> dict:
        """The declared input shapes with this batch size."""
        batch = as_int(batch, "batch", 1)
        out = {}
        for k, s in self.inputs.items():
            if any(d is None for d in s[1:]):
                raise ValueError(f"input {k!r}: declared shape {s} has free dimensions besides the batch")
            out[k] = (batch if s[0] is None else s[0],) + tuple(s[1:])  # a fixed first dimension stays
        return out

    def infer_shapes(self, input_shapes: Optional[dict] = None) -> dict:
        """Shape of every tensor for the given input shapes (default: the declared ones, batch 1)."""
        if input_shapes is None:
            input_shapes = self.example_shapes()
        key = tuple(sorted((k, tuple(v)) for k, v in input_shapes.items()))
        hit = self._shape_cache.get(key)
        if hit is not None:
            return hit
        shapes = {k: tuple(int(d) for d in v) for k, v in input_shapes.items()}
        for n in self.nodes:
            ins = [shapes[t] for t in n.inputs]
            try:
                shapes[n.output] = tuple(int(d) for d in OPS[n.op].infer(n.attrs, n.params, ins))
            except ValueError as e:
                raise ValueError(f"node {n.name!r} ({n.op}): {e}; input shapes {ins}") from None
        if len(self._shape_cache) < 32:
            self._shape_cache[key] = shapes
        return shapes

    def checked_shapes(self, input_shapes: dict) -> dict:
        """infer_shapes for a run's inputs, checked against the declared inputs first: a 4-D
        input must have the declared channel count (dimension 1; NHWC gets a hint), and where
        other sizes differ from the declared ones (another image size) a node that refuses them
        is reported with the declared shape beside it."""
        for k, shape in input_shapes.items():
            decl = self.inputs[k]
            label = "x" if len(self.inputs) == 1 else f"x[{k!r}]"
            if len(decl) == 4 and decl[1] is not None and shape[1] != decl[1]:
                raise ValueError(
                    f"{label}: graph {self.name!r} declares input {k!r} as {_fmt_shape(decl)}, "
                    f"got shape {tuple(shape)}{nhwc_hint(shape, decl[1])}"
                )
        try:
            return self.infer_shapes(input_shapes)
        except ValueError as e:
            differ = {
                k: (s, self.inputs[k])
                for k, s in input_shapes.items()
                if any(d is not None and d != v for d, v in zip(self.inputs[k][1:], s[1:]))
            }
            if not differ:
                raise
            what = "; ".join(
                f"input {k!r} has shape {tuple(s)} where the graph declares {_fmt_shape(d)}"
                for k, (s, d) in differ.items()
            )
            raise ValueError(f"x: {what}, and the network does not accept that size: {e}") from None

    # ------------------------------------------------------------------ plan
    @property
    def algo(self) -> str:
        return self._algo

    def set_algo(self, algo: str) -> Graph:
        """Choose the conv algorithm of every layer and re-prepare the plan."""
        registry.get(algo)  # a known name (ValueError listing them otherwise)
        self._algo = algo
        self._build_plan()
        return self

    def _build_plan(self):
        ctx = passes.PlanContext(tuple(self.inputs), tuple(self.outputs), self.infer_shapes(), self._algo)
        self._steps = passes.build_plan(self.nodes, ctx)
        self._padded = ctx.padded  # tensor -> stored channels (pycnn/graph/pad_channels.py)
        self._bound = {}  # input shapes -> the plan bound to them (bound_plan)
        self._arena = None  # the runs' NumPy allocator, made with the first plan that needs one (_arena_for)

    @property
    def plan_steps(self) -> list:
        """The plan's Steps (pycnn/graph/step.py), in execution order."""
        return self._steps

    def plan(self) -> list:
        """The execution plan as data: [(fused node names, op, inputs, output, attrs, params)],
        params being the effective weights (what an exporter such as bench/ncnn_export.py writes).
        A conv bank step is listed as the steps it fuses (its convs, then the concat)."""
        return [
            (list(s.names), s.op, list(s.inputs), s.output, dict(s.attrs), dict(s.params))
            for b in self._steps
            for s in (b.parts or [b])
        ]

    @property
    def steps(self) -> list:
        """The execution plan: [(fused node names, op, inputs, output)]."""
        return [(list(s.names), s.op, list(s.inputs), s.output) for s in self._steps]

    # ------------------------------------------------------------------ run
    def feed(self, x) -> dict:
        """The inputs of a run, checked: {input name: array}."""
        # The common call, one float32 input as a C-contiguous array of its declared rank: what the
        # checks below would accept unchanged (~0.3 us saved per run).
        if type(x) is np.ndarray and x.dtype is F32 and len(self.inputs) == 1 and x.flags.c_contiguous and x.size:
            ((k, decl),) = self.inputs.items()
            if x.ndim == len(decl) and self.input_dtypes[k] == "float32":
                return {k: x}
        if isinstance(x, dict):
            missing = set(self.inputs) - set(x)
            extra = set(x) - set(self.inputs)
            if missing or extra:
                raise ValueError(
                    f"x: expected inputs {sorted(self.inputs)}, missing {sorted(missing)}, unexpected {sorted(extra)}"
                )
            items = x.items()
        else:
            if len(self.inputs) != 1:
                raise TypeError(f"x: this graph has inputs {sorted(self.inputs)}; pass a dict")
            items = [(next(iter(self.inputs)), x)]
        env = {}
        for k, v in items:
            label = "x" if not isinstance(x, dict) else f"x[{k!r}]"
            if self.input_dtypes[k] == "int64":
                if v is None or hasattr(v, "__cuda_array_interface__"):
                    raise TypeError(f"{label}: expected an integer NumPy array of token ids")
                a = np.asarray(v)
                if a.dtype.kind not in "iu":
                    raise TypeError(f"{label}: expected integer token ids, got dtype {a.dtype}")
                a = a.astype(np.int64, copy=False)
            else:
                a = as_array(v, label)
            decl = self.inputs[k]
            if a.ndim != len(decl):
                raise ValueError(f"{label}: expected {len(decl)} dimensions like {decl}, got shape {a.shape}")
            if decl and decl[0] is not None and a.shape[0] != decl[0]:
                raise ValueError(f"{label}: input {k!r} is not batched: expected shape {decl}, got {a.shape}")
            if a.size == 0 and (a.ndim == 0 or a.shape[0] != 0 or 0 in a.shape[1:]):
                raise ValueError(f"{label}: empty input, shape {a.shape} (only the batch may be 0)")
            env[k] = a
        return env

    def run(self, x: Union[ArrayLike, dict]) -> Union[np.ndarray, dict]:
        """Run the network. x: an array (one input) or {name: array}. Returns the output array
        (or {name: array} when the graph has several outputs)."""
        env = self.feed(x)
        plan = self.bound_plan(env)
        if plan.empty_outputs is not None:  # a batch of 0: PyTorch's empty result, nothing run
            outs = {t: np.empty(s, np.float32) for t, s in plan.empty_outputs.items()}
            return outs[self.outputs[0]] if len(outs) == 1 else outs
        arena = plan.arena
        prev = arena.enter() if arena is not None else None
        try:
            ys = plan.runner([env[k] for k in self.inputs])  # the steps in turn (binding.runner_for)
        finally:
            if arena is not None:
                arena.exit(prev)
        if len(ys) == 1:
            return ys[0]
        return dict(zip(self.outputs, ys))

    __call__ = run

    def bound_plan(self, env: dict) -> binding.BoundPlan:
        """The plan bound to the shapes of these inputs (pycnn/graph/binding.py), made on the first
        run with them: every shape checked (errors name the node), layouts chosen, steps bound."""
        key = tuple([env[k].shape for k in self.inputs])
        bound = self._bound.get(key)
        if bound is not None:
            return bound
        if any(v.shape[0] == 0 for v in env.values()):
            # An empty batch: shapes checked at batch 1, outputs of batch 0 (outputs lead with the batch).
            shapes = self.checked_shapes({k: (1,) + v.shape[1:] for k, v in env.items()})
            return binding.empty_plan({t: shapes[t] for t in self.outputs})
        shapes = self._stored_shapes(self.checked_shapes({k: v.shape for k, v in env.items()}))
        if len(self._bound) >= 16:
            self._bound.clear()
        bound = self._bound[key] = binding.bind_plan(
            self._steps, shapes, list(self.inputs), self.outputs, self._algo, self._arena_for
        )
        return bound

    def _arena_for(self, shapes):
        """The arrays of a run come from a caching NumPy allocator (pycnn._C.GraphArena, installed
        by run() and profile() for the run only): a network allocates the same arrays every run,
        and the large ones, served fresh by malloc, page-faulted and were unmapped every time
        (ResNet-50 batch 8: 2,167 page faults per run, ~5% of its time). It keeps freed blocks
        for reuse up to twice the largest peak of live tensors among the bound plans;
        release_memory() gives them back. None for a plan without a tensor of at least 256 KiB
        (the smallest block it keeps): installing it costs ~1-2 us per run, 3-7% of LeNet-5's."""
        if not binding.needs_arena(self._steps, shapes):
            return None
        cap = 2 * self.peak_bytes(shapes)
        if self._arena is None:
            self._arena = _C.GraphArena(cap)
        elif cap > self._arena.cap:
            self._arena.cap = cap
        return self._arena

    def release_memory(self) -> None:
        """Free the blocks the graph keeps cached between runs; the next run allocates afresh."""
        if self._arena is not None:
            self._arena.release()

    def run_reference(self, x: Union[ArrayLike, dict], dtype=np.float64) -> Union[np.ndarray, dict]:
        """Every logical node (nothing fused) with reference.py in dtype: the oracle of the tests."""
        env = self.feed(x)
        env = {k: (v if v.dtype.kind in "iu" else v.astype(dtype)) for k, v in env.items()}
        self.infer_shapes({k: v.shape for k, v in env.items()})
        for n in self.nodes:
            p = {r: v.astype(dtype) for r, v in n.params.items()}
            env[n.output] = np.asarray(OPS[n.op].reference(n.attrs, p, [env[t] for t in n.inputs]))
        if len(self.outputs) == 1:
            return env[self.outputs[0]]
        return {t: env[t] for t in self.outputs}

    def to(self, device: str, *, cuda_graph: bool = False):
        """The Graph on device ('cpu', or a device with a backend: pycnn/device.py): on the CPU
        itself; elsewhere the backend's copy, its weights prepared there (backend.graph_to).
        cuda_graph=True ('cuda' only): each run replays a CUDA graph captured per input shape."""
        if cuda_graph:
            if _device.check(device) == _device.CPU:
                raise ValueError("cuda_graph: CUDA graphs are for the 'cuda' device, not the CPU")
            return _device.backend(device).graph_to(self, cuda_graph=True)
        if _device.check(device) == self.device:
            return self
        if device == _device.CPU:  # from another device: the structure and weights, prepared here
            g = Graph.__new__(Graph)
            g.__setstate__(self.__getstate__())
            return g
        return _device.backend(device).graph_to(self)

    # ------------------------------------------------------------------ weights
    def state_dict(self) -> dict:
        """{key: float32 array} with PyTorch's key names (copies)."""
        return weights.state_dict(self.nodes)

    def load_state_dict(self, d: Union[dict, str, os.PathLike], strict: bool = True) -> Graph:
        """Load weights from a dict of arrays (NumPy or torch tensors), an .npz path, or a
        PyTorch state_dict file (.pt/.pth). Every missing, unexpected or mis-shaped key is
        listed in one ValueError; nothing changes unless all of them match."""
        new = weights.checked_weights(self.name, self.nodes, d, self.ignore_keys, strict)
        by_name = {n.name: n for n in self.nodes}
        for (name, role), a in new.items():
            by_name[name].params[role] = a
        self._build_plan()
        return self

    # ------------------------------------------------------------------ reports
    def summary(self, batch: int = 1) -> Summary:
        """Per node: output shape, parameter count, FLOPs; totals; the peak activation memory of
        the plan's freeing schedule at this batch. Returns a Summary (print it)."""
        return report.summarize(self, batch)

    def profile(self, x: Union[ArrayLike, dict], runs: int = 10, warmup: int = 2) -> Profile:
        """Run x runs times after warmup; per plan step the median time, GFLOP/s and algorithm,
        and the live bytes after the step. Returns a Profile (print it)."""
        return report.profile(self, x, runs, warmup)

    def _stored_shapes(self, shapes: dict) -> dict:
        """Logical tensor shapes as the kernels store them: channel counts the plan padded to a
        multiple of 16 (pycnn/graph/pad_channels.py) at their stored size."""
        return pad_channels.stored_shapes(shapes, self._padded)

    def peak_bytes(self, shapes: dict) -> int:
        """Largest sum of live tensor bytes while the plan runs (inputs included, views free)."""
        return binding.peak_bytes(self._steps, self.inputs, self._stored_shapes(shapes))

    def total_bytes(self, shapes: dict) -> int:
        """What keeping every activation of the plan would take."""
        return binding.total_bytes(self._steps, self.inputs, self._stored_shapes(shapes))

    # ------------------------------------------------------------------ persistence
    def __getstate__(self):
        """Structure and weights only (pickle, copy.deepcopy, multiprocessing, Ray): prepared
        weights, bound kernels and the arena are native handles, made again on unpickling."""
        return {
            "inputs": self.inputs,
            "nodes": self.nodes,
            "outputs": self.outputs,
            "name": self.name,
            "input_dtypes": self.input_dtypes,
            "algo": self._algo,
            "ignore_keys": self.ignore_keys,
            "meta": self.meta,
        }

    def __setstate__(self, state):
        self.__init__(
            state["inputs"],
            state["nodes"],
            state["outputs"],
            name=state["name"],
            input_dtypes=state["input_dtypes"],
            algo=state["algo"],
            ignore_keys=state["ignore_keys"],
            meta=state["meta"],
        )

    def save(self, path: Union[str, os.PathLike]) -> None:
        """Write the Graph (structure and weights) to one file; pycnn.load(path) reads it back."""
        _graph_file.write(self, path)

    @classmethod
    def load(cls, path: Union[str, os.PathLike]) -> Graph:
        """The Graph that g.save(path) wrote (pycnn.load); its weights are prepared anew here."""
        graph, nodes = _graph_file.read(path)
        return cls(nodes=[Node(**n) for n in nodes], **graph)

    def __repr__(self):
        return (
            f"Graph({self.name!r}, inputs={self.inputs}, {len(self.nodes)} nodes, "
            f"{len(getattr(self, '_steps', []))} plan steps, algo={getattr(self, '_algo', None)!r})"
        )


def _fmt_shape(shape):
    """(None, 3, 224, 224) -> '(N, 3, 224, 224)'."""
    return "(" + ", ".join("N" if d is None and i == 0 else str(d) for i, d in enumerate(shape)) + ")"


__all__ = ["Graph", "Node"]
