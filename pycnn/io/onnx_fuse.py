"""Activations exporters write as several ONNX nodes, rewritten into one Graph unary step at load:

  SiLU  x * Sigmoid(x)                              (torch.nn.SiLU, EfficientNet)
  GELU  x * 0.5 * (1 + Erf(x / sqrt 2)), the factors in either order, x / sqrt 2 also written
        x * (1 / sqrt 2)                            (torch.nn.GELU, ConvNeXt)

and MatMul followed by Add of a constant vector over the last axis (ConvNeXt's MLPs) becomes one
linear step with its bias.

channels_last_mlps: a block PyTorch runs on NHWC between two transposes (ConvNeXt's
Permute -> LayerNorm -> Linear -> GELU -> Linear -> Permute) becomes the same function on NCHW:
LayerNorm over channels -> 1x1 conv -> activation -> 1x1 conv. No transposes, and the convs take
the activation, the layer scale and the residual add in their epilogues (pycnn/graph/passes.py).

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


def _reader_counts(nodes, outputs) -> dict:
    """tensor -> how many nodes read it (a graph output counts as one more reader)."""
    readers = {}
    for t in [t for n in nodes for t in n.inputs] + list(outputs):
        readers[t] = readers.get(t, 0) + 1
    return readers


def fuse_activations(nodes: list, outputs: list) -> list:
    readers = _reader_counts(nodes, outputs)
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


def _perm(n, perm):
    return _is(n, "transpose") and n.attrs.get("perm") == perm


def _linear_as_conv(lin, x, out):
    """The 1x1 conv computing linear node lin over the channels of an NCHW x."""
    w = lin.params["weight"]
    w = w.T if lin.attrs.get("transposed") else w
    w = w * np.float32(lin.attrs.get("scale", 1.0))
    params = {"weight": np.ascontiguousarray(w, np.float32)[:, :, None, None]}
    if "bias" in lin.params:
        b = np.broadcast_to(lin.params["bias"].reshape(-1), (w.shape[0],))
        b = b * np.float32(lin.attrs.get("bias_scale", 1.0))
        params["bias"] = np.ascontiguousarray(b, np.float32)
    # its own default keys (name.weight, name.bias): the arrays are no longer the initializers' shape
    return Node(lin.name, "conv2d", [x], out, {"activation": lin.attrs.get("activation")}, params)


def channels_last_mlps(nodes: list, outputs: list) -> list:
    """transpose (0, 2, 3, 1) -> layer_norm (last axis) -> linear -> [unary] -> linear ->
    transpose (0, 3, 1, 2), each intermediate read only by the next and not a graph output:
    channel_norm -> conv2d 1x1 -> [unary] -> conv2d 1x1, the last writing the second transpose's
    output; transpose -> layer_norm -> transpose (torchvision's LayerNorm2d): channel_norm.
    Other chains are left as they are."""
    readers = _reader_counts(nodes, outputs)
    reader_of = {}
    for n in nodes:
        for t in n.inputs:
            reader_of[t] = n

    def next_of(n):  # n's only reader, when n's output has exactly one
        return reader_of.get(n.output) if readers.get(n.output) == 1 else None

    replace, drop = {}, set()
    for n in nodes:
        if not _perm(n, (0, 2, 3, 1)) or id(n) in drop:
            continue
        ln = next_of(n)
        if not (_is(ln, "layer_norm") and ln.attrs["axis"] in (-1, 3) and ln.inputs == [n.output]):
            continue
        C = ln.params["weight"].size if "weight" in ln.params else None
        if C is None or any(ln.params[r].size != C for r in ("weight", "bias") if r in ln.params):
            continue
        norm = Node(ln.name, "channel_norm", [n.inputs[0]], ln.output, {"eps": ln.attrs["eps"]}, ln.params, ln.keys)
        chain, lin1 = [ln], next_of(ln)
        if _perm(lin1, (0, 3, 1, 2)) and lin1.inputs == [ln.output]:  # LayerNorm2d alone (stem, downsampling)
            norm.output = lin1.output
            replace[id(n)] = [norm]
            drop.update(id(c) for c in (ln, lin1))
            continue
        if not _is(lin1, "linear") or lin1.inputs != [ln.output]:
            continue
        chain.append(lin1)
        act = next_of(lin1)
        if _is(act, "unary") and act.inputs == [lin1.output]:
            chain.append(act)
            lin2 = next_of(act)
        else:
            act, lin2 = None, act
        if not _is(lin2, "linear") or lin2.inputs != [chain[-1].output]:
            continue
        back = next_of(lin2)
        if not (_perm(back, (0, 3, 1, 2)) and back.inputs == [lin2.output]):
            continue
        new = [norm, _linear_as_conv(lin1, ln.output, lin1.output)]
        if act is not None:
            new.append(act)
        new.append(_linear_as_conv(lin2, chain[-1].output, back.output))
        replace[id(n)] = new
        drop.update(id(c) for c in chain + [lin2, back])
    out = []
    for n in nodes:
        if id(n) in drop:
            continue
        out.extend(replace.get(id(n), [n]))
    return out
