"""The plan bound to one set of input shapes: what Graph.run iterates.

The first run with new shapes binds every step (StepKernel.bind: geometry, algorithm and output
shape fixed, no per-call validation) after the binding passes that depend on the shapes:
  layouts           which tensors stay channel-blocked between steps (pycnn/layout.py);
  fuse_pw_dw        a blocked 1x1 conv and the depthwise conv reading it: one kernel
                    (pycnn/graph/fuse_pw_dw.py);
  fuse_se           squeeze-and-excitation's pool -> 1x1 -> 1x1 -> x * gate: one call
                    (pycnn/graph/fuse_se.py);
  elide_concats     concats whose inputs are each one contiguous run of the output, made by
                    bound convs nobody else reads: those write into their slices directly.
Later runs with the same shapes reuse the bound plan (at most 16 shape sets are kept).
"""

from __future__ import annotations

import numpy as np

from .. import _C
from .. import layout as _layout
from ..step_kernel import NO_LAYOUT, writes_out
from . import fuse_pw_dw, fuse_se
from .fusion import Produced

VIEW_OPS = ("flatten", "reshape", "squeeze", "unsqueeze", "identity")  # outputs that are views: no memory
ARENA_MIN_TENSOR = 256 << 10  # the smallest block the arena keeps (see arena_for)


class BoundPlan(list):
    """Per entry: (call, input tensors, output, dead tensors, the single input's name or None);
    index: each entry's step (steps fused into a later one have no entry); the arena its runs
    allocate from; the layouts chosen (step index -> (bits, algorithm))."""

    arena = None
    index = []
    layouts = {}
    fused = {}  # depthwise step -> the 1x1 step fused into it (pycnn/graph/fuse_pw_dw.py)
    fused_se = {}  # x * gate step -> the (pool, 1x1, 1x1) steps fused into it (pycnn/graph/fuse_se.py)
    empty_outputs = None  # for a batch of 0: output name -> its (empty) shape; nothing runs


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


def bind_plan(steps, shapes, outputs, algo, arena_source) -> BoundPlan:
    """steps bound to these shapes (every tensor's), with the layout and concat-elision passes."""
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
    fused = fuse_pw_dw.fuse(steps, shapes, calls, ins, frees, layouts, outputs)
    fused_se = fuse_se.fuse(steps, shapes, calls, ins, layouts, outputs)
    elide_concats(steps, shapes, calls, ins, layouts, outputs)
    plan = _without_fused_away(steps, calls, ins, frees)
    plan.arena = arena_source(shapes)
    plan.layouts = layouts
    plan.fused = fused
    plan.fused_se = fused_se
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
        plan.append((c, tuple(i), s.output, tuple(f + carry), i[0] if len(i) == 1 else None))
        index.append(k)
        carry = []
    plan.index = index
    return plan


class _FirstPart:
    """The first producer of an elided concat: allocates the concat's whole output (per run, so
    each run returns its own array), writes its slice, returns that slice (a view whose .base is
    the whole output)."""

    def __init__(self, call, whole_shape, sl):
        self.call, self.whole_shape, self.sl = call, whole_shape, sl

    def __call__(self, *xs):
        return self.call(*xs, out=np.empty(self.whole_shape, np.float32)[self.sl])


class _NextPart:
    """A later producer: its last input is the first part's slice; it writes its own slice of
    that slice's whole output."""

    def __init__(self, call, sl):
        self.call, self.sl = call, sl

    def __call__(self, *xs):
        return self.call(*xs[:-1], out=xs[-1].base[self.sl])


class _Whole:
    """The elided concat itself: the whole output its parts wrote."""

    def __init__(self, first):
        self.first = first

    def __call__(self, *xs):
        return xs[self.first].base


def elide_concats(steps, shapes, calls, ins, layouts, outputs):
    """A concat whose inputs each occupy one contiguous run of its output (every axis before the
    concat axis has size 1: Inception's channel concat at batch 1) and are each made by a bound
    call that writes into a given array (writes_out) used nowhere else: the producers write
    straight into their slices and the concat returns the whole (GoogLeNet batch 1: 9 copies,
    ~0.4 ms). calls and ins are changed in place."""
    producer = {s.output: i for i, s in enumerate(steps)}
    uses = {}
    for s in steps:
        for t in s.inputs:
            uses[t] = uses.get(t, 0) + 1
    for ci, s in enumerate(steps):
        if s.op != "concat":
            continue
        out_shape = shapes[s.output]
        ax = s.attrs["axis"] % len(out_shape)
        ts = list(s.inputs)
        if layouts.get(ci, NO_LAYOUT)[1] == _layout.REORDER:
            continue  # made in NCHW, then reordered to blocked in its own step
        if (
            int(np.prod(out_shape[:ax])) != 1
            or len(set(ts)) != len(ts)
            or any(
                t in outputs or uses.get(t) != 1 or t not in producer or not writes_out(calls[producer[t]]) for t in ts
            )
        ):
            continue
        ps = [producer[t] for t in ts]
        first = min(range(len(ts)), key=lambda i: ps[i])
        # A channel-blocked concat (pycnn/layout.py): the slices are of channel blocks.
        unit = 1
        if ci in layouts:  # (its inputs are all blocked, as its producers write)
            out_shape, unit = _layout.blocked_shape(out_shape), 16
        off = 0
        for i, (t, p) in enumerate(zip(ts, ps)):
            sl = (slice(None),) * ax + (slice(off // unit, (off + shapes[t][ax]) // unit),)
            off += shapes[t][ax]
            if i == first:
                calls[p] = _FirstPart(calls[p], out_shape, sl)
            else:
                ins[p] = ins[p] + [ts[first]]
                calls[p] = _NextPart(calls[p], sl)
        calls[ci] = _Whole(first)


def views(steps) -> set:
    """Tensors that are views of another (no memory of their own)."""
    return {s.output for s in steps if s.op in VIEW_OPS}


def nbytes(shape) -> int:
    return 4 * int(np.prod(shape, dtype=np.int64))


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
