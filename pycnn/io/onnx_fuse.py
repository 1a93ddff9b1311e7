"""Activations exporters write as several ONNX nodes, rewritten into one Graph unary step at load:

  SiLU  x * Sigmoid(x)                              (torch.nn.SiLU, EfficientNet)
  GELU  x * 0.5 * (1 + Erf(x / sqrt 2)), the factors in either order, x / sqrt 2 also written
        x * (1 / sqrt 2)                            (torch.nn.GELU, ConvNeXt)

and MatMul followed by Add of a constant vector over the last axis (ConvNeXt's MLPs) becomes one
linear step with its bias.

A chain is fused only when its intermediate tensors have no other reader and are not graph
outputs, so the Graph computes the same function with one pass over memory instead of five.
"""

from __future__ import annotations

import numpy as np

from ..graph import Node


def _scalar(n, role, value, tol=1e-6):
    v = n.params.get(role)
    return v is not None and v.size == 1 and abs(float(v.reshape(-1)[0]) - value) <= tol * abs(value)


def _is(n, op, fn=None):
    return n is not None and n.op == op and (fn is None or n.attrs.get("fn") == fn)


def fuse_activations(nodes: list, outputs: list) -> list:
    readers = {}
    for n in nodes:
        for t in n.inputs:
            readers[t] = readers.get(t, 0) + 1
    for t in outputs:
        readers[t] = readers.get(t, 0) + 1
    by_out = {n.output: n for n in nodes}
    drop = set()

    def only(t):  # the node making t, when its single reader is the chain being fused
        n = by_out.get(t)
        return n if n is not None and readers.get(t) == 1 and n.output not in drop else None

    def mul_const(n, value):
        return _is(n, "binary", "mul") and len(n.inputs) == 1 and _scalar(n, "other", value)

    def fused(n, fn, x):
        return Node(n.name, "unary", [x], n.output, {"fn": fn})

    out = []
    for n in nodes:
        rep = None
        if _is(n, "binary", "mul") and len(n.inputs) == 2 and not n.params:
            a, b = n.inputs
            for x, s in ((a, b), (b, a)):
                sig = only(s)
                if _is(sig, "unary", "sigmoid") and sig.inputs[0] == x:
                    rep, chain = fused(n, "silu", x), [sig]
                    break
        if rep is None:
            rep, chain = _gelu(n, only, mul_const)
        if rep is None and _is(n, "bias_add"):
            lin = only(n.inputs[0])
            b = n.params["bias"]
            plain = lin is not None and lin.attrs.get("activation") is None and lin.attrs.get("bias_scale", 1.0) == 1.0
            if _is(lin, "linear") and "bias" not in lin.params and plain:
                fout = lin.params["weight"].shape[1 if lin.attrs.get("transposed") else 0]
                if b.ndim >= 1 and b.shape[-1] == fout and b.size == fout:
                    params = dict(lin.params, bias=b.reshape(-1))
                    keys = dict(lin.keys, bias=n.keys["bias"])
                    rep, chain = Node(lin.name, "linear", lin.inputs, n.output, lin.attrs, params, keys), [lin]
        if rep is not None:
            drop.update(c.output for c in chain)
            n = rep
        out.append(n)
    return [n for n in out if n.output not in drop]


def _gelu(n, only, mul_const):
    """n is the last Mul of x * 0.5 * (1 + erf(x / sqrt 2)) (either grouping): the fused node and
    the chain's other nodes, or (None, None)."""
    half = 0.5

    def one_plus_erf(t, x):  # t = 1 + erf(x / sqrt 2), each step read only by the next
        add = only(t)
        if not (
            _is(add, "bias_add") and add.params["bias"].size == 1 and float(add.params["bias"].reshape(-1)[0]) == 1
        ):
            return None
        erf = only(add.inputs[0])
        if not _is(erf, "unary", "erf"):
            return None
        d = only(erf.inputs[0])
        ok_div = _is(d, "binary", "div") and len(d.inputs) == 1 and not d.attrs.get("const_first")
        ok_div = ok_div and _scalar(d, "other", float(np.sqrt(2.0)))
        if not (ok_div or mul_const(d, float(1 / np.sqrt(2.0)))) or d.inputs[0] != x:
            return None
        return [add, erf, d]

    if mul_const(n, half):  # (x * (1 + erf)) * 0.5
        m = only(n.inputs[0])
        if _is(m, "binary", "mul") and len(m.inputs) == 2:
            for x, t in (m.inputs, m.inputs[::-1]):
                chain = one_plus_erf(t, x)
                if chain:
                    return Node(n.name, "unary", [x], n.output, {"fn": "gelu"}), [m] + chain
    if _is(n, "binary", "mul") and len(n.inputs) == 2 and not n.params:  # (x * 0.5) * (1 + erf)
        for h, t in (n.inputs, n.inputs[::-1]):
            m = only(h)
            if mul_const(m, half):
                chain = one_plus_erf(t, m.inputs[0])
                if chain:
                    return Node(n.name, "unary", [m.inputs[0]], n.output, {"fn": "gelu"}), [m] + chain
    return None, None
