"""The plan of a Graph: its nodes turned into steps by a list of small rewrite passes.

Each pass takes the steps (in execution order) and the PlanContext and returns the new steps;
tests/test_graph_passes.py checks each on its own. In order (PLAN_PASSES):
  alias_identities   identity nodes (dropout at inference, ONNX Identity) disappear: their
                     readers read the source tensor (one that is a graph output stays a step);
  fold_batch_norm    a batch norm after a conv, its only reader, is folded into the conv's
                     weights and bias (in float64);
  fold_channel_scale x * s after a conv, its only reader, with a constant s of one value per
                     output channel ((K, 1, 1): ConvNeXt's layer scale) is folded into the
                     conv's weights and bias (in float64);
  fuse_residual_add  add(conv, r) where the conv is the add's only writer of that operand and r
                     exists before the conv: r goes into the conv's epilogue (ResNet's join);
  fuse_relu          a ReLU whose input has no other reader runs in the conv / linear / batch
                     norm / add before it;
  fuse_activation    an element-wise activation with a C++ kernel after a conv (its only
                     reader) runs in place on the conv's output in the conv's step;
  fuse_max_map       a max over H and W after a conv (Kim's max over time) runs in the conv's
                     call, so the maps never reach Python;
  pad_channels       channel counts not a multiple of 16 padded with zero-weight channels where
                     the whole chain can then stay channel-blocked (pycnn/graph/pad_channels.py);
  make_kernels       each step's StepKernel (pycnn/layers.py), its weights prepared for the
                     declared input shape;
  fuse_conv_banks    convs of one input whose maxima meet in a channel concat: one step;
  mark_dead_tensors  each intermediate is freed after its last reader.
A fusion never crosses a tensor that is a graph output or that another step reads. The binding
passes (layouts, the fused 1x1 -> depthwise pairs, concat elision) run per input shape:
pycnn/graph/binding.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .. import ops
from ..layers import _C_UNARY as C_UNARY
from ..layers import OPS
from ..layout import hw_axes
from ..prepared import ConvBankMax, ConvMaxMap, PreparedConv
from .pad_channels import pad_channels
from .step import Step


@dataclass
class PlanContext:
    inputs: tuple  # graph input names
    outputs: tuple  # graph output names
    shapes: dict  # tensor -> shape at the declared input shapes (batch 1)
    algo: str  # the Graph's conv algorithm
    padded: dict = field(default_factory=dict)  # tensor -> stored channels (pad_channels)


def initial_steps(nodes) -> list:
    """One step per node, before any pass."""
    return [Step([n.name], n.op, list(n.inputs), n.output, dict(n.attrs), dict(n.params)) for n in nodes]


def _readers(steps) -> dict:
    """tensor -> indices of the steps that read it."""
    out = {}
    for i, s in enumerate(steps):
        for t in s.inputs:
            out.setdefault(t, []).append(i)
    return out


def _absorb(s, t, **attrs):
    """Step s takes over t, its only reader: t's names and output, attrs updated."""
    s.names = s.names + t.names
    s.output = t.output
    s.attrs.update(attrs)


def _fuse_forward(steps, ctx, fuse):
    """For each step (front to back) and the only step reading its output, fuse(s, t, i) -> bool
    says whether s absorbed t (i: s's position); a fused step may fuse again with its new reader.
    Never across a graph output."""
    steps = list(steps)
    readers = _readers(steps)
    for i in range(len(steps)):
        while steps[i] is not None:
            s = steps[i]
            r = readers.get(s.output, [])
            if len(r) != 1 or s.output in ctx.outputs:
                break
            j = r[0]
            t, old = steps[j], s.output
            if not fuse(steps, s, t, i):
                break
            for x in t.inputs:  # what t read besides s's output, s reads now
                if x != old:
                    readers[x] = [i if k == j else k for k in readers[x]]
            steps[j] = None
    return [s for s in steps if s is not None]


def alias_identities(steps, ctx):
    alias, kept = {}, []
    for s in steps:
        s.inputs = [alias.get(t, t) for t in s.inputs]
        if s.op == "identity" and s.output not in ctx.outputs:
            alias[s.output] = s.inputs[0]
            continue
        kept.append(s)
    return kept


