"""pycnn.load_onnx(path_or_bytes) -> Graph: the lecture's networks and torchvision's CNN families.

Supported (ONNX default domain, opsets 7-22): Conv, MaxPool, AveragePool, GlobalAveragePool,
LRN, Gemm, MatMul, Relu, Add, Sub, Mul, Div, Pow (NumPy broadcasting), Sigmoid, HardSigmoid,
HardSwish, Clip, Sqrt, Exp, Neg, Tanh, Abs, Erf, Reciprocal, Concat, Softmax, BatchNormalization,
LayerNormalization, Flatten, Reshape, Dropout, Identity, Cast (to float), Gather (an embedding:
constant table, integer ids), ReduceMax, ReduceMean, Transpose, Squeeze, Unsqueeze, Slice, Split,
Pad, Constant. Every node whose inputs are all constants is evaluated at load (ONNX's reference
evaluator): weight preprocessing and the shape arithmetic exporters write (Shape, Size, Gather,
Concat, Cast, ConstantOfShape, Range ... feeding a Reshape); a shape that depends on the batch size
is folded at three batch sizes and its batch entry written as 0 or -1. Conv weights that are graph
inputs or computed run pycnn.conv2d per call (step 'conv2d_dynamic'); Gemm with transA, tensor B,
alpha, beta and a C of any broadcastable shape, and MatMul of tensors of any rank, run as a
matmul step. auto_pad SAME_UPPER / SAME_LOWER at any stride and asymmetric or wide pooling pads
are padded by a pad step where the kernels take only symmetric padding. An input's first
dimension is the batch where the file leaves it symbolic (and for the first input declared with
1); otherwise it is fixed. Any other operator, or an attribute value the kernels do not implement
(1-D / 3-D operators, even LRN sizes, training outputs ...), raises ValueError naming the node,
the operator and the attribute. Parameter keys are the initializer names, so g.state_dict()
matches the file. Needs the onnx package (pip install onnx).
"""

from __future__ import annotations

import os
from typing import Any, Optional, Union

import numpy as np

from .._optional import require
from ..graph import Graph, Node
from ..layers import OPS
from .onnx_fuse import channels_last_mlps, fuse_activations

# ONNX operators that map one to one onto the Graph's element-wise ops.
_BINARY_OPS = {"Sub": "sub", "Mul": "mul", "Div": "div", "Pow": "pow"}
_UNARY_OPS = {
    "Sigmoid": "sigmoid",
    "HardSwish": "hardswish",
    "Sqrt": "sqrt",
    "Exp": "exp",
    "Neg": "neg",
    "Tanh": "tanh",
    "Abs": "abs",
    "Erf": "erf",
    "Reciprocal": "reciprocal",
}
# Operators imported only when every input is a constant (evaluated at load by ONNX's reference
# evaluator): the shape arithmetic exporters write around Reshape, Slice and Pad.
_FOLD_ONLY = ("ConstantOfShape", "Range", "Equal", "Where", "Expand", "Floor", "Ceil", "Min", "Max", "Not")
_NO_FOLD = ("Constant", "Shape", "Size", "Identity", "Dropout")  # handled by their op_ methods
_BATCHES = (1, 2, 3)  # batch sizes a shape computation is evaluated at (the batch is free)
_INT_TYPES = {6, 7, 12, 13}  # INT32, INT64, UINT32, UINT64
_FLOAT_TYPES = {1}  # FLOAT: the kernels' type (FLOAT16 / DOUBLE inputs are refused, not converted)


def supported_ops() -> list:
    """The ONNX operators load_onnx imports (those of _FOLD_ONLY on constant inputs only)."""
    own = [m[3:] for m in dir(_Importer) if m.startswith("op_")]
    return sorted(own + list(_UNARY_OPS) + list(_BINARY_OPS) + list(_FOLD_ONLY))


