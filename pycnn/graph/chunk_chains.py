"""Binding pass: a run of consecutive conv and pooling steps, each reading the one before it alone,
runs as one step a few images at a time (batch > 1): the stem conv -> depthwise -> 1x1 of
MobileNet V2 and MNASNet, ResNet's 1x1 -> 3x3 -> 1x1 bottlenecks, VGG's runs of 3x3s and their max
pools, a stem conv -> max pool (ResNet, SqueezeNet), an average pool -> 1x1 (Inception's branches).

Why: at batch 8 the intermediates of the early stages are 6-100 MB (MNASNet's 32 x 112 x 112
stem output is 12.8 MB): each is written to memory by one conv for the whole batch and read back
by the next. Run per chunk of images, an intermediate of at most IMAGES_BYTES stays in L2/L3
between the two convs. The weights are read once per chunk instead of once per step, so a chain
is chunked only where its intermediates outweigh its weights.

Which steps: conv2d steps (their own prepared weights, no max over maps) and max / average pools
bound to the C++ pooling call, whose bound call no earlier pass replaced, consecutive in the
plan, each one's output read by the next alone (as its input; the next may add a residual, any
earlier tensor) and no graph output; a pool follows a step only where that step's output is at
least POOL_MIN_INPUT_BYTES for the batch; the chain's largest intermediate is at least
MIN_INTERMEDIATE_BYTES for the whole batch. The steps before the last have no plan entry (their
outputs are never made whole); the last reads the chain's input and the members' residuals;
Graph.profile shows the chain's time on its last step. ENABLED = False turns it off (A/B, tests).
"""

from __future__ import annotations

import numpy as np

from .. import _C
from .. import layout as _layout
from ..prepared import PreparedConv
from ..step_kernel import NO_LAYOUT, writes_out, writes_strided_out
from .fusion import Produced, nbytes, prepared_conv, producers_and_readers

ENABLED = True
POOLS = True  # pools may be members (A/B: bench.layout_ab --off chain_pools)
# A pool joins the step before it only where that step's output (the whole batch's) is at least
# this: a smaller one the pool reads from L3 anyway, and the step run per chunk of images loses a
# little of its thread split (AlexNet's 9.3 MB conv1 -> pool at batch 8: 0.49 ms slower chained).
POOL_MIN_INPUT_BYTES = 16 << 20
MIN_INTERMEDIATE_BYTES = 6 << 20  # below, the intermediates stay in L3 between the steps anyway
IMAGES_BYTES = 2 << 20  # images per call: their largest intermediate within the two cores' L2
WEIGHTS_PER_IMAGE = 1.0  # chained only where an image's intermediates are at least this x the weights


class Chain:
    """Steps' bound convs and pools run in turn a few images at a time (also fuse_pw_dw's split
    pairs). Inputs: the chain's input, then each member's residual (None where it has none, not
    passed). calls(n): the members bound to n images. last_call: the last step's own bound call,
    whose out= the chain takes alike (or None)."""

    def __init__(self, members, out_shape, images, last_call):
        # (PreparedConv or a pool's StepKernel, input shapes, output shape, layout, the whole
        # batch's algorithm (convs), has a residual)
        self.members = members
        self._conv = [isinstance(m[0], PreparedConv) for m in members]
        self.out_shape, self.images = out_shape, images
        self._bound = {}
        # out= as the last step's own call takes it (a concat's slice, its images apart: DenseNet's
        # 3x3s write their part of the block's concat), each chunk writing its images of it
        self.writes_out = writes_out(last_call)
        self.writes_strided_out = writes_strided_out(last_call)

    def calls(self, n):
        b = self._bound.get(n)
        if b is None:
            b = self._bound[n] = [
                fn.bind(
                    [(n,) + tuple(si[1:]) for si in ins],
                    (n,) + tuple(so[1:]),
                    layout=lay,
                    **({"run_algo": algo} if conv else {}),  # (a pool's bind has no algorithm)
                )
                for (fn, ins, so, lay, algo, _), conv in zip(self.members, self._conv)
            ]
        return b

    def __call__(self, x, *residuals, out=None):
        y = np.empty(self.out_shape, np.float32) if out is None else out
        N = x.shape[0]
        for n0 in range(0, N, self.images):
            n1 = min(N, n0 + self.images)
            t, r = x[n0:n1], iter(residuals)
            calls = self.calls(n1 - n0)
            last = len(calls) - 1
            for k, (call, m, conv) in enumerate(zip(calls, self.members, self._conv)):
                if not conv:  # a pool: call(x, out=None)
                    t = call(t, out=y[n0:n1]) if k == last else call(t)
                    continue
                res = next(r)[n0:n1] if m[5] else None
                t = call(t, res, y[n0:n1]) if k == last else call(t, res)
        return y


