"""Binding pass: squeeze-and-excitation's four steps (global average pool -> 1x1 conv -> 1x1 conv
-> x * gate) run as one native call (_C.se_block): MobileNet V3's, EfficientNet's and RegNetY's
blocks.

Why: the pool, the two 1x1 convs on 1x1 maps and the product are each a few microseconds of
arithmetic but a whole plan step (the Python loop, the binding's call and checks, an OpenMP team):
at batch 1 MobileNet V3 Small's nine blocks were 36 of its ~75 steps. Which blocks: the product's
gate is made by a conv (groups 1, 1x1, one input, no fused residual) that alone reads the output of
another such conv, which alone reads the output of a global average pool of the product's x; none
of the three is a graph output. x is read and y written in the product's layout (channel-blocked
or NCHW). The pool's and the convs' steps then have no plan entry (their outputs are never
made) and the product's step reads x; Graph.profile shows the block's time on the product
step. ENABLED = False turns it off (A/B, tests).
"""

from __future__ import annotations

import numpy as np

from .. import _C
from .. import layout as _layout
from ..prepared import PreparedConv
from .fusion import Produced, own_conv, plain_1x1, producers_and_readers

ENABLED = True


class _SeBlock:
    """The whole block on x: y = x * gate(x), in x's layout."""

    def __init__(self, fc1: PreparedConv, fc2: PreparedConv, blocked: bool):
        self.w1 = np.ascontiguousarray(fc1.weight.reshape(fc1.weight.shape[:2]))  # (Cm, C)
        self.w2 = np.ascontiguousarray(fc2.weight.reshape(fc2.weight.shape[:2]))  # (C, Cm)
        self.b1, self.b2 = fc1.bias, fc2.bias
        self.e1, self.e2 = fc1.epilogue_tuple(), fc2.epilogue_tuple()
        self.blocked = blocked

    def __call__(self, x):
        y = np.empty(x.shape, np.float32)
        _C.se_block(x, self.w1, self.b1, self.e1, self.w2, self.b2, self.e2, self.blocked, y)
        return y


def _fc(step, shapes):
    """step is a conv a fused call can take over: 1x1 on a 1x1 map."""
    if not own_conv(step):
        return False
    s = _layout._conv_shape(step, shapes)
    return plain_1x1(s) and s.H == s.W == 1


def fuse(steps, shapes, calls, ins, layouts, outputs) -> dict:
    """calls and ins changed in place for each fused block; returns {product step: (pool step,
    first conv step, second conv step)}."""
    if not ENABLED:
        return {}
    producer, readers = producers_and_readers(steps)

    def sole(t, j):  # t is made by a step, read by step j alone, and is no graph output
        return t in producer and t not in outputs and readers.get(t) == [j]

    fused = {}
    for m, s in enumerate(steps):
        xpos = _layout.product_x_position(s, shapes)
        bits, algo = layouts.get(m, (0, None))
        if xpos is None or algo == _layout.REORDER:  # (a product reordered to blocked after: not fused)
            continue
        x, g = s.inputs[xpos], s.inputs[1 - xpos]
        if not sole(g, m):
            continue
        j = producer[g]
        if not _fc(steps[j], shapes) or not sole(steps[j].inputs[0], j):
            continue
        i1 = producer[steps[j].inputs[0]]
        if not _fc(steps[i1], shapes) or not sole(steps[i1].inputs[0], i1):
            continue
        i0 = producer[steps[i1].inputs[0]]
        pool = steps[i0]
        if pool.op != "global_avg_pool2d" or list(pool.inputs) != [x]:
            continue
        if bits not in (0, _layout.X_BLOCKED | _layout.Y_BLOCKED):
            continue  # the kernel writes y in x's layout
        blocked = bits != 0
        if blocked != bool(layouts.get(i0, (0, None))[0] & _layout.X_BLOCKED):
            continue  # x is one tensor: both read it in the same layout (never otherwise)
        C, Cm = shapes[x][1], shapes[steps[i1].output][1]
        fc1, fc2 = steps[i1].fn, steps[j].fn
        if fc1.weight.shape[:2] != (Cm, C) or fc2.weight.shape[:2] != (C, Cm):
            continue
        for k in (i0, i1, j):
            calls[k] = Produced()
        calls[m] = _SeBlock(fc1, fc2, blocked)
        ins[m] = [x]
        fused[m] = (i0, i1, j)
    return fused


__all__ = ["ENABLED", "fuse"]
