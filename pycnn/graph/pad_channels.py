"""Plan pass: channel counts that are not a multiple of 16 padded with zero-weight channels.

Why. The channel-blocked layout (pycnn/layout.py, NCHW16c) covers tensors with 16 | C. MNASNet,
MobileNet V3, EfficientNet and MobileNet V2 have stages of 24, 40, 72, 88, 120 channels that
otherwise stay NCHW: their 1x1 convs pack or stride over planes, their depthwise convs transpose
in and out per call, and each stage boundary pays a reorder. Padded to 32, 48, 80, 96, 128 the
whole chain stays blocked, at the cost of the padded channels' work (onnxruntime's NCHWc
transformer pads the same way).

What. Tensors that must carry the same channels form a group: the input and output of an
element-wise op (ReLU, the unary activations, add, mul, sub), of a pool, a batch norm, a
depthwise conv (groups == C == K) or a grouped one with C == K and G = C / groups dividing 16
(its padded channels are whole groups of zero filters), and the residual a conv adds. A dense conv (groups 1) separates
groups: its weights get zero rows for padded outputs (K) and zero columns for padded inputs (C).
A group is padded (C -> next multiple of 16) when
  * every tensor in it is 4-D, none is a graph input or output, and no other op reads or writes
    it (a concat, reshape, flatten, LayerNorm over channels, linear ... sees logical channels);
  * every dense conv reading it is 1x1 (a 3x3 or 5x5 reader would pay the padding in FLOPs
    without reading blocked x);
  * the padding is at most a third of C (24 -> 32 yes; 20 -> 32 no) and some tensor of the group
    has more than one pixel (squeeze-and-excitation's (N, C, 1, 1) stay as they are).
Padded channels hold act(0) or act(bias 0) and finite products of it, never read by a real
channel (zero weights). One difference from the unpadded network: an Inf in a real input
channel makes the padded channel 0 * Inf = NaN, which the next conv's zero weight turns into a
NaN (0 * NaN) in its real outputs, where the unpadded network might have produced an Inf. NaN
inputs give NaN outputs either way. ENABLED = False turns the pass off (A/B, tests).

The pass runs on the fused steps (before make_kernels); it pads their weights, changes ctx.shapes
to the stored shapes and records ctx.padded (tensor -> stored channels), which Graph.bound_plan
applies to the shapes of every run.
"""

from __future__ import annotations

import numpy as np

ENABLED = True
PER_CHANNEL_OPS = ("relu", "max_pool2d", "avg_pool2d", "global_avg_pool2d", "adaptive_avg_pool2d", "batch_norm")
# Unary functions that map finite values to finite ones (padded channels must stay finite).
FINITE_UNARY = ("clip", "sigmoid", "hardsigmoid", "hardswish", "silu", "erf", "gelu", "relu", "tanh", "abs", "neg")
FINITE_BINARY = ("add", "mul", "sub")


