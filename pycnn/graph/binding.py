"""The plan bound to one set of input shapes: what Graph.run iterates.

The first run with new shapes binds every step (StepKernel.bind: geometry, algorithm and output
shape fixed, no per-call validation) after the binding passes that depend on the shapes:
  layouts           which tensors stay channel-blocked between steps (pycnn/layout.py);
  fuse_pw_dw        a blocked 1x1 conv and the depthwise conv reading it: one kernel
                    (pycnn/graph/fuse_pw_dw.py);
  fuse_se           squeeze-and-excitation's pool -> 1x1 -> 1x1 -> x * gate: one call
                    (pycnn/graph/fuse_se.py);
  chunk_chains      consecutive conv and pooling steps, each reading the one before alone, run
                    as one step a few images at a time at batch > 1 (pycnn/graph/chunk_chains.py);
  fuse_mean         a conv read only by the global average pool after it: one direct_oc call
                    returning the means, the maps never written (pycnn/graph/fuse_mean.py);
  elide_concats     channel concats made by their producers writing into slices of the
                    output (at batch > 1 channel-blocked ones, the slices' images strided), and
                    a concat of the first inputs of a longer one (DenseNet's) a view of the
                    longer one's output.
Later runs with the same shapes reuse the bound plan (at most 16 shape sets are kept). Graph.run
calls the plan's runner (runner_for: the entries as one _C.PlanRunner call); the entries stay the
plan's description, which Graph.profile and the report iterate step by step.
"""

from __future__ import annotations

import numpy as np

from .. import _C
from .. import layout as _layout
from ..step_kernel import NO_LAYOUT, reads_strided, writes_out, writes_strided_out
from . import chunk_chains, fuse_mean, fuse_pw_dw, fuse_se
from .fusion import Produced, nbytes

VIEW_OPS = ("flatten", "reshape", "squeeze", "unsqueeze", "identity")  # outputs that are views: no memory
# elide_concats' switches (A/B: bench.layout_ab): concats of a longer one's first inputs as views,
# and concats at batch > 1 (their slices' images strided)
PREFIX_CONCATS = True
STRIDED_CONCATS = True
ARENA_MIN_TENSOR = 256 << 10  # the smallest block the arena keeps (see arena_for)


class BoundPlan(list):
    """Per entry: (call, input tensors, output, dead tensors);
    index: each entry's step (steps fused into a later one have no entry); the arena its runs
    allocate from; the layouts chosen (step index -> (bits, algorithm))."""

    arena = None
    index = []
    layouts = {}
    fused = {}  # step -> the steps fused into it: (1x1,) or (1x1, depthwise) (pycnn/graph/fuse_pw_dw.py)
    fused_se = {}  # x * gate step -> the (pool, 1x1, 1x1) steps fused into it (pycnn/graph/fuse_se.py)
    chunked = {}  # a chain's last step -> the steps before it, run with it per chunk of images (chunk_chains.py)
    fused_mean = {}  # global average pool step -> the conv step fused into it (pycnn/graph/fuse_mean.py)
    empty_outputs = None  # for a batch of 0: output name -> its (empty) shape; nothing runs
    runner = None  # the entries as one native call (_C.PlanRunner, see runner_for): what Graph.run calls


def empty_plan(output_shapes: dict) -> BoundPlan:
    """The plan of a batch of 0: PyTorch's empty results, nothing run."""
    plan = BoundPlan()
    plan.empty_outputs = {t: (0,) + tuple(s[1:]) for t, s in output_shapes.items()}
    return plan


class _Reordered:
    """A step whose NCHW result is reordered to channel-blocked (NCHW16c) for its readers."""

    def __init__(self, call):
        self.call = call

    def __call__(self, *xs):
        return _C.to_blocked16(self.call(*xs))


def bind_plan(steps, shapes, inputs, outputs, algo, arena_source) -> BoundPlan:
    """steps bound to these shapes (every tensor's), with the layout and concat-elision passes;
    inputs and outputs: the graph's tensor names, in the order Graph.run passes and returns them."""
    layouts = _layout.plan(steps, shapes, outputs, algo)
    calls = []
    for i, s in enumerate(steps):
        lay = layouts.get(i)
        args = ([shapes[t] for t in s.inputs], shapes[s.output])
        if lay is not None and lay[1] == _layout.REORDER:
            calls.append(_Reordered(s.fn.bind(*args)))
        else:
            calls.append(s.fn.bind(*args, layout=lay or NO_LAYOUT))  # reads and / or writes blocked tensors itself
    ins = [list(s.inputs) for s in steps]
    frees = [list(s.free) for s in steps]
    orig = list(calls)
    fused = fuse_pw_dw.fuse(steps, shapes, calls, ins, frees, layouts, outputs)
    fused_se = fuse_se.fuse(steps, shapes, calls, ins, layouts, outputs)
    chunked = chunk_chains.chunk(steps, shapes, calls, orig, ins, frees, layouts, outputs)
    fused_mean = fuse_mean.fuse(steps, shapes, calls, orig, ins, layouts, outputs)
    elide_concats(steps, shapes, calls, ins, layouts, outputs)
    plan = _without_fused_away(steps, calls, ins, frees)
    plan.runner = runner_for(plan, inputs, outputs)
    plan.arena = arena_source(shapes)
    plan.layouts = layouts
    plan.fused = fused
    plan.fused_se = fused_se
    plan.chunked = chunked
    plan.fused_mean = fused_mean
    return plan