class _Importer:
    def __init__(self, model):
        self.nh = require("onnx.numpy_helper", "pycnn.load_onnx")
        self.model = model
        self.opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 13)
        g = model.graph
        self.consts = {t.name: self.nh.to_array(t) for t in g.initializer}
        # Values computed from the input's shape (Shape -> Gather -> Concat -> Reshape): one array per
        # batch size of _BATCHES; constant folding evaluates them at each, and a Reshape target that
        # differs between them is the batch dimension (written as 0 or -1).
        self.batch_consts = {}
        self.shapes = {b: {} for b in _BATCHES}  # tensor -> shape at batch b (None: not static)
        self.const_source = {}  # constant -> the initializer it copies (Identity of an initializer)
        self.nodes = []
        self.names = set()
        self.used_keys = set()
        self.produced = set()
        self.inputs, self.dtypes = {}, {}
        for vi in g.input:
            if vi.name in self.consts:
                continue
            tt = vi.type.tensor_type
            dims = tuple((d.dim_value if d.HasField("dim_value") else None) for d in tt.shape.dim)
            if tt.elem_type in _INT_TYPES:
                self.dtypes[vi.name] = "int64"
            elif tt.elem_type not in _FLOAT_TYPES:
                raise ValueError(
                    f"ONNX input {vi.name!r}: element type {tt.elem_type} is not float32 or integer (pycnn's kernels "
                    f"are float32)"
                )
            # An input's first dimension is the batch (free) where the file leaves it symbolic, and
            # for the first input declared with 1 (a model exported at batch 1 runs any batch);
            # otherwise it is fixed (weights fed at run time, Gemm's transposed A).
            batched = not dims or not dims[0] or (not self.inputs and dims[0] == 1)
            self.inputs[vi.name] = ((None,) if batched else dims[:1]) + dims[1:] if dims else (None,)
            self.produced.add(vi.name)
            for b in _BATCHES:
                static = dims and all(d for d in dims[1:])
                self.shapes[b][vi.name] = ((b,) if batched else dims[:1]) + dims[1:] if static else None
        self.outputs = [o.name for o in g.output]

    # ------------------------------------------------------------------ helpers
    def err(self, node, msg):
        return ValueError(f"ONNX node {self.label(node)!r} ({node.op_type}): {msg}")

    @staticmethod
    def label(node):
        return node.name or (node.output[0] if node.output else node.op_type)

    def attrs(self, node):
        helper = require("onnx.helper", "pycnn.load_onnx")
        return {a.name: helper.get_attribute_value(a) for a in node.attribute}

    def const(self, node, i, what):
        if i >= len(node.input) or node.input[i] == "":
            return None
        name = node.input[i]
        if name in self.batch_consts:
            raise self.err(node, f"{what} ({name!r}) depends on the batch size; pycnn needs it constant")
        if name not in self.consts:
            raise self.err(node, f"{what} ({name!r}) must be a constant (initializer or Constant)")
        return self.consts[name]

    def is_const(self, name):
        return name == "" or name in self.consts or name in self.batch_consts

    def fold(self, node):
        """Evaluates a node whose inputs are all constants with ONNX's reference evaluator, once
        per batch size when an input depends on it: shape arithmetic and weight preprocessing."""
        helper = require("onnx.helper", "pycnn.load_onnx")
        ref = require("onnx.reference", "pycnn.load_onnx")
        names = [t for t in node.input if t]
        per_batch = any(t in self.batch_consts for t in names)
        outs = {t: [] for t in node.output if t}
        model = helper.make_model(
            helper.make_graph(
                [node],
                "fold",
                [
                    helper.make_tensor_value_info(t, helper.np_dtype_to_tensor_dtype(self._value(t, 1).dtype), None)
                    for t in names
                ],
                [helper.make_tensor_value_info(t, 0, None) for t in outs],
            ),
            opset_imports=list(self.model.opset_import),
        )
        try:
            sess = ref.ReferenceEvaluator(model)
            for b in _BATCHES if per_batch else _BATCHES[:1]:
                for t, v in zip(outs, sess.run(None, {t: self._value(t, b) for t in names})):
                    outs[t].append(np.asarray(v))
        except Exception as e:  # noqa: BLE001 - the reference evaluator raises anything
            raise self.err(node, f"could not fold this node of constant inputs: {type(e).__name__}: {e}") from None
        for t, vs in outs.items():
            if all(v.shape == vs[0].shape and np.array_equal(v, vs[0]) for v in vs[1:]):
                self.consts[t] = vs[0]
            else:
                self.batch_consts[t] = vs

    def _value(self, name, b):
        return self.batch_consts[name][_BATCHES.index(b)] if name in self.batch_consts else self.consts[name]

    def key(self, name):
        name = self.const_source.get(name, name)  # a weight passed through Identity keeps its initializer's name
        k = name
        i = 2
        while k in self.used_keys:
            k, i = f"{name}#{i}", i + 1
        self.used_keys.add(k)
        return k

    def emit(self, node, op, inputs, attrs=None, params=None, param_names=None, output=None, name=None):
        name = name or self.label(node)
        base, i = name, 2
        while name in self.names:
            name, i = f"{base}_{i}", i + 1
        self.names.add(name)
        for t in inputs:
            if t not in self.produced:
                raise self.err(node, f"input {t!r} is neither a graph input nor computed by an earlier node")
        keys = {r: self.key(param_names[r]) for r in (params or {})} if param_names else {}
        n = Node(name, op, inputs, output or node.output[0], attrs or {}, params or {}, keys)
        self.nodes.append(n)
        self.produced.add(n.output)
        for shapes in self.shapes.values():  # static shapes for Shape nodes downstream
            ins = [shapes.get(t) for t in n.inputs]
            try:
                shapes[n.output] = None if None in ins else OPS[op].infer(n.attrs, n.params, ins)
            except ValueError:
                shapes[n.output] = None

    def check_single_output(self, node):
        extra = [o for o in node.output[1:] if o]
        if extra and any(self.is_used(o) for o in extra):
            raise self.err(node, f"its extra outputs {extra} are not supported")

    def is_used(self, t):
        return any(t in n.input for n in self.model.graph.node) or t in self.outputs

    # ------------------------------------------------------------------ operators
    def convert(self, node):
        op = node.op_type
        a = self.attrs(node)
        fn = getattr(self, f"op_{op}", None)
        if op in _UNARY_OPS:
            fn = lambda node, a: self._unary(node, _UNARY_OPS[op])  # noqa: E731
        elif op in _BINARY_OPS:
            fn = lambda node, a: self._binary(node, _BINARY_OPS[op])  # noqa: E731
        if node.domain not in ("", "ai.onnx") or fn is None and op not in _FOLD_ONLY:
            raise self.err(
                node,
                f"unsupported operator (domain {node.domain or 'ai.onnx'!r}); pycnn.load_onnx "
                f"supports {supported_ops()}",
            )
        inputs = [t for t in node.input if t]
        if op not in _NO_FOLD and inputs and all(self.is_const(t) for t in inputs):
            self.fold(node)  # every input is known at load time
            return
        if fn is None:
            raise self.err(
                node, f"{op} is supported only on constants (shape arithmetic folded at load); input {inputs} is not"
            )
        if op != "Split":  # Split writes each of its outputs
            self.check_single_output(node)
        fn(node, a)

    def op_Constant(self, node, a):
        if "value" not in a:
            raise self.err(node, f"only the 'value' attribute is supported, got {sorted(a)}")
        self.consts[node.output[0]] = self.nh.to_array(a["value"])

    def _pads(self, node, a, kernel, strides, dilations):
        """(top, left, bottom, right) from pads or auto_pad; SAME_UPPER / SAME_LOWER pad the input
        (its shape must be static) so that the output is ceil(input / stride), the odd pixel at the
        end (UPPER) or the start (LOWER)."""
        auto = a.get("auto_pad", b"NOTSET")
        auto = auto.decode() if isinstance(auto, bytes) else auto
        if auto in ("NOTSET", ""):
            pads = list(a.get("pads", [0, 0, 0, 0]))
            if len(pads) != 4:
                raise self.err(node, f"pads {pads}: only 2-D operators are supported")
            return pads
        if auto == "VALID":
            return [0, 0, 0, 0]
        if auto not in ("SAME_UPPER", "SAME_LOWER"):
            raise self.err(node, f"unsupported attribute auto_pad={auto!r}")
        shape = self.shapes[_BATCHES[0]].get(node.input[0])
        if shape is None or len(shape) != 4:
            raise self.err(node, f"auto_pad={auto!r} needs the input's height and width to be static")
        begin, end = [], []
        for size, k, st, d in zip(shape[2:], kernel, strides, dilations):
            total = max((-(-size // st) - 1) * st + d * (k - 1) + 1 - size, 0)
            small, large = total // 2, total - total // 2
            begin.append(small if auto == "SAME_UPPER" else large)
            end.append(large if auto == "SAME_UPPER" else small)
        return begin + end

    def op_Conv(self, node, a):
        if node.input[1] not in self.consts:
            return self._conv_dynamic(node, a)
        w = self.const(node, 1, "weight")
        if w.ndim != 4:
            raise self.err(node, f"only 2-D convolutions are supported, weight shape {w.shape}")
        b = self.const(node, 2, "bias")
        strides = list(a.get("strides", [1, 1]))
        dil = list(a.get("dilations", [1, 1]))
        kernel = list(a.get("kernel_shape", w.shape[2:]))
        if kernel != list(w.shape[2:]):
            raise self.err(node, f"kernel_shape {kernel} does not match the weight {w.shape}")
        pads = self._pads(node, a, kernel, strides, dil)
        params, names = {"weight": w}, {"weight": node.input[1]}
        if b is not None:
            params["bias"], names["bias"] = b, node.input[2]
        self.emit(
            node,
            "conv2d",
            [node.input[0]],
            dict(stride=tuple(strides), padding=tuple(pads), dilation=tuple(dil), groups=a.get("group", 1)),
            params,
            names,
        )

    def _conv_dynamic(self, node, a):
        """Conv whose weights are computed or fed at run time: pycnn.conv2d per call."""
        w_name = node.input[1]
        if w_name not in self.produced:
            raise self.err(node, f"weight {w_name!r} is neither a constant nor a graph input or computed tensor")
        kernel = a.get("kernel_shape")
        wshape = self.shapes[_BATCHES[0]].get(w_name)
        if kernel is None:
            if wshape is None or len(wshape) != 4:
                raise self.err(node, "kernel_shape is needed when the weight's shape is not static")
            kernel = wshape[2:]
        if len(kernel) != 2:
            raise self.err(node, f"kernel_shape {list(kernel)}: only 2-D convolutions are supported")
        strides, dil = list(a.get("strides", [1, 1])), list(a.get("dilations", [1, 1]))
        pads = self._pads(node, a, list(kernel), strides, dil)
        attrs = dict(stride=tuple(strides), padding=tuple(pads), dilation=tuple(dil), groups=a.get("group", 1))
        b = node.input[2] if len(node.input) > 2 and node.input[2] else None
        if b is None or b in self.produced:
            self.emit(node, "conv2d_dynamic", [node.input[0], w_name] + ([b] if b else []), attrs)
            return
        bias = self.const(node, 2, "bias")
        mid = f"{node.output[0]}::conv"
        self.emit(node, "conv2d_dynamic", [node.input[0], w_name], attrs, output=mid, name=f"{self.label(node)}:conv")
        self.emit(node, "binary", [mid], dict(fn="add"), {"other": bias.reshape(-1, 1, 1)}, {"other": node.input[2]})

    def _pool(self, node, a, op):
        kernel = list(a["kernel_shape"])
        strides = list(a.get("strides", [1, 1]))
        if len(kernel) != 2:
            raise self.err(node, f"kernel_shape {kernel}: only 2-D pooling is supported")
        if list(a.get("dilations", [1, 1])) != [1, 1]:
            raise self.err(node, f"unsupported attribute dilations={list(a['dilations'])}")
        pads = self._pads(node, a, kernel, strides, [1, 1])
        ceil_mode = bool(a.get("ceil_mode", 0))
        include = bool(a.get("count_include_pad", 0))
        x = node.input[0]
        wide = max(pads[0], pads[2]) * 2 > kernel[0] or max(pads[1], pads[3]) * 2 > kernel[1]
        if pads[0] != pads[2] or pads[1] != pads[3] or wide:
            # Asymmetric, or wider than half the window (which the pooling kernels refuse): the
            # padding as its own step (-inf for max, 0 for an average), then the pool without any.
            if ceil_mode:
                raise self.err(node, f"unsupported attributes pads={pads} (asymmetric or wide) with ceil_mode=1")
            value = -np.inf if op == "max_pool2d" else 0.0
            mid = f"{node.output[0]}::pad"
            full = [0, 0, pads[0], pads[1], 0, 0, pads[2], pads[3]]
            self.emit(node, "pad", [x], dict(pads=full, value=value), output=mid, name=f"{self.label(node)}:pad")
            x = mid
            if op == "avg_pool2d" and not include:  # mean of the real cells: rescale each window
                factor = self._window_factor(node, kernel, strides, pads)
                attrs = dict(kernel=tuple(kernel), stride=tuple(strides), padding=(0, 0), count_include_pad=True)
                summed = f"{node.output[0]}::avg"
                self.emit(node, op, [x], attrs, output=summed, name=f"{self.label(node)}:avg")
                self.emit(node, "binary", [summed], dict(fn="mul"), {"other": factor}, {"other": f"{summed}.count"})
                return
            pads = [0, 0, 0, 0]
        attrs = dict(kernel=tuple(kernel), stride=tuple(strides), padding=(pads[0], pads[1]), ceil_mode=ceil_mode)
        if op == "avg_pool2d":
            attrs["count_include_pad"] = include
        self.emit(node, op, [x], attrs)

    def _window_factor(self, node, kernel, strides, pads):
        """(1, 1, Ho, Wo): window size / real cells of each window, for an average that leaves the
        padding out computed as one that counts it."""
        shape = self.shapes[_BATCHES[0]].get(node.input[0])
        if shape is None:
            raise self.err(node, "asymmetric padding with count_include_pad=0 needs a static input shape")
        counts = []
        for size, k, st, p0, p1 in zip(shape[2:], kernel, strides, pads[:2], pads[2:]):
            n_out = (size + p0 + p1 - k) // st + 1
            starts = np.arange(n_out) * st - p0
            counts.append(np.minimum(starts + k, size) - np.maximum(starts, 0))
        real = np.outer(counts[0], counts[1]).astype(np.float64)
        return (kernel[0] * kernel[1] / real).astype(np.float32)[None, None]

    def op_MaxPool(self, node, a):
        if a.get("storage_order", 0) != 0:
            raise self.err(node, "unsupported attribute storage_order=1")
        self._pool(node, a, "max_pool2d")

    def op_AveragePool(self, node, a):
        self._pool(node, a, "avg_pool2d")

    def op_GlobalAveragePool(self, node, a):
        self.emit(node, "global_avg_pool2d", [node.input[0]])

    def op_LRN(self, node, a):
        size = int(a["size"])
        if size % 2 == 0:  # ONNX and PyTorch place an even window differently
            raise self.err(node, f"unsupported attribute size={size} (even LRN window)")
        self.emit(
            node,
            "local_response_norm",
            [node.input[0]],
            dict(size=size, alpha=a.get("alpha", 1e-4), beta=a.get("beta", 0.75), k=a.get("bias", 1.0)),
        )

    def op_Gemm(self, node, a):
        c_name = node.input[2] if len(node.input) > 2 else ""
        c_vec = c_name == "" or c_name in self.consts and self._bias_like(self.consts[c_name], node, a)
        if a.get("transA", 0) or node.input[1] not in self.consts or not c_vec:
            return self._gemm_general(node, a)
        w = self.const(node, 1, "B")
        c = self.const(node, 2, "C")
        params, names = {"weight": w}, {"weight": node.input[1]}
        if c is not None:
            fout = w.shape[0] if a.get("transB", 0) else w.shape[1]
            if c.size not in (1, fout) or c.ndim > 1 and c.shape[0] != 1:
                raise self.err(node, f"C of shape {c.shape} must broadcast as a bias of {fout} outputs")
            params["bias"], names["bias"] = np.broadcast_to(c.reshape(-1), (fout,)).copy(), node.input[2]
        self.emit(
            node,
            "linear",
            [node.input[0]],
            dict(transposed=not a.get("transB", 0), scale=a.get("alpha", 1.0), bias_scale=a.get("beta", 1.0)),
            params,
            names,
        )

    def _bias_like(self, c, node, a):
        """Whether Gemm's constant C is a bias of its outputs (a scalar, (N,) or (1, N))."""
        w = self.consts.get(node.input[1])
        if w is None or w.ndim != 2:
            return False
        fout = w.shape[0] if a.get("transB", 0) else w.shape[1]
        return c.size in (1, fout) and (c.ndim <= 1 or c.ndim == 2 and c.shape[0] == 1)

    def _gemm_general(self, node, a):
        """Y = alpha A' B' + beta C for any of A, B, C constants or tensors, C of any shape that
        broadcasts: transposes, a matmul step, then the scaling and the addition."""
        base, out = self.label(node), node.output[0]
        steps = []  # (tag, op, inputs, attrs, params, param names); inputs are tags or tensors

        def operand(i, trans):  # -> (tensor or tag, constant value, constant name)
            t = node.input[i]
            if t in self.consts:
                v = self.consts[t]
                if v.ndim != 2:
                    raise self.err(node, f"input {'AB'[i]} must be 2-D, got shape {v.shape}")
                return None, (v.T if trans else v), t
            if trans:
                steps.append((f"::t{i}", "transpose", [t], dict(perm=(1, 0)), {}, None))
                return f"::t{i}", None, None
            return t, None, None

        a_t, a_c, a_n = operand(0, a.get("transA", 0))
        b_t, b_c, b_n = operand(1, a.get("transB", 0))
        if a_c is not None:
            steps.append(("::mm", "matmul", [b_t], dict(const_first=True), {"other": a_c}, {"other": a_n}))
        elif b_c is not None:
            steps.append(("::mm", "matmul", [a_t], {}, {"other": b_c}, {"other": b_n}))
        else:
            steps.append(("::mm", "matmul", [a_t, b_t], {}, {}, None))
        alpha, beta, last = float(a.get("alpha", 1.0)), float(a.get("beta", 1.0)), "::mm"
        if alpha != 1.0:
            steps.append(
                ("::sc", "binary", [last], dict(fn="mul"), {"other": np.float32(alpha)}, {"other": f"{base}.alpha"})
            )
            last = "::sc"
        c_name = node.input[2] if len(node.input) > 2 else ""
        if c_name and beta != 0.0:
            if c_name in self.consts:
                c = np.asarray(self.consts[c_name] * np.float32(beta), np.float32)
                steps.append(("::y", "binary", [last], dict(fn="add"), {"other": c}, {"other": c_name}))
            else:
                src = c_name
                if beta != 1.0:
                    p = {"other": np.float32(beta)}
                    steps.append(("::bc", "binary", [c_name], dict(fn="mul"), p, {"other": f"{base}.beta"}))
                    src = "::bc"
                steps.append(("::y", "binary", [last, src], dict(fn="add"), {}, None))
        tags, final = {st[0] for st in steps}, steps[-1][0]

        def tensor(tag):
            return out if tag == final else f"{out}{tag}"

        for tag, op, ins, attrs, params, pnames in steps:
            ins = [tensor(t) if t in tags else t for t in ins]
            name = base if tag == final else f"{base}{tag}"
            self.emit(node, op, ins, attrs, params, pnames, output=tensor(tag), name=name)

    def op_MatMul(self, node, a):
        x, y = node.input
        if y in self.consts and self.consts[y].ndim == 2 and x not in self.consts:
            w = self.consts[y]
            self.emit(node, "linear", [x], dict(transposed=True), {"weight": w}, {"weight": y})
        elif x in self.consts or y in self.consts:
            c, t = (x, y) if x in self.consts else (y, x)
            self.emit(node, "matmul", [t], dict(const_first=x in self.consts), {"other": self.consts[c]}, {"other": c})
        else:
            self.emit(node, "matmul", [x, y])

    def op_Relu(self, node, a):
        self.emit(node, "relu", [node.input[0]])

    def op_Add(self, node, a):
        x, y = node.input
        if x in self.consts or y in self.consts:
            c, t = (x, y) if x in self.consts else (y, x)
            self.emit(node, "bias_add", [t], {}, {"bias": self.consts[c]}, {"bias": c})
        else:
            self.emit(node, "add", [x, y])

    # ---- element-wise: NumPy-broadcast binaries, activations
    def _binary(self, node, fn):
        x, y = node.input
        if x in self.consts or y in self.consts:
            c, t = (x, y) if x in self.consts else (y, x)
            attrs = dict(fn=fn, const_first=x in self.consts)
            self.emit(node, "binary", [t], attrs, {"other": self.consts[c].astype(np.float32)}, {"other": c})
        else:
            self.emit(node, "binary", [x, y], dict(fn=fn))

    def _unary(self, node, fn, **attrs):
        self.emit(node, "unary", [node.input[0]], dict(fn=fn, **attrs))

    def op_HardSigmoid(self, node, a):
        self._unary(node, "hardsigmoid", alpha=float(a.get("alpha", 0.2)), beta=float(a.get("beta", 0.5)))

    def op_Clip(self, node, a):
        if self.opset < 11:
            lo, hi = a.get("min"), a.get("max")
        else:
            lo, hi = self.const(node, 1, "min"), self.const(node, 2, "max")
        lo = None if lo is None else float(np.asarray(lo).reshape(-1)[0])
        hi = None if hi is None else float(np.asarray(hi).reshape(-1)[0])
        if lo == 0.0 and hi is None:
            self.emit(node, "relu", [node.input[0]])
        else:
            self._unary(node, "clip", lo=lo, hi=hi)

    def op_Concat(self, node, a):
        self.emit(node, "concat", list(node.input), dict(axis=a["axis"]))

    def op_Softmax(self, node, a):
        # before opset 13 Softmax normalized over all dimensions from axis on (default 1)
        legacy = self.opset < 13
        self.emit(node, "softmax", [node.input[0]], dict(axis=a.get("axis", 1 if legacy else -1), flatten=legacy))

    def op_BatchNormalization(self, node, a):
        if a.get("training_mode", 0):
            raise self.err(node, "unsupported attribute training_mode=1 (inference only)")
        roles = ("weight", "bias", "running_mean", "running_var")
        params = {r: self.const(node, i + 1, r) for i, r in enumerate(roles)}
        self.emit(
            node,
            "batch_norm",
            [node.input[0]],
            dict(eps=a.get("epsilon", 1e-5)),
            params,
            {r: node.input[i + 1] for i, r in enumerate(roles)},
        )

    def op_Flatten(self, node, a):
        self.emit(node, "flatten", [node.input[0]], dict(axis=a.get("axis", 1)))

    def op_Reshape(self, node, a):
        x, target = node.input[0], node.input[1]
        if target in self.batch_consts:
            shape = self._batch_shape(node, x, self.batch_consts[target])
        else:
            shape = [int(d) for d in self.const(node, 1, "shape")]
        if a.get("allowzero", 0) and 0 in shape:
            if -1 in shape:
                raise self.err(node, f"allowzero=1 with both 0 and -1 in the shape {shape} is invalid")
            raise self.err(node, f"unsupported attribute allowzero=1 with a 0 in the shape {shape} (empty tensors)")
        self.emit(node, "reshape", [x], dict(shape=tuple(shape)))

    def _batch_shape(self, node, x, values):
        """A Reshape target computed from the input's shape: entries equal at every batch size are
        constants; the one that changes with it becomes 0 (the input's batch, where it sits at axis
        0 of both) or -1 (inferred)."""
        vs = [np.asarray(v).reshape(-1).astype(np.int64) for v in values]
        shape, free = [], []
        for i, d in enumerate(vs[0]):
            if all(v[i] == d for v in vs[1:]):
                shape.append(int(d))
                continue
            x0 = [self.shapes[b].get(x) for b in _BATCHES]
            if i == 0 and all(s is not None and s[0] == v[0] for s, v in zip(x0, vs)):
                shape.append(0)
            else:
                shape.append(-1)
                free.append(i)
        if len(free) > 1 or free and -1 in [int(d) for d in vs[0]]:
            raise self.err(
                node, f"the target shape depends on the batch size in more than one entry ({vs[0]} at batch 1)"
            )
        return shape

    def op_Shape(self, node, a):
        x = node.input[0]
        vals = [self.shapes[b].get(x) for b in _BATCHES]
        if x in self.consts:
            vals = [self.consts[x].shape] * len(_BATCHES)
        elif None in vals:
            raise self.err(node, f"the shape of {x!r} is not static (inputs with free sizes besides the batch)")
        start, end = a.get("start", 0), a.get("end")
        vals = [np.asarray(v[start:end] if end is not None else v[start:], np.int64) for v in vals]
        self._set_const(node.output[0], vals)

    def op_Size(self, node, a):
        x = node.input[0]
        vals = [self.shapes[b].get(x) for b in _BATCHES]
        if None in vals:
            raise self.err(node, f"the shape of {x!r} is not static")
        self._set_const(node.output[0], [np.asarray(int(np.prod(v)), np.int64) for v in vals])

    def _set_const(self, name, vals):
        if all(np.array_equal(v, vals[0]) for v in vals[1:]):
            self.consts[name] = vals[0]
        else:
            self.batch_consts[name] = vals

    def op_Cast(self, node, a):
        if a.get("to") != 1:  # FLOAT
            raise self.err(node, f"unsupported attribute to={a.get('to')} on a tensor (the kernels are float32)")
        self.emit(node, "identity", [node.input[0]])

    def op_Slice(self, node, a):
        if self.opset < 10:
            starts, ends = a["starts"], a["ends"]
            axes, steps = a.get("axes"), None
        else:
            starts, ends = self.const(node, 1, "starts"), self.const(node, 2, "ends")
            axes, steps = self.const(node, 3, "axes"), self.const(node, 4, "steps")
        n = len(starts)
        clamp = lambda v: int(np.clip(int(v), -(2**62), 2**62))  # noqa: E731 - INT64_MAX means "to the end"
        attrs = dict(
            starts=[clamp(v) for v in starts],
            ends=[clamp(v) for v in ends],
            axes=list(range(n)) if axes is None else [int(v) for v in axes],
            steps=[1] * n if steps is None else [int(v) for v in steps],
        )
        self.emit(node, "slice", [node.input[0]], attrs)

    def op_Split(self, node, a):
        x, axis = node.input[0], a.get("axis", 0)
        shape = self.shapes[_BATCHES[0]].get(x)
        if shape is None:
            raise self.err(node, f"the shape of {x!r} is not static")
        if not -len(shape) <= axis < len(shape):
            raise self.err(node, f"axis {axis} out of range for a {len(shape)}-D input")
        if axis % len(shape) == 0:
            raise self.err(node, "unsupported attribute axis=0 (splitting the batch)")
        split = a.get("split") if self.opset < 13 else self.const(node, 1, "split")
        total, parts = shape[axis], len(node.output)
        if split is None:
            n = a.get("num_outputs", parts)
            size = -(-total // n)
            split = [min(size, total - i * size) for i in range(n)]
        split = [int(v) for v in split]
        if sum(split) != total or len(split) != parts or min(split) < 0:
            raise self.err(node, f"split {split} does not divide axis {axis} of size {total} into {parts} outputs")
        start = 0
        for i, (out, size) in enumerate(zip(node.output, split)):
            if out:
                attrs = dict(starts=[start], ends=[start + size], axes=[axis], steps=[1])
                self.emit(node, "slice", [x], attrs, output=out, name=f"{self.label(node)}:{i}")
            start += size

    def op_Pad(self, node, a):
        mode = a.get("mode", b"constant")
        mode = mode.decode() if isinstance(mode, bytes) else mode
        if self.opset < 11:
            pads, value, axes = list(a["pads"]), float(a.get("value", 0.0)), None
        else:
            pads = [int(v) for v in self.const(node, 1, "pads")]
            v = self.const(node, 2, "constant_value")
            value = 0.0 if v is None or np.asarray(v).size == 0 else float(np.asarray(v).reshape(-1)[0])
            axes = self.const(node, 3, "axes")
        if axes is not None:  # pads list only the named axes: spread them over all
            shape = self.shapes[_BATCHES[0]].get(node.input[0])
            if shape is None:
                raise self.err(node, "Pad with axes needs the input's rank to be known")
            nd, k = len(shape), len(axes)
            full = [0] * (2 * nd)
            for j, ax in enumerate(int(v) % nd for v in axes):
                full[ax], full[ax + nd] = pads[j], pads[j + k]
            pads = full
        self.emit(node, "pad", [node.input[0]], dict(pads=pads, mode=mode, value=value))

    def op_LayerNormalization(self, node, a):
        if a.get("stash_type", 1) != 1:
            raise self.err(node, f"unsupported attribute stash_type={a['stash_type']}")
        params, names = {}, {}
        for i, r in ((1, "weight"), (2, "bias")):
            v = self.const(node, i, "scale" if r == "weight" else "B")
            if v is not None:
                params[r], names[r] = v, node.input[i]
        attrs = dict(axis=a.get("axis", -1), eps=a.get("epsilon", 1e-5))
        self.emit(node, "layer_norm", [node.input[0]], attrs, params, names)

    def op_Dropout(self, node, a):
        src = node.input[0]
        if src in self.consts:  # exporters write a shared initializer as Identity(initializer)
            self.consts[node.output[0]] = self.consts[src]
            self.const_source[node.output[0]] = self.const_source.get(src, src)
            return
        self.emit(node, "identity", [src])

    op_Identity = op_Dropout

    def op_Gather(self, node, a):
        if a.get("axis", 0) != 0 or node.input[0] not in self.consts:
            raise self.err(node, "only an embedding lookup (constant 2-D table, axis 0, integer ids) is supported")
        table = self.consts[node.input[0]]
        if table.ndim != 2:
            raise self.err(node, f"the embedding table must be 2-D, got {table.shape}")
        self.emit(node, "embedding", [node.input[1]], {}, {"weight": table}, {"weight": node.input[0]})

    def _axes(self, node, a):
        if "axes" in a:
            return tuple(a["axes"])
        axes = self.const(node, 1, "axes")
        return None if axes is None else tuple(int(v) for v in axes)

    def op_ReduceMax(self, node, a):
        axes = self._axes(node, a)
        if axes is None:
            raise self.err(node, "reducing over all axes (no 'axes') is not supported")
        self.emit(node, "reduce_max", [node.input[0]], dict(axes=axes, keepdims=bool(a.get("keepdims", 1))))

    def op_ReduceMean(self, node, a):
        axes = self._axes(node, a)
        if axes is None:
            raise self.err(node, "reducing over all axes (no 'axes') is not supported")
        self.emit(node, "reduce_mean", [node.input[0]], dict(axes=axes, keepdims=bool(a.get("keepdims", 1))))

    def op_Transpose(self, node, a):
        perm = a.get("perm")
        self.emit(node, "transpose", [node.input[0]], dict(perm=None if perm is None else tuple(perm)))

    def op_Squeeze(self, node, a):
        axes = self._axes(node, a)
        if axes is None:
            raise self.err(node, "Squeeze without axes is not supported (name the axes)")
        self.emit(node, "squeeze", [node.input[0]], dict(axes=axes))

    def op_Unsqueeze(self, node, a):
        self.emit(node, "unsqueeze", [node.input[0]], dict(axes=self._axes(node, a)))

    # ------------------------------------------------------------------ graph
    def build(self, name):
        for node in self.model.graph.node:
            self.convert(node)
        for t in self.outputs:
            if t not in self.produced or t in self.inputs:
                raise ValueError(f"ONNX output {t!r} is not computed by any supported node")
        for name in self.dtypes:  # integer inputs are token ids; the kernels are float32
            for n in self.nodes:
                if name in n.inputs and n.op != "embedding":
                    raise ValueError(
                        f"ONNX input {name!r}: an integer tensor read by node {n.name!r} ({n.op}); pycnn takes "
                        f"integer inputs only as the ids of an embedding lookup (Gather), its kernels are float32"
                    )
        nodes = channels_last_mlps(fuse_activations(self.nodes, self.outputs), self.outputs)
        return Graph(self.inputs, nodes, self.outputs, name=name, input_dtypes=self.dtypes)


def load_onnx(src: Union[str, os.PathLike, bytes, Any], name: Optional[str] = None) -> Graph:
    """Build a Graph from an ONNX model: a path, bytes, or an onnx.ModelProto. name: the Graph's
    name (default: the model's graph name or the file name). Needs the onnx package (pip install
    'pycnn[onnx]'). A file that is not an ONNX model raises ValueError; an operator or attribute
    pycnn does not implement raises ValueError naming the node, the operator and the attribute."""
    onnx = require("onnx", "pycnn.load_onnx")
    if isinstance(src, (bytes, bytearray)):
        model = _parse(onnx, lambda: onnx.load_from_string(bytes(src)), "src (bytes)")
        label = "onnx"
    elif isinstance(src, (str, os.PathLike)):
        path = os.fspath(src)
        if not os.path.exists(path):
            raise FileNotFoundError(f"src: no such file {path!r}")
        if os.path.isdir(path):
            raise ValueError(f"src: {path!r} is a directory, not an ONNX file")
        model = _parse(onnx, lambda: onnx.load(path), f"src ({path!r})")
        label = os.path.splitext(os.path.basename(path))[0]
    elif isinstance(src, onnx.ModelProto):
        model, label = src, "onnx"
    else:
        raise TypeError(f"src: expected a path, bytes or onnx.ModelProto, got {type(src).__name__}")
    if not model.graph.node and not model.graph.output:
        raise ValueError("src: the ONNX model has an empty graph (is it an ONNX file?)")
    return _Importer(model).build(name or model.graph.name or label)


def _parse(onnx, load, what):
    """onnx.load with protobuf's decoding errors (a corrupt or non-ONNX file) as ValueError."""
    try:
        return load()
    except (OSError, MemoryError):
        raise
    except Exception as e:  # noqa: BLE001 - protobuf's DecodeError and friends have no common base here
        raise ValueError(f"{what}: not a readable ONNX model ({type(e).__name__}: {e})") from None