def padded_channels(c: int) -> int:
    return -(-c // 16) * 16


class _Groups:
    """Union-find over tensor names, with a 'forbidden' mark per group."""

    def __init__(self):
        self.parent, self.bad = {}, set()

    def find(self, t):
        self.parent.setdefault(t, t)
        while self.parent[t] != t:
            self.parent[t] = self.parent[self.parent[t]]
            t = self.parent[t]
        return t

    def union(self, *ts):
        roots = [self.find(t) for t in ts]
        for r in roots[1:]:
            if r != roots[0]:
                self.parent[r] = roots[0]
                if r in self.bad:
                    self.bad.add(roots[0])

    def forbid(self, *ts):
        for t in ts:
            self.bad.add(self.find(t))


def _is_channelwise(s, shapes):
    """A depthwise conv (groups == C == K) or a grouped one with C == K and G = C / groups
    dividing 16 (RegNet's groups of 8): padded channels then form whole groups of their own."""
    w = s.params["weight"]
    g, c = s.attrs["groups"], shapes[s.inputs[0]][1]
    return g > 1 and w.shape[0] == c and c % g == 0 and w.shape[1] == c // g and 16 % (c // g) == 0


def _groups(steps, ctx):
    shapes = ctx.shapes
    G = _Groups()
    for s in steps:
        ts = list(s.inputs) + [s.output]
        for t in ts:
            G.find(t)
        if any(len(shapes.get(t, ())) != 4 for t in ts):
            G.forbid(*ts)
            continue
        if s.op == "conv2d" and not s.attrs.get("max_map"):
            if s.attrs["groups"] == 1:
                w = s.params["weight"]
                if w.shape[2:] != (1, 1):
                    G.forbid(s.inputs[0])  # a kxk reader: padding costs FLOPs, no blocked read
                if len(s.inputs) > 1:
                    G.union(s.output, s.inputs[1])  # the fused residual
            elif _is_channelwise(s, shapes):
                G.union(*ts)
            else:
                G.forbid(*ts)
        elif s.op in PER_CHANNEL_OPS or (s.op == "unary" and s.attrs.get("fn") in FINITE_UNARY):
            G.union(*ts)
        elif s.op == "add" or (s.op == "binary" and s.attrs.get("fn") in FINITE_BINARY and not s.params):
            c = shapes[s.output][1]
            if all(shapes[t][1] == c for t in ts):
                G.union(*ts)
            else:
                G.forbid(*ts)
        elif s.op == "binary" and s.attrs.get("fn") in FINITE_BINARY and s.params["other"].size == 1:
            G.union(*ts)
        else:
            G.forbid(*ts)
    G.forbid(*ctx.inputs, *ctx.outputs)
    return G


def _chosen(G, ctx):
    """tensor -> stored channels, for the groups that are padded."""
    members = {}
    for t in G.parent:
        members.setdefault(G.find(t), []).append(t)
    out = {}
    for root, ts in members.items():
        if root in G.bad:
            continue
        cs = {ctx.shapes[t][1] for t in ts}
        if len(cs) != 1:
            continue
        c = cs.pop()
        cp = padded_channels(c)
        if cp == c or 3 * (cp - c) > c or all(ctx.shapes[t][2] * ctx.shapes[t][3] <= 1 for t in ts):
            continue
        out.update(dict.fromkeys(ts, cp))
    return out


def _pad_axis(a, axis, n, value=0.0):
    if n <= a.shape[axis]:
        return a
    widths = [(0, 0)] * a.ndim
    widths[axis] = (0, n - a.shape[axis])
    return np.pad(a, widths, constant_values=value)


def pad_channels(steps, ctx):
    if not ENABLED or ctx.algo != "auto":
        return steps
    padded = _chosen(_groups(steps, ctx), ctx)
    if not padded:
        return steps
    for s in steps:
        if s.op == "conv2d" and (s.output in padded or s.inputs[0] in padded):
            params, dense = dict(s.params), s.attrs["groups"] == 1
            if dense and s.inputs[0] in padded:  # zero columns for the padded inputs
                params["weight"] = _pad_axis(params["weight"], 1, padded[s.inputs[0]])
            if s.output in padded:  # zero rows (a depthwise conv: zero filters) for the padded outputs
                cp = padded[s.output]
                params["weight"] = _pad_axis(params["weight"], 0, cp)
                if "bias" in params:
                    params["bias"] = _pad_axis(params["bias"], 0, cp)
                if not dense:  # depthwise or grouped: its input is in the same group, G channels a group
                    s.attrs = dict(s.attrs, groups=cp // params["weight"].shape[1])
            params["weight"] = np.ascontiguousarray(params["weight"])
            s.params = params
        elif s.op == "batch_norm" and s.output in padded:
            cp = padded[s.output]
            fill = {"running_var": 1.0, "weight": 1.0}
            s.params = {r: _pad_axis(v, 0, cp, fill.get(r, 0.0)) for r, v in s.params.items()}
    ctx.shapes = stored_shapes(ctx.shapes, padded)
    ctx.padded = padded
    return steps


def stored_shapes(shapes: dict, padded: dict) -> dict:
    """shapes with the padded tensors at their stored channel count."""
    if not padded:
        return shapes
    out = dict(shapes)
    for t, cp in padded.items():
        if t in out:
            s = out[t]
            out[t] = (s[0], cp) + tuple(s[2:])
    return out


__all__ = ["ENABLED", "pad_channels", "padded_channels", "stored_shapes"]