POOL_OPS = ("max_pool2d", "avg_pool2d")


def _member(step, call, orig, layout):
    if call is not orig or (layout is not None and layout[1] == _layout.REORDER):
        return False
    if step.op in POOL_OPS:  # the C++ bound pool (not a global average's Python call)
        return POOLS and isinstance(call, _C.BoundPool)
    return prepared_conv(step) and not isinstance(call, PreparedConv)  # a bound kernel, not a Python-side algorithm


def _stored(shape, layout, bit):
    return _layout.blocked_shape(shape) if layout is not None and layout[0] & bit else tuple(shape)


def chunk(steps, shapes, calls, orig, ins, frees, layouts, outputs) -> dict:
    """calls, ins and frees changed in place for each chain; returns {last step: (the steps before it)}."""
    if not ENABLED or not steps:
        return {}
    producer, readers = producers_and_readers(steps)
    chains = {}

    def links(a, b):
        t = steps[a].output
        return (
            _member(steps[b], calls[b], orig[b], layouts.get(b))
            and (steps[b].op not in POOL_OPS or nbytes(shapes[t]) >= POOL_MIN_INPUT_BYTES)
            and t not in outputs
            and readers.get(t) == [b]
            and steps[b].inputs[0] == t
        )

    i = 0
    while i < len(steps):
        if not _member(steps[i], calls[i], orig[i], layouts.get(i)):
            i += 1
            continue
        j = i
        while j + 1 < len(steps) and links(j, j + 1):
            j += 1
        if j > i and _worth(steps, shapes, i, j):
            _make(steps, shapes, calls, ins, frees, layouts, i, j)
            chains[j] = tuple(range(i, j))
        i = j + 1
    return chains


def _worth(steps, shapes, i, j):
    N = shapes[steps[i].inputs[0]][0]
    inter = [nbytes(shapes[steps[k].output]) for k in range(i, j)]
    weights = sum(4 * steps[k].fn.weight.size for k in range(i, j + 1) if isinstance(steps[k].fn, PreparedConv))
    return N > 1 and max(inter) >= MIN_INTERMEDIATE_BYTES and sum(inter) // N >= WEIGHTS_PER_IMAGE * weights


def _make(steps, shapes, calls, ins, frees, layouts, i, j):
    members, extra = [], []
    for k in range(i, j + 1):
        s, lay = steps[k], layouts.get(k)
        algo = s.fn.algo_for(shapes[s.inputs[0]]) if isinstance(s.fn, PreparedConv) else None
        io = ([shapes[t] for t in s.inputs], shapes[s.output])
        members.append((s.fn, *io, lay or NO_LAYOUT, algo, len(s.inputs) > 1))
        extra += s.inputs[1:2]
    N = shapes[steps[i].inputs[0]][0]
    per_image = max(nbytes(shapes[steps[k].output]) // N for k in range(i, j))
    images = max(1, IMAGES_BYTES // max(1, per_image))
    out_shape = _stored(shapes[steps[j].output], layouts.get(j), _layout.Y_BLOCKED)
    calls[j] = Chain(members, out_shape, images, calls[j])
    ins[j] = [steps[i].inputs[0]] + extra
    for k in range(i, j):
        calls[k] = Produced()
        frees[j] = frees[j] + [t for t in frees[k] if t not in frees[j]]  # read by the chain: dead after it
        frees[k] = []


__all__ = ["ENABLED", "Chain", "chunk"]
