"""Binding pass: a 1x1 conv and the depthwise conv that alone reads its output, both on
channel-blocked tensors, run as one step: MobileNet's and EfficientNet's expand -> depthwise pair.

Why: the expansion (e.g. 96 x 112 x 112, 38 MB at batch 8) is otherwise written to memory by the
1x1 for the whole batch and read back by the depthwise conv. Fused, the step runs the two bound
kernels a few images at a time (SPLIT), the expansion of at most IMAGES_BYTES per call staying in
L2/L3 between them, and with them (PROJECT) the 1x1 that alone reads the depthwise conv's output
(MobileNet's project conv, its residual sliced per call), so that output stays in cache too;
or (SPLIT False) as one kernel (_C.conv2d_pw_dw_blocked16, kernels/cpu/conv2d_pw_dw_c16.inl)
that makes each row of the expansion into a small ring of the depthwise conv's input rows. The
split reuses the two kernels' larger register blocks and in-place rows and beat the ring in
networks at batch 8 (docs/performance.md, Depthwise).
Which pairs: the 1x1 (groups 1, stride 1, unpadded, no fused residual) reads and writes the
layout (direct_oc), the depthwise conv (groups == C == K, dilation 1, symmetric padding, no
residual) reads and writes it (depthwise_c16), and the expansion is no graph output. The 1x1's
step then has no plan entry (its output is never made whole) and the depthwise step reads the
1x1's input; Graph.profile shows the pair's time on the depthwise step. ENABLED = False turns it
off (A/B, tests).
"""

from __future__ import annotations

import numpy as np

from .. import _C
from .. import layout as _layout
from ..prepared import PreparedConv
from .chunk_chains import Chain
from .fusion import Produced, nbytes, own_conv, plain_1x1, prepared_conv, producers_and_readers

ENABLED = True
# Only expansions of at least this many bytes: below, they stay in L2/L3 between the two steps
# and the separate kernels (direct_oc's larger register blocks) are as fast or faster.
MIN_EXPANSION_BYTES = 6 << 20
SPLIT = True
# Split calls take the project 1x1 after the depthwise conv too (MobileNet's whole inverted
# residual block a few images at a time: the depthwise conv's output stays in cache as well).
PROJECT = True
# Images per split call: their expansion within 2 MiB (the two cores' L2). Networks at batch 8,
# 1 / 2 / 4 / 8 MiB: MNASNet 14.87 / 14.49 / 14.58 / 15.02 ms, MobileNet V2 14.78 / 14.53 / 14.47 / 14.44.
IMAGES_BYTES = 2 << 20
BLOCKED_XY = _layout.X_BLOCKED | _layout.Y_BLOCKED