def fold_batch_norm(steps, ctx):
    def fuse(steps, s, bn, i):
        if s.op != "conv2d" or bn.op != "batch_norm" or bn.attrs["activation"] is not None:
            return False
        if s.attrs["activation"] is not None or len(s.inputs) != 1:
            return False
        s.params = fold_bn(s.params, bn.params, bn.attrs["eps"])
        _absorb(s, bn)
        return True

    return _fuse_forward(steps, ctx, fuse)


def fold_channel_scale(steps, ctx):
    def fuse(steps, s, m, i):
        if s.op != "conv2d" or m.op != "binary" or m.attrs["fn"] != "mul" or "other" not in m.params:
            return False
        if s.attrs["activation"] is not None or s.attrs.get("post_act") or len(s.inputs) != 1 or s.attrs.get("max_map"):
            return False
        K = s.params["weight"].shape[0]
        g = m.params["other"]
        if g.size != K or g.ndim > 4 or g.shape[-2:] != (1, 1) or len(ctx.shapes[s.output]) != 4:
            return False  # one value per output channel, broadcast over (H, W) only
        g64 = g.reshape(-1).astype(np.float64)
        w = s.params["weight"].astype(np.float64) * g64[:, None, None, None]
        b = s.params.get("bias")
        params = {"weight": w.astype(np.float32)}
        if b is not None:
            params["bias"] = (b.astype(np.float64) * g64).astype(np.float32)
        s.params = params
        _absorb(s, m)
        return True

    return _fuse_forward(steps, ctx, fuse)


def fuse_residual_add(steps, ctx):
    def fuse(steps, s, add, i):
        if (
            s.op != "conv2d"
            or add.op != "add"
            or s.attrs["activation"] is not None
            or len(s.inputs) != 1
            or s.attrs.get("max_map")
            or add.attrs["activation"] is not None
            or add.inputs.count(s.output) != 1
        ):
            return False
        other = add.inputs[1 - add.inputs.index(s.output)]
        made_before = other in ctx.inputs or any(p is not None and p.output == other for p in steps[:i])
        if not made_before or ctx.shapes[other] != ctx.shapes[s.output]:
            return False
        s.inputs = s.inputs + [other]
        _absorb(s, add)
        return True

    return _fuse_forward(steps, ctx, fuse)


def fuse_relu(steps, ctx):
    def fuse(steps, s, r, i):
        if (
            r.op != "relu"
            or s.op not in ("conv2d", "linear", "batch_norm", "add")
            or s.attrs["activation"] is not None
            or s.attrs.get("max_map")
        ):
            return False
        _absorb(s, r, activation="relu")
        return True

    return _fuse_forward(steps, ctx, fuse)


def fuse_activation(steps, ctx):
    """A conv's only reader an element-wise activation with a C++ kernel (ReLU6 / clip, hard-swish,
    sigmoid, SiLU, GELU ...): applied in place on the conv's output in the conv's step."""

    def fuse(steps, s, u, i):
        if s.op != "conv2d" or u.op != "unary" or u.attrs["fn"] not in C_UNARY or s.attrs.get("max_map"):
            return False
        if s.attrs.get("post_act"):
            return False
        _absorb(
            s,
            u,
            post_act=(u.attrs["fn"], u.attrs.get("alpha"), u.attrs.get("beta"), u.attrs.get("lo"), u.attrs.get("hi")),
        )
        return True

    return _fuse_forward(steps, ctx, fuse)


def fuse_max_map(steps, ctx):
    def fuse(steps, s, m, i):
        if (
            s.op != "conv2d"
            or len(s.inputs) != 1
            or m.op != "reduce_max"
            or s.attrs.get("max_map")
            or not hw_axes(m.attrs["axes"])
        ):
            return False
        _absorb(s, m, max_map=2 if m.attrs["keepdims"] else 1)
        return True

    return _fuse_forward(steps, ctx, fuse)


def make_kernels(steps, ctx):
    for s in steps:
        s.fn = OPS[s.op].kernel(s.attrs, s.params, ctx.algo)
        s.fn.prepare_for(ctx.shapes[s.inputs[0]])  # weights transformed now, at the declared input shape
    return steps