def _without_fused_away(steps, calls, ins, frees) -> BoundPlan:
    """The plan's entries, less the steps a fused step computes (their call is Produced: a
    loop iteration and a call each for nothing): their outputs are never made, so no entry frees
    them, and what such a step freed is freed by the next entry kept."""
    gone = {s.output for s, c in zip(steps, calls) if isinstance(c, Produced)}
    plan, index, carry = BoundPlan(), [], []
    for k, (s, c, i, f) in enumerate(zip(steps, calls, ins, frees)):
        f = [t for t in f if t not in gone]
        if isinstance(c, Produced):
            carry += f
            continue
        plan.append((c, tuple(i), s.output, tuple(f + carry)))
        index.append(k)
        carry = []
    plan.index = index
    return plan


def runner_for(plan: BoundPlan, inputs, outputs):
    """The plan's entries as one _C.PlanRunner, called with the graph's inputs in the order of
    `inputs` and returning its outputs in the order of `outputs`: each tensor a slot, the bound
    C++ steps called without Python's loop or pybind11's dispatch (kernels/bindings/
    bind_plan_runner.cpp)."""
    slot = {}

    def of(t):
        return slot.setdefault(t, len(slot))

    in_slots = [of(t) for t in inputs]
    entries = [(fn, [of(t) for t in ins], of(out), [of(t) for t in free]) for fn, ins, out, free in plan]
    return _C.PlanRunner(entries, len(slot), in_slots, [of(t) for t in outputs])


def _fill(call, xs, part, copy):
    """call(*xs) written into part: through out=, or (copy) its result copied there."""
    if copy:
        np.copyto(part, call(*xs).reshape(part.shape))
        return part
    return call(*xs, out=part)


class _FirstPart:
    """The first producer of an elided concat: allocates the concat's whole output (per run, so
    each run returns its own array), writes its slice, returns that slice (a view whose .base is
    the whole output). copy: the producer cannot write into a given array (no out=): its result
    is copied into the slice."""

    def __init__(self, call, whole_shape, sl, copy=False):
        self.call, self.whole_shape, self.sl, self.copy = call, whole_shape, sl, copy

    def __call__(self, *xs):
        return _fill(self.call, xs, np.empty(self.whole_shape, np.float32)[self.sl], self.copy)


class _NextPart:
    """A later producer: its last input is the first part's slice; it writes its own slice of
    that slice's whole output (or copies its result there: see _FirstPart)."""

    def __init__(self, call, sl, copy=False):
        self.call, self.sl, self.copy = call, sl, copy

    def __call__(self, *xs):
        return _fill(self.call, xs[:-1], xs[-1].base[self.sl], self.copy)


class _Whole:
    """The elided concat itself: the whole output its parts wrote."""

    def __init__(self, first):
        self.first = first

    def __call__(self, *xs):
        return xs[self.first].base


class _Prefix:
    """An elided concat of the first parts of a longer one (DenseNet's layers): the leading run
    of the longer concat's output its parts wrote (a view, contiguous at batch 1)."""

    def __init__(self, sl):
        self.sl = sl

    def __call__(self, *xs):
        return xs[0].base[self.sl]


_PART_CALLS = (_FirstPart, _NextPart, _Whole, _Prefix)


