"""pycnn.Graph: named nodes, shape inference, a fused execution plan, profile and summary.

A Graph holds the logical network exactly as it was written (one Node per PyTorch module or
ONNX operator, so state_dict keys are PyTorch's) and, next to it, an execution plan made when
the Graph is built or its weights change:
  * batch norm after a convolution is folded into the convolution's weights and bias;
  * a ReLU whose input has no other consumer is fused into the conv, linear, add or batch norm
    before it, and a max over H and W into the conv before it; dropout and identity nodes are
    skipped;
  * every convolution is a PreparedConv: its weights are packed / Winograd-transformed once here,
    never per call;
  * each intermediate tensor is dropped as soon as its last consumer has run, so the peak memory
    is that of the widest cut of the network, not the sum of all activations (summary() reports it).
Tensors are NCHW float32; the first dimension of every input is the batch.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Optional, Union

import numpy as np
from numpy.typing import ArrayLike

from . import _C, _graph_file, ops, registry
from . import device as _device
from . import layout as _layout
from .layers import OPS, normalize_attrs
from ._validate import F32 as _F32, as_array, as_int, nhwc_hint
from ._weights import load_weights
from .graph_report import Profile, Summary
from .prepared import ConvBankMax, ConvMaxMap, PreparedConv


@dataclass
class Node:
    """One operator. inputs/output are tensor names; params maps a role ('weight', 'bias', ...)
    to a float32 array; keys maps a role to its state_dict key (default 'name.role')."""
    name: str
    op: str
    inputs: list
    output: str = ""
    attrs: dict = field(default_factory=dict)
    params: dict = field(default_factory=dict)
    keys: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.op not in OPS:
            raise ValueError(f"node {self.name!r}: unknown op {self.op!r}; known: {sorted(OPS)}")
        self.output = self.output or self.name
        self.inputs = list(self.inputs)
        spec = OPS[self.op]
        if spec.n_inputs is not None and len(self.inputs) != spec.n_inputs:
            raise ValueError(f"node {self.name!r} ({self.op}): expected {spec.n_inputs} inputs, got {self.inputs}")
        if not self.inputs:
            raise ValueError(f"node {self.name!r} ({self.op}): needs at least one input")
        for role in self.params:
            if role not in spec.params:
                raise ValueError(f"node {self.name!r} ({self.op}): unknown parameter {role!r}; expected {spec.params}")
        for role in spec.params:
            if role not in self.params and role not in spec.optional:
                raise ValueError(f"node {self.name!r} ({self.op}): missing parameter {role!r}")
        self.params = {r: np.ascontiguousarray(v, np.float32) for r, v in self.params.items()}
        self.keys = {r: self.keys.get(r, f"{self.name}.{r}") for r in self.params}
        try:
            self.attrs = normalize_attrs(self.op, self.attrs, self.params)
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"node {self.name!r} ({self.op}): bad attributes {self.attrs}: {e}") from None


@dataclass
class Step:
    """One kernel call of the plan: the nodes it covers (fused), its inputs and output tensor."""
    names: list
    op: str
    inputs: list
    output: str
    fn: object
    attrs: dict
    params: dict = field(default_factory=dict)  # effective weights (batch norm folded in)
    free: list = field(default_factory=list)  # tensors dead after this step
    parts: list = field(default_factory=list)  # a conv bank's steps as they were (see _fuse_conv_banks)


class _Plan(list):
    """A bound plan: the steps (see Graph._steps_for) and the arena its runs allocate from. Each
    step is (fn, inputs, output, dead tensors, the single input's name or None)."""
    arena = None
    layouts = {}  # step index -> (layout bits, algorithm) from pycnn.layout.plan
    empty_outputs = None  # for a batch of 0: output name -> its (empty) shape; nothing runs


class Graph:
    """g = Graph(inputs={'x': (None, 3, 224, 224)}, nodes=[...], outputs=['prob']); y = g(x).

    inputs: name -> shape with None for the batch (the declared shape is what summary() and
    random inputs use; other spatial sizes run when every node accepts them). input_dtypes:
    name -> 'float32' (default) or 'int64' (token ids). algo: the conv algorithm of every layer
    ('auto' by default; a Winograd name applies to the 3x3 stride-1 layers, 'auto' elsewhere).
    ignore_keys: prefixes of state_dict keys that load_state_dict skips (GoogLeNet's
    auxiliary heads)."""

    def __init__(self, inputs, nodes, outputs, *, name="graph", input_dtypes=None, algo="auto",
                 ignore_keys=(), meta=None):
        self.name = name
        self.inputs = {k: tuple(v) for k, v in inputs.items()}
        self.input_dtypes = {k: (input_dtypes or {}).get(k, "float32") for k in self.inputs}
        self.nodes = list(nodes)
        self.outputs = list(outputs)
        self.ignore_keys = tuple(ignore_keys)
        self.meta = dict(meta or {})
        self.device = "cpu"
        seen = set(self.inputs)
        names = set()
        for n in self.nodes:
            if n.name in names:
                raise ValueError(f"node {n.name!r}: duplicate node name")
            names.add(n.name)
            for t in n.inputs:
                if t not in seen:
                    raise ValueError(f"node {n.name!r} ({n.op}): input {t!r} is not a graph input or an earlier "
                                     f"node's output")
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
    def _example_shapes(self, batch=1):
        batch = as_int(batch, "batch", 1)
        out = {}
        for k, s in self.inputs.items():
            if any(d is None for d in s[1:]):
                raise ValueError(f"input {k!r}: declared shape {s} has free dimensions besides the batch")
            out[k] = (batch,) + tuple(s[1:])
        return out

    def infer_shapes(self, input_shapes: Optional[dict] = None) -> dict:
        """Shape of every tensor for the given input shapes (default: the declared ones, batch 1)."""
        if input_shapes is None:
            input_shapes = self._example_shapes()
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

    def _checked_shapes(self, input_shapes):
        """infer_shapes for a run's inputs, checked against the declared inputs first: a 4-D
        input must have the declared channel count (dimension 1; NHWC gets a hint), and where
        other sizes differ from the declared ones (another image size) a node that refuses them
        is reported with the declared shape beside it."""
        for k, shape in input_shapes.items():
            decl = self.inputs[k]
            label = "x" if len(self.inputs) == 1 else f"x[{k!r}]"
            if len(decl) == 4 and decl[1] is not None and shape[1] != decl[1]:
                raise ValueError(f"{label}: graph {self.name!r} declares input {k!r} as {_fmt_shape(decl)}, "
                                 f"got shape {tuple(shape)}{nhwc_hint(shape, decl[1])}")
        try:
            return self.infer_shapes(input_shapes)
        except ValueError as e:
            differ = {k: (s, self.inputs[k]) for k, s in input_shapes.items()
                      if any(d is not None and d != v for d, v in zip(self.inputs[k][1:], s[1:]))}
            if not differ:
                raise
            what = "; ".join(f"input {k!r} has shape {tuple(s)} where the graph declares {_fmt_shape(d)}"
                             for k, (s, d) in differ.items())
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
        consumers = {}
        for n in self.nodes:
            for t in n.inputs:
                consumers.setdefault(t, []).append(n)
        outputs = set(self.outputs)

        def sole(t):
            c = consumers.get(t, [])
            return c[0] if len(c) == 1 and t not in outputs else None

        shapes = self.infer_shapes()
        alias = {}
        absorbed = set()
        steps = []
        ready = set(self.inputs)  # tensors that exist before the step being planned
        for n in self.nodes:
            if n.name in absorbed:
                continue
            ins = [alias.get(t, t) for t in n.inputs]
            if n.op == "identity" and n.output not in outputs:
                alias[n.output] = ins[0]
                continue
            names, attrs, params, out = [n.name], dict(n.attrs), dict(n.params), n.output
            nxt = sole(out)
            if n.op == "conv2d" and nxt is not None and nxt.op == "batch_norm" and nxt.attrs["activation"] is None:
                params = _fold_bn(params, nxt)
                names.append(nxt.name)
                absorbed.add(nxt.name)
                out = nxt.output
                nxt = sole(out)
            # A residual join add(conv, r) whose other input r already exists: r goes into the
            # conv's epilogue (added before the ReLU), saving a pass over the activations.
            if (n.op == "conv2d" and attrs["activation"] is None and nxt is not None and nxt.op == "add"
                    and nxt.attrs["activation"] is None and nxt.inputs.count(out) == 1):
                other = alias.get(nxt.inputs[1 - nxt.inputs.index(out)],
                                  nxt.inputs[1 - nxt.inputs.index(out)])
                if other in ready and shapes[other] == shapes[out]:
                    ins.append(other)
                    names.append(nxt.name)
                    absorbed.add(nxt.name)
                    out = nxt.output
                    nxt = sole(out)
            if (n.op in ("conv2d", "linear", "batch_norm", "add") and attrs["activation"] is None
                    and nxt is not None and nxt.op == "relu"):
                attrs["activation"] = "relu"
                names.append(nxt.name)
                absorbed.add(nxt.name)
                out = nxt.output
                nxt = sole(out)
            # A max over each output map (Kim's max over time) runs in the conv's call: the maps
            # never reach Python (prepared.ConvMaxMap).
            if (n.op == "conv2d" and len(ins) == 1 and nxt is not None and nxt.op == "reduce_max"
                    and sorted(ax % 4 for ax in nxt.attrs["axes"]) == [2, 3]):
                attrs["max_map"] = 2 if nxt.attrs["keepdims"] else 1
                names.append(nxt.name)
                absorbed.add(nxt.name)
                out = nxt.output
            fn = OPS[n.op].kernel(attrs, params, self._algo)
            if hasattr(fn, "prepare_for"):
                fn.prepare_for(shapes[ins[0]])  # weights transformed now, at the declared input shape
            steps.append(Step(names, n.op, ins, out, fn, attrs, params))
            ready.add(out)
        steps = _fuse_conv_banks(steps, outputs)
        for t in self.outputs:  # an output that is an alias of another tensor
            if t in alias:
                steps.append(Step([t], "identity", [alias[t]], t, lambda x: x, {}))
        last = {}
        for i, s in enumerate(steps):
            for t in s.inputs:
                last[t] = i
        for t, i in last.items():
            if t not in outputs:
                steps[i].free.append(t)
        self._steps = steps
        self._bound = {}  # input shapes -> the plan bound to them (see _steps_for)
        self._arena = None  # the run's NumPy allocator, made with the first plan (see _arena_for)

    def plan(self) -> list:
        """The execution plan as data: [(fused node names, op, inputs, output, attrs, params)],
        params being the effective weights (what an exporter such as bench/ncnn_export.py writes).
        A conv bank step is listed as the steps it fuses (its convs, then the concat)."""
        return [(list(s.names), s.op, list(s.inputs), s.output, dict(s.attrs), dict(s.params))
                for b in self._steps for s in (b.parts or [b])]

    @property
    def steps(self) -> list:
        """The execution plan: [(fused node names, op, inputs, output)]."""
        return [(list(s.names), s.op, list(s.inputs), s.output) for s in self._steps]

    # ------------------------------------------------------------------ run
    def _feed(self, x):
        # The common call, one float32 input as a C-contiguous array of its declared rank: what the
        # checks below would accept unchanged (~0.3 us saved per run).
        if type(x) is np.ndarray and x.dtype is _F32 and len(self.inputs) == 1 and x.flags.c_contiguous and x.size:
            (k, decl), = self.inputs.items()
            if x.ndim == len(decl) and self.input_dtypes[k] == "float32":
                return {k: x}
        if isinstance(x, dict):
            missing = set(self.inputs) - set(x)
            extra = set(x) - set(self.inputs)
            if missing or extra:
                raise ValueError(f"x: expected inputs {sorted(self.inputs)}, missing {sorted(missing)}, "
                                 f"unexpected {sorted(extra)}")
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
            if a.size == 0 and (a.ndim == 0 or a.shape[0] != 0 or 0 in a.shape[1:]):
                raise ValueError(f"{label}: empty input, shape {a.shape} (only the batch may be 0)")
            env[k] = a
        return env

    def run(self, x: Union[ArrayLike, dict]) -> Union[np.ndarray, dict]:
        """Run the network. x: an array (one input) or {name: array}. Returns the output array
        (or {name: array} when the graph has several outputs)."""
        if self.device != "cpu":
            raise RuntimeError(f"graph is on {self.device!r}")
        env = self._feed(x)
        plan = self._steps_for(env)
        if plan.empty_outputs is not None:  # a batch of 0: PyTorch's empty result, nothing run
            outs = {t: np.empty(s, np.float32) for t, s in plan.empty_outputs.items()}
            return outs[self.outputs[0]] if len(outs) == 1 else outs
        arena = plan.arena
        prev = arena.enter() if arena is not None else None
        try:
            for fn, ins, out, free, i0 in plan:
                env[out] = fn(env[i0]) if i0 is not None else fn(*[env[t] for t in ins])
                for t in free:
                    del env[t]
        finally:
            if arena is not None:
                arena.exit(prev)
        outs = self.outputs
        if len(outs) == 1:
            return env[outs[0]]
        return {t: env[t] for t in outs}

    __call__ = run

    def _steps_for(self, env):
        """The plan bound to these input shapes: per step (callable, input tensors, output, dead
        tensors), what run() iterates. The first run with new shapes infers (and so validates)
        every shape, then binds each step whose kernel can be bound (fn.bind: geometry, algorithm
        and output shape fixed, no per-call validation) and elides the concats it can
        (_elide_concats); later runs with the same shapes reuse the list. At most 16 shape sets
        are kept."""
        key = tuple([env[k].shape for k in self.inputs])
        bound = self._bound.get(key)
        if bound is None and any(v.shape[0] == 0 for v in env.values()):
            # An empty batch: shapes checked at batch 1, outputs of batch 0 (outputs lead with the batch).
            shapes = self._checked_shapes({k: (1,) + v.shape[1:] for k, v in env.items()})
            bound = _Plan()
            bound.empty_outputs = {t: (0,) + tuple(shapes[t][1:]) for t in self.outputs}
            return bound
        if bound is None:
            shapes = self._checked_shapes({k: v.shape for k, v in env.items()})
            layouts = _layout.plan(self._steps, shapes, self.outputs, self._algo)
            fns = []
            for i, s in enumerate(self._steps):
                bind = getattr(s.fn, "bind", None)
                lay = layouts.get(i)
                args = ([shapes[t] for t in s.inputs], shapes[s.output])
                if lay is not None and lay[1] != _layout.REORDER:
                    f = bind(*args, layout=lay)  # reads and / or writes blocked tensors itself
                else:
                    f = bind(*args) if bind else s.fn
                if lay is not None and lay[1] == _layout.REORDER:
                    f = (lambda *a, f=f: _C.to_blocked16(f(*a)))  # NCHW result, reordered
                fns.append(f)
            ins = [list(s.inputs) for s in self._steps]
            self._elide_concats(shapes, fns, ins, layouts)
            if len(self._bound) >= 16:
                self._bound.clear()
            bound = self._bound[key] = _Plan((fn, tuple(i), s.output, tuple(s.free), i[0] if len(i) == 1 else None)
                                             for s, fn, i in zip(self._steps, fns, ins))
            bound.arena = self._arena_for(shapes)
            bound.layouts = layouts
        return bound

    def _arena_for(self, shapes):
        """The arrays of a run come from a caching NumPy allocator (pycnn._C.GraphArena, installed
        by run() and profile() for the run only): a network allocates the same arrays every run,
        and the large ones, served fresh by malloc, page-faulted and were unmapped every time
        (ResNet-50 batch 8: 2,167 page faults per run; 212-220 ms per run, 199-207 with it). It
        keeps freed blocks for reuse up to twice the largest peak of live tensors among the bound
        plans; release_memory() gives them back. Returns the arena for a plan with a tensor of
        at least 256 KiB (the smallest block it keeps), else None: installing it costs ~1-2 us
        per run, 3-7% of LeNet-5's or Kim's, with nothing to gain."""
        views = self._views()
        if all(s.output in views or 4 * int(np.prod(shapes[s.output], dtype=np.int64)) < (256 << 10)
               for s in self._steps):
            return None
        cap = 2 * self.peak_bytes(shapes)
        if self._arena is None:
            self._arena = _C.GraphArena(cap)
        elif cap > self._arena.cap:
            self._arena.cap = cap
        return self._arena

    def release_memory(self) -> None:
        """Free the blocks the graph keeps cached between runs (see _arena_for); the next run
        allocates afresh."""
        if self._arena is not None:
            self._arena.release()

    def _elide_concats(self, shapes, fns, ins, layouts):
        """A concat whose inputs each occupy one contiguous run of its output (every axis before
        the concat axis has size 1: Inception's channel concat at batch 1) and are each made by a
        bound conv used nowhere else: the convs write straight into their slices of the concat's
        output and the concat step returns it (GoogLeNet batch 1: 9 copies, ~0.4 ms). The first of
        those convs to run allocates the output (per run, so each run returns its own arrays) and
        the others get its result as an extra input, whose .base is the whole output."""
        producer = {s.output: i for i, s in enumerate(self._steps)}
        uses = {}
        for s in self._steps:
            for t in s.inputs:
                uses[t] = uses.get(t, 0) + 1
        for ci, s in enumerate(self._steps):
            if s.op != "concat":
                continue
            out_shape = shapes[s.output]
            ax = s.attrs["axis"] % len(out_shape)
            ts = list(s.inputs)
            if layouts.get(ci, (0, None))[1] == _layout.REORDER:
                continue  # made in NCHW, then reordered to blocked in its own step
            if (int(np.prod(out_shape[:ax])) != 1 or len(set(ts)) != len(ts)
                    or any(t in self.outputs or uses.get(t) != 1 or t not in producer
                           or not getattr(fns[producer[t]], "writes_out", False) for t in ts)):
                continue
            ps = [producer[t] for t in ts]
            first = min(range(len(ts)), key=lambda i: ps[i])
            # A channel-blocked concat (pycnn/layout.py): the slices are of channel blocks.
            blocked, unit = ci in layouts, 1  # (its inputs are all blocked, as its producers write)
            if blocked:
                out_shape, unit = _layout.blocked_shape(out_shape), 16
            off = 0
            for i, (t, p) in enumerate(zip(ts, ps)):
                sl = (slice(None),) * ax + (slice(off // unit, (off + shapes[t][ax]) // unit),)
                off += shapes[t][ax]
                if i == first:
                    fns[p] = lambda *a, f=fns[p], sl=sl, sh=out_shape: f(*a, out=np.empty(sh, np.float32)[sl])
                else:
                    ins[p] = ins[p] + [ts[first]]
                    fns[p] = lambda *a, f=fns[p], sl=sl: f(*a[:-1], out=a[-1].base[sl])
            fns[ci] = lambda *xs, fi=first: xs[fi].base

    def run_reference(self, x: Union[ArrayLike, dict], dtype=np.float64) -> Union[np.ndarray, dict]:
        """Every logical node (nothing fused) with reference.py in dtype: the oracle of the tests."""
        env = self._feed(x)
        env = {k: (v if v.dtype.kind in "iu" else v.astype(dtype)) for k, v in env.items()}
        self.infer_shapes({k: v.shape for k, v in env.items()})
        for n in self.nodes:
            p = {r: v.astype(dtype) for r, v in n.params.items()}
            env[n.output] = np.asarray(OPS[n.op].reference(n.attrs, p, [env[t] for t in n.inputs]))
        if len(self.outputs) == 1:
            return env[self.outputs[0]]
        return {t: env[t] for t in self.outputs}

    def to(self, device: str) -> Graph:
        """The Graph on device ('cpu', or a device with a backend: pycnn/device.py): on the CPU
        itself; elsewhere the backend's copy, its weights prepared there (backend.graph_to)."""
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
        return {n.keys[r]: n.params[r].copy() for n in self.nodes for r in n.params}

    def load_state_dict(self, d: Union[dict, str, os.PathLike], strict: bool = True) -> Graph:
        """Load weights from a dict of arrays (NumPy or torch tensors), an .npz path, or a
        PyTorch state_dict file (.pt/.pth). Every missing, unexpected or mis-shaped key is
        listed in one ValueError; nothing changes unless all of them match."""
        arrays = load_weights(d)
        owners = {n.keys[r]: (n, r) for n in self.nodes for r in n.params}
        ignored = [k for k in arrays if k not in owners and
                   (k.endswith("num_batches_tracked") or k.startswith(self.ignore_keys))]
        problems = []
        missing = sorted(k for k in owners if k not in arrays)
        unexpected = sorted(k for k in arrays if k not in owners and k not in ignored)
        prefix = _common_prefix(unexpected, owners)
        if prefix:
            raise ValueError(
                f"load_state_dict into {self.name}: the keys carry the prefix {prefix!r} that this graph's "
                f"keys do not (a checkpoint of nn.DataParallel / DistributedDataParallel, or of a wrapping "
                f"module?); strip it first: {{k.removeprefix({prefix!r}): v for k, v in state_dict.items()}}")
        if strict and missing:
            problems.append(f"missing keys: {_key_list(missing)}")
        if unexpected:
            problems.append(f"unexpected keys: {_key_list(unexpected)}")
        new = {}
        for k, a in arrays.items():
            if k not in owners:
                continue
            n, r = owners[k]
            a = np.asarray(a)
            if a.dtype.kind not in "fiu":
                problems.append(f"{k}: dtype {a.dtype} is not numeric")
            elif a.shape != n.params[r].shape:
                problems.append(f"{k}: expected shape {n.params[r].shape}, got {a.shape}")
            else:
                new[k] = np.ascontiguousarray(a, np.float32)
        if problems:
            raise ValueError(f"load_state_dict into {self.name}: " + "; ".join(problems))
        for k, a in new.items():
            n, r = owners[k]
            n.params[r] = a
        self._build_plan()
        return self

    # ------------------------------------------------------------------ introspection
    def summary(self, batch: int = 1) -> Summary:
        """Per node: output shape, parameter count, FLOPs; totals; the peak activation memory of
        the plan's freeing schedule at this batch. Returns a Summary (print it)."""
        shapes = self.infer_shapes(self._example_shapes(batch))
        rows = []
        for n in self.nodes:
            ins = [shapes[t] for t in n.inputs]
            out = shapes[n.output]
            rows.append((n.name, n.op, out, sum(int(p.size) for p in n.params.values()),
                         OPS[n.op].flops(n.attrs, ins, out)))
        return Summary(self.name, batch, rows, self.peak_bytes(shapes), self._plan_total_bytes(shapes))

    def _views(self):
        return {s.output for s in self._steps if s.op in ("flatten", "reshape", "squeeze", "unsqueeze", "identity")}

    def peak_bytes(self, shapes: dict) -> int:
        """Largest sum of live tensor bytes while the plan runs (inputs included, views free)."""
        views = self._views()

        def nbytes(t):
            return 0 if t in views else 4 * int(np.prod(shapes[t], dtype=np.int64))
        live = sum(nbytes(t) for t in self.inputs)
        peak = live
        for s in self._steps:
            live += nbytes(s.output)
            peak = max(peak, live)
            live -= sum(nbytes(t) for t in s.free)
        return peak

    def _plan_total_bytes(self, shapes):
        views = self._views()
        return sum(4 * int(np.prod(shapes[t], dtype=np.int64)) for t in list(self.inputs) +
                   [s.output for s in self._steps] if t not in views)

    def profile(self, x: Union[ArrayLike, dict], runs: int = 10, warmup: int = 2) -> Profile:
        """Run x runs times after warmup; per plan step the median time, GFLOP/s and algorithm,
        and the live bytes after the step. Returns a Profile (print it)."""
        runs, warmup = as_int(runs, "runs", 1), as_int(warmup, "warmup", 0)
        env0 = self._feed(x)
        plan = self._steps_for(env0)
        if plan.empty_outputs is not None:
            raise ValueError(f"x: profile needs a batch of at least 1, got shape {next(iter(env0.values())).shape}")
        shapes = self.infer_shapes({k: v.shape for k, v in env0.items()})
        node_by_name = {n.name: n for n in self.nodes}
        times = [[] for _ in self._steps]
        totals = []
        live_trace = []
        for it in range(warmup + runs):
            env = dict(env0)
            t_start = time.perf_counter()
            trace = []
            prev = plan.arena.enter() if plan.arena is not None else None
            try:
                for i, (fn, ins, out, free, _) in enumerate(plan):
                    args = [env[t] for t in ins]
                    t0 = time.perf_counter()
                    env[out] = fn(*args)
                    t1 = time.perf_counter()
                    for t in free:
                        del env[t]
                    if it >= warmup:
                        times[i].append(t1 - t0)
                        if it == warmup:
                            trace.append(_live_bytes(env))
            finally:
                if plan.arena is not None:
                    plan.arena.exit(prev)
            if it >= warmup:
                totals.append(time.perf_counter() - t_start)
                if it == warmup:
                    live_trace = trace
        rows = []
        for i, s in enumerate(self._steps):
            ins = [shapes[t] for t in s.inputs]
            flops = 0.0
            for part in s.parts or [s]:  # a conv bank: its convs' FLOPs
                head = node_by_name.get(part.names[0])
                if head is not None:
                    flops += OPS[head.op].flops(head.attrs, [shapes[t] for t in part.inputs], shapes[head.output])
            algo = s.fn.algo_for(ins[0]) if hasattr(s.fn, "algo_for") else s.op
            if i in plan.layouts:
                algo = _layout.describe(plan.layouts[i][1], plan.layouts[i][0], s.op)
            rows.append(("+".join(s.names), s.op, shapes[s.output], float(np.median(times[i])), flops, algo,
                         live_trace[i] if live_trace else 0))
        return Profile(self.name, shapes[self.outputs[0]][0] if shapes[self.outputs[0]] else 1, rows,
                       float(np.median(totals)), ops.get_num_threads())

    # ------------------------------------------------------------------ persistence
    def __getstate__(self):
        """Structure and weights only (pickle, copy.deepcopy, multiprocessing, Ray): prepared
        weights, bound kernels and the arena are native handles, made again on unpickling."""
        return {"inputs": self.inputs, "nodes": self.nodes, "outputs": self.outputs, "name": self.name,
                "input_dtypes": self.input_dtypes, "algo": self._algo, "ignore_keys": self.ignore_keys,
                "meta": self.meta}

    def __setstate__(self, state):
        self.__init__(state["inputs"], state["nodes"], state["outputs"], name=state["name"],
                      input_dtypes=state["input_dtypes"], algo=state["algo"], ignore_keys=state["ignore_keys"],
                      meta=state["meta"])

    def save(self, path: Union[str, os.PathLike]) -> None:
        """Write the Graph (structure and weights) to one file; pycnn.load(path) reads it back."""
        _graph_file.write(self, path)

    @classmethod
    def load(cls, path: Union[str, os.PathLike]) -> Graph:
        """The Graph that g.save(path) wrote (pycnn.load); its weights are prepared anew here."""
        graph, nodes = _graph_file.read(path)
        return cls(nodes=[Node(**n) for n in nodes], **graph)

    def __repr__(self):
        return (f"Graph({self.name!r}, inputs={self.inputs}, {len(self.nodes)} nodes, "
                f"{len(getattr(self, '_steps', []))} plan steps, algo={getattr(self, '_algo', None)!r})")


def _fuse_conv_banks(steps, outputs):
    """Convolutions of one tensor that are each reduced by a max over their maps (max_map steps)
    and meet in one channel concat, nothing else reading them, become one step: a sentence CNN's
    filter bank (Kim's CNN: heights 3, 4 and 5 over the word vectors, max over time, concat).
    Its prepared.ConvBankMax runs them as one kernel where the shapes allow (one input channel,
    whole-row windows: the im2col matrix packed once for all of them, one parallel region; Kim
    at batch 8 0.95-0.97 -> 0.80-0.82 ms, batch 1 0.149-0.156 -> 0.121-0.123) and one by one
    otherwise. The step takes the concat's place in the plan; plan() lists its parts."""
    producer = {s.output: i for i, s in enumerate(steps)}
    uses = {}
    for s in steps:
        for t in s.inputs:
            uses[t] = uses.get(t, 0) + 1
    fused, replace = set(), {}
    for ci, s in enumerate(steps):
        if s.op != "concat" or len(s.inputs) < 2 or len(set(s.inputs)) != len(s.inputs):
            continue
        ps = [producer.get(t) for t in s.inputs]
        if any(p is None for p in ps):
            continue
        convs = [steps[p] for p in ps]
        max_maps = {c.attrs.get("max_map") for c in convs}
        if (any(c.op != "conv2d" or len(c.inputs) != 1 or not isinstance(c.fn, ConvMaxMap)
                or not isinstance(c.fn.conv, PreparedConv) or uses.get(c.output) != 1 or c.output in outputs
                for c in convs)
                or len({c.inputs[0] for c in convs}) != 1 or len(max_maps) != 1 or None in max_maps):
            continue
        max_map = max_maps.pop()
        if s.attrs["axis"] % (2 if max_map == 1 else 4) != 1:
            continue
        fused.update(ps)
        replace[ci] = Step([nm for c in convs for nm in c.names] + list(s.names), "conv2d_bank", [convs[0].inputs[0]],
                           s.output, ConvBankMax([c.fn.conv for c in convs], max_map), {"max_map": max_map},
                           parts=convs + [s])
    return [replace.get(i, s) for i, s in enumerate(steps) if i not in fused]


def _fold_bn(conv_params, bn):
    """Conv weights and bias with the batch norm after them folded in (computed in float64)."""
    p = bn.params
    scale, shift = ops.fold_batch_norm(p["running_mean"], p["running_var"], p.get("weight"), p.get("bias"),
                                       bn.attrs["eps"])
    w = conv_params["weight"].astype(np.float64) * scale.astype(np.float64)[:, None, None, None]
    b = conv_params.get("bias")
    b = shift.astype(np.float64) + (0.0 if b is None else b.astype(np.float64) * scale)
    return {"weight": w.astype(np.float32), "bias": b.astype(np.float32)}


def _common_prefix(keys, owners):
    """The dotted prefix ('module.') that all of keys carry and whose removal makes them this
    graph's keys (owners), or ''."""
    if not keys:
        return ""
    first = keys[0]
    for i, ch in enumerate(first):
        if ch != ".":
            continue
        p = first[:i + 1]
        if all(k.startswith(p) for k in keys) and sum(k[len(p):] in owners for k in keys) * 2 >= len(keys):
            return p
    return ""


def _key_list(keys, show=10):
    """A readable list of keys: the first `show`, then how many more."""
    head = ", ".join(repr(k) for k in keys[:show])
    return f"[{head}]" if len(keys) <= show else f"[{head}, ... and {len(keys) - show} more] ({len(keys)} in all)"


def _fmt_shape(shape):
    """(None, 3, 224, 224) -> '(N, 3, 224, 224)'."""
    return "(" + ", ".join("N" if d is None and i == 0 else str(d) for i, d in enumerate(shape)) + ")"


def _live_bytes(env):
    seen = {}
    for a in env.values():
        base = a
        while isinstance(base, np.ndarray) and base.base is not None:
            base = base.base
        if isinstance(base, np.ndarray):
            seen[id(base)] = base.nbytes
    return sum(seen.values())