def fuse_conv_banks(steps, ctx):
    """Convolutions of one tensor that are each reduced by a max over their maps (max_map steps)
    and meet in one channel concat, nothing else reading them, become one step: a sentence CNN's
    filter bank (Kim's CNN: heights 3, 4 and 5 over the word vectors, max over time, concat).
    Its prepared.ConvBankMax runs them as one kernel where the shapes allow (one input channel,
    whole-row windows: the im2col matrix packed once for all of them, one parallel region) and
    one by one otherwise. The step takes the concat's place in the plan; plan() lists its parts."""
    producer = {s.output: i for i, s in enumerate(steps)}
    uses = {t: len(r) for t, r in _readers(steps).items()}
    fused, replace = set(), {}
    for ci, s in enumerate(steps):
        if s.op != "concat" or len(s.inputs) < 2 or len(set(s.inputs)) != len(s.inputs):
            continue
        ps = [producer.get(t) for t in s.inputs]
        if any(p is None for p in ps):
            continue
        convs = [steps[p] for p in ps]
        max_maps = {c.attrs.get("max_map") for c in convs}
        if (
            any(
                c.op != "conv2d"
                or len(c.inputs) != 1
                or not isinstance(c.fn, ConvMaxMap)
                or not isinstance(c.fn.conv, PreparedConv)
                or uses.get(c.output) != 1
                or c.output in ctx.outputs
                for c in convs
            )
            or len({c.inputs[0] for c in convs}) != 1
            or len(max_maps) != 1
            or None in max_maps
        ):
            continue
        max_map = max_maps.pop()
        if s.attrs["axis"] % (2 if max_map == 1 else 4) != 1:
            continue
        fused.update(ps)
        replace[ci] = Step(
            [nm for c in convs for nm in c.names] + list(s.names),
            "conv2d_bank",
            [convs[0].inputs[0]],
            s.output,
            {"max_map": max_map},
            fn=ConvBankMax([c.fn.conv for c in convs], max_map),
            parts=convs + [s],
        )
    return [replace.get(i, s) for i, s in enumerate(steps) if i not in fused]


def mark_dead_tensors(steps, ctx):
    last = {}
    for i, s in enumerate(steps):
        s.free = []
        for t in s.inputs:
            last[t] = i
    for t, i in last.items():
        if t not in ctx.outputs:
            steps[i].free.append(t)
    return steps


FUSION_PASSES = (
    alias_identities,
    fold_batch_norm,
    fold_channel_scale,
    fuse_residual_add,
    fuse_relu,
    fuse_activation,
    fuse_max_map,
)
PLAN_PASSES = FUSION_PASSES + (pad_channels, make_kernels, fuse_conv_banks, mark_dead_tensors)


def build_plan(nodes, ctx, passes=PLAN_PASSES) -> list:
    """The steps of nodes after the passes."""
    steps = initial_steps(nodes)
    for p in passes:
        steps = p(steps, ctx)
    return steps


def fold_bn(conv_params, bn_params, eps):
    """Conv weights and bias with the batch norm after them folded in (computed in float64)."""
    p = bn_params
    scale, shift = ops.fold_batch_norm(p["running_mean"], p["running_var"], p.get("weight"), p.get("bias"), eps)
    w = conv_params["weight"].astype(np.float64) * scale.astype(np.float64)[:, None, None, None]
    b = conv_params.get("bias")
    b = shift.astype(np.float64) + (0.0 if b is None else b.astype(np.float64) * scale)
    return {"weight": w.astype(np.float32), "bias": b.astype(np.float32)}


__all__ = [
    "PlanContext",
    "PLAN_PASSES",
    "FUSION_PASSES",
    "build_plan",
    "initial_steps",
    "alias_identities",
    "fold_batch_norm",
    "fold_channel_scale",
    "fuse_residual_add",
    "fuse_relu",
    "fuse_activation",
    "fuse_max_map",
    "make_kernels",
    "fuse_conv_banks",
    "mark_dead_tensors",
    "fold_bn",
]