def elide_concats(steps, shapes, calls, ins, layouts, outputs):
    """Channel concats made by their producers writing into slices of one output (GoogLeNet batch
    1: 9 copies, ~0.4 ms). A part's producer that takes out= writes its slice (at batch > 1 only
    a bound conv with a channel-blocked y: writes_strided_out, the slice's images being apart by
    the whole concat's image); any other's result is copied there (DenseNet's pooled block
    input, once instead of once per layer). A concat whose inputs are the first inputs of a
    longer one returns the leading channels of that one's output (DenseNet: each layer
    concatenates all the block's earlier outputs, the block's last concat all of them; batch 1:
    58 copies of 0.4-3.2 MB). At batch 1 the slices are contiguous and any step may read them; at
    batch > 1 they are not, so the parts must be read by these concats only and the shorter
    concats' outputs by steps that take strided images (the blocked batch norm). The parts are
    not graph outputs, nor made by a step already writing into another concat. calls and ins are
    changed in place."""
    producer = {s.output: i for i, s in enumerate(steps)}
    readers = {}
    for i, s in enumerate(steps):
        for t in s.inputs:
            readers.setdefault(t, []).append(i)

    def axis_of(ci):
        return steps[ci].attrs["axis"] % len(shapes[steps[ci].output])

    def contiguous(ci):  # every axis before the concat's has size 1: each part is one run
        return int(np.prod(shapes[steps[ci].output][: axis_of(ci)])) == 1

    def eligible(ci):
        s = steps[ci]
        if s.op != "concat" or layouts.get(ci, NO_LAYOUT)[1] == _layout.REORDER:
            return False  # (a REORDER concat is made in NCHW, then reordered to blocked in its step)
        ts = list(s.inputs)
        if not contiguous(ci) and (not STRIDED_CONCATS or axis_of(ci) != 1 or ci not in layouts):
            return False  # at batch > 1 only channel-blocked channel concats (strided writers)
        return len(set(ts)) == len(ts) and all(
            t not in outputs and t in producer and not isinstance(calls[producer[t]], _PART_CALLS + (Produced,))
            for t in ts
        )

    elig = {ci for ci in range(len(steps)) if eligible(ci)}
    done = set()
    for mi in sorted(elig, key=lambda ci: -len(steps[ci].inputs)):
        if mi in done:
            continue
        ts = list(steps[mi].inputs)
        if any(isinstance(calls[producer[t]], _PART_CALLS) for t in ts):
            continue
        ax, lay, batch1 = axis_of(mi), layouts.get(mi, NO_LAYOUT)[0], contiguous(mi)
        members = [  # (not graph outputs: two outputs would share memory)
            ci
            for ci in (elig if PREFIX_CONCATS else ())
            if ci != mi
            and ci not in done
            and steps[ci].output not in outputs
            and axis_of(ci) == ax
            and layouts.get(ci, NO_LAYOUT)[0] == lay
            and list(steps[ci].inputs) == ts[: len(steps[ci].inputs)]
            and (batch1 or all(reads_strided(calls[r]) for r in readers.get(steps[ci].output, ())))
        ]
        # The longest runs last (it reads every part, so the first part, which the later
        # producers read for its .base, lives until then).
        if any(ci > mi for ci in members):
            continue
        chain = set(members) | {mi}
        if not batch1 and any(r not in chain for t in ts for r in readers.get(t, ())):
            continue  # a part read elsewhere would be a strided view
        writes = [writes_out(calls[producer[t]]) if batch1 else writes_strided_out(calls[producer[t]]) for t in ts]
        if not members and not any(writes):
            continue  # every part copied: the concat's own copy, nothing saved
        out_shape = shapes[steps[mi].output]
        # A channel-blocked concat (pycnn/layout.py): the slices are of channel blocks.
        unit = 1
        if mi in layouts:  # (its inputs are all blocked, as its producers write)
            out_shape, unit = _layout.blocked_shape(out_shape), 16
        ps = [producer[t] for t in ts]
        first = min(range(len(ts)), key=lambda i: ps[i])
        off, ends = 0, []
        for i, (t, p) in enumerate(zip(ts, ps)):
            sl = (slice(None),) * ax + (slice(off // unit, (off + shapes[t][ax]) // unit),)
            off += shapes[t][ax]
            ends.append(off)
            if i == first:
                calls[p] = _FirstPart(calls[p], out_shape, sl, not writes[i])
            else:
                ins[p] = ins[p] + [ts[first]]
                calls[p] = _NextPart(calls[p], sl, not writes[i])
        calls[mi] = _Whole(first)
        done.add(mi)
        for ci in members:
            n = len(steps[ci].inputs)
            calls[ci] = _Prefix((slice(None),) * ax + (slice(0, ends[n - 1] // unit),))
            done.add(ci)


def views(steps) -> set:
    """Tensors that are views of another (no memory of their own)."""
    return {s.output for s in steps if s.op in VIEW_OPS}


def peak_bytes(steps, inputs, shapes) -> int:
    """Largest sum of live tensor bytes while the steps run (inputs included, views free)."""
    vs = views(steps)

    def size(t):
        return 0 if t in vs else nbytes(shapes[t])

    live = sum(size(t) for t in inputs)
    peak = live
    for s in steps:
        live += size(s.output)
        peak = max(peak, live)
        live -= sum(size(t) for t in s.free)
    return peak


def total_bytes(steps, inputs, shapes) -> int:
    """What keeping every activation would take."""
    vs = views(steps)
    return sum(nbytes(shapes[t]) for t in list(inputs) + [s.output for s in steps] if t not in vs)


def needs_arena(steps, shapes) -> bool:
    """Whether a run of these steps makes a tensor the arena keeps (see Graph's arena)."""
    vs = views(steps)
    return any(s.output not in vs and nbytes(shapes[s.output]) >= ARENA_MIN_TENSOR for s in steps)


__all__ = ["BoundPlan", "bind_plan", "empty_plan", "elide_concats", "peak_bytes", "total_bytes", "views", "needs_arena"]