class _PwDw:
    """The fused pair on the 1x1's blocked input x: y (N, K/16, Ho, Wo, 16). split (SPLIT): the two
    bound kernels a few images at a time (the expansion of IMAGES_BYTES at most, in L2/L3 between
    them), else the ring kernel."""

    writes_out = True  # a Graph may hand it a (C-contiguous: batch 1) slice of a blocked concat's output

    def __init__(self, pw: PreparedConv, dw: PreparedConv, dw_shape, out_shape, split=None, project=None):
        K, C = pw.weight.shape[:2]
        R, S = dw.weight.shape[2:]
        # (K/16, C, 16): block kb's 16 weights per input channel; (K/16, R*S, 16) per tap
        self.wpw = np.ascontiguousarray(pw.weight.reshape(K // 16, 16, C).transpose(0, 2, 1))
        self.wdw = np.ascontiguousarray(dw.weight.reshape(K // 16, 16, R * S).transpose(0, 2, 1))
        self.bpw, self.bdw = pw.bias, dw.bias
        self.e1, self.e2 = pw.epilogue_tuple(), dw.epilogue_tuple()
        self.geom = (R, S, dw_shape.stride[0], dw_shape.stride[1], dw_shape.pad[0], dw_shape.pad[1])
        self.out_shape = out_shape
        self.split = SPLIT if split is None else split
        # split: the bound 1x1 and depthwise conv (and project, (PreparedConv, layout bits, has a
        # residual): the 1x1 reading the depthwise conv's output, out_shape then its y's) run as a
        # chain of images; per image shapes, the batch given per call
        H, W, Ho, Wo = dw_shape.H, dw_shape.W, dw_shape.Ho, dw_shape.Wo
        members = [
            (pw, [(1, C, H, W)], (1, K, H, W), (BLOCKED_XY, _layout.BLOCKED_RUNNER), None, False),
            (dw, [(1, K, H, W)], (1, K, Ho, Wo), (BLOCKED_XY, _layout.DEPTHWISE_RUNNER), None, False),
        ]
        if project is not None:
            conv, bits, has_res = project
            y1 = (1, conv.weight.shape[0], Ho, Wo)
            members.append((conv, [(1, K, Ho, Wo)], y1, (bits, _layout.BLOCKED_RUNNER), None, has_res))
        images = max(1, IMAGES_BYTES // (4 * K * H * W))
        self.chain = Chain(members, out_shape, images, None)

    def __call__(self, x, res=None, out=None):
        y = np.empty(self.out_shape, np.float32) if out is None else out
        if self.split:
            return self.chain(x, *(() if res is None else (res,)), out=y)
        _C.conv2d_pw_dw_blocked16(x, self.wpw, self.bpw, self.e1, self.wdw, self.bdw, self.e2, *self.geom, y)
        return y


def _bound_blocked(step, layouts, i, runner):
    """A conv step a fused call can take over, bound to read and write the layout with runner."""
    return own_conv(step) and layouts.get(i) == (BLOCKED_XY, runner)


def _pointwise(shape):
    return plain_1x1(shape) and shape.K % 16 == 0 and shape.C % 16 == 0


def _depthwise(shape):
    return (
        shape.groups == shape.C == shape.K
        and shape.K % 16 == 0
        and shape.dilation == (1, 1)
        and shape.pad[0] == shape.pad[2]  # (top, left, bottom, right): symmetric
        and shape.pad[1] == shape.pad[3]
    )


def _project_of(steps, j, readers, layouts, shapes, outputs):
    """The step of the 1x1 conv (blocked x, direct_oc; a residual as its second input, any layout)
    that alone reads depthwise step j's output, or None."""
    t = steps[j].output
    r = readers.get(t)
    if t in outputs or r is None or len(r) != 1:
        return None
    k = r[0]
    q, lay = steps[k], layouts.get(k)
    if not (
        prepared_conv(q)
        and q.inputs[0] == t
        and t not in q.inputs[1:]
        and lay is not None
        and lay[1] == _layout.BLOCKED_RUNNER
        and lay[0] & _layout.X_BLOCKED
    ):
        return None
    return k if plain_1x1(_layout._conv_shape(q, shapes)) else None


def fuse(steps, shapes, calls, ins, frees, layouts, outputs) -> dict:
    """calls, ins and frees changed in place for each fused pair (and, split, the project 1x1
    after it); returns {the fused step: (the 1x1 step[, the depthwise step])}."""
    if not ENABLED:
        return {}
    producer, readers = producers_and_readers(steps)
    fused = {}
    for j, s in enumerate(steps):
        if not _bound_blocked(s, layouts, j, _layout.DEPTHWISE_RUNNER):
            continue
        t = s.inputs[0]
        i = producer.get(t)  # the expansion's only reader is s, so each 1x1 pairs once at most
        if i is None or t in outputs or readers.get(t) != [j]:
            continue
        p = steps[i]
        if isinstance(calls[i], (Produced, _PwDw)) or not _bound_blocked(p, layouts, i, _layout.BLOCKED_RUNNER):
            continue  # (taken: a project 1x1 fused already, as in dw -> 1x1 -> dw chains)
        dws, pws = _layout._conv_shape(s, shapes), _layout._conv_shape(p, shapes)
        if not (_depthwise(dws) and _pointwise(pws)) or dws.C != pws.K:
            continue
        if nbytes(shapes[t]) < MIN_EXPANSION_BYTES:
            continue
        x = p.inputs[0]
        k = _project_of(steps, j, readers, layouts, shapes, outputs) if SPLIT and PROJECT else None
        calls[i] = Produced()
        if k is None:
            calls[j] = _PwDw(p.fn, s.fn, dws, _layout.blocked_shape(shapes[s.output]))
            ins[j], last, fused[j] = [x], j, (i,)
        else:
            bits = layouts[k][0]
            q = steps[k]
            out_shape = _layout.blocked_shape(shapes[q.output]) if bits & _layout.Y_BLOCKED else shapes[q.output]
            calls[j] = Produced()
            calls[k] = _PwDw(p.fn, s.fn, dws, out_shape, project=(q.fn, bits, len(q.inputs) > 1))
            ins[k], last, fused[k] = [x] + ins[k][1:], k, (i, j)
        for u in range(i, last):  # x freed by the 1x1 or a step before the fused one: now after it
            if x in frees[u]:
                frees[u] = [v for v in frees[u] if v != x]
                frees[last] = frees[last] + [x]
    return fused


__all__ = ["ENABLED", "fuse"]
