"""The operators a Graph node can hold: one table (OPS), read by the Graph, the model zoo, the
ONNX importer, the ncnn exporter of the bench and the tests.

Each operator says, for its attributes and parameters:
  * infer(attrs, params, shapes) -> output shape (shapes include the batch); raises ValueError
    with the reason (the Graph adds the node's name and its input shapes);
  * flops(attrs, shapes, out) -> multiply-adds x 2 (0 for data movement);
  * reference(attrs, params, xs) -> the NumPy reference result (reference.py, any float dtype);
  * kernel(attrs, params, algo) -> a StepKernel (pycnn/step_kernel.py): fn(*xs), the fast path
    with its weights prepared once, and fn.bind(in_shapes, out_shape) -> a call for inputs of
    exactly those shapes that skips validation and geometry (the Graph checked the shapes and
    makes every tensor C-contiguous float32; the C++ side still rejects anything else).
Tensors are NCHW float32 (Kim's CNN's token ids are integers). Parameters are float32 arrays
held by role ('weight', 'bias', 'running_mean', ...); their state_dict keys are the node's.
"""

from __future__ import annotations

import numpy as np

from . import _C, ops, reference
from . import layout as _layout
from ._shapes import conv_output_size, conv_padding, pair, pool_output_size
from ._validate import as_array
from .prepared import UNARY_CLIP, ConvMaxMap, PreparedConv
from .step_kernel import Kernel


def _need(cond, msg):
    if not cond:
        raise ValueError(msg)


def _ndim(shapes, i, n, what):
    _need(len(shapes[i]) == n, f"expected a {n}-D {what} input, got shape {shapes[i]}")


_F32 = np.float32


def _bind_relu(in_shapes, out_shape):
    def run(x):
        y = np.empty(out_shape, _F32)
        _C.relu(x, y)
        return y

    return run


def _bind_reshape(in_shapes, out_shape):
    return lambda x: x.reshape(out_shape)


def _prod(dims):
    p = 1
    for d in dims:
        p *= int(d)
    return p


class Op:
    """Base: a single-input, parameter-free operator with no arithmetic."""

    params = ()  # roles, in the order of the state_dict
    optional = ()  # roles that may be absent
    n_inputs = 1

    @staticmethod
    def flops(attrs, shapes, out):
        return 0.0


class Conv2d(Op):
    """attrs: stride (h, w), padding (top, left, bottom, right), dilation, groups, activation."""

    params = ("weight", "bias")
    optional = ("bias",)

    @staticmethod
    def infer(a, p, shapes):
        _ndim(shapes, 0, 4, "(N, C, H, W)")
        N, C, H, W = shapes[0]
        K, Cg, R, S = p["weight"].shape
        g = a["groups"]
        _need(Cg * g == C, f"weight {p['weight'].shape} with groups={g} expects {Cg * g} input channels, got {C}")
        _need(K % g == 0, f"groups={g} must divide the {K} output channels")
        pt, pl, pb, pr = a["padding"]
        Ho = conv_output_size(H, R, a["stride"][0], pt, pb, a["dilation"][0])
        Wo = conv_output_size(W, S, a["stride"][1], pl, pr, a["dilation"][1])
        _need(Ho >= 1 and Wo >= 1, f"kernel {R}x{S} does not fit the padded input {H + pt + pb}x{W + pl + pr}")
        return (N, K, Ho, Wo)

    @staticmethod
    def flops(a, shapes, out):
        C = shapes[0][1]
        K, Cg, R, S = out[1], C // a["groups"], a["kernel"][0], a["kernel"][1]
        return 2.0 * out[0] * K * out[2] * out[3] * Cg * R * S

    @staticmethod
    def reference(a, p, xs):
        return reference.conv2d(
            xs[0], p["weight"], p.get("bias"), a["stride"], a["padding"], a["dilation"], a["groups"], a["activation"]
        )

    @staticmethod
    def kernel(a, p, algo):
        # A Graph told to run one algorithm runs it where it can and auto's choice elsewhere.
        conv = PreparedConv(
            p["weight"],
            p.get("bias"),
            a["stride"],
            a["padding"],
            a["dilation"],
            a["groups"],
            algo=algo,
            activation=a["activation"],
            auto_elsewhere=True,
        )
        if a.get("post_act"):  # fuse_activation: (fn, alpha, beta, lo, hi)
            conv.post = _unary_args(*a["post_act"])
        # A Graph step that also takes the max over each output map (see Graph._build_plan).
        return ConvMaxMap(conv, a["max_map"]) if a.get("max_map") else conv


class Linear(Op):
    """y = x W^T + b. attrs: activation; transposed (W stored (in, out), as ONNX MatMul/Gemm give
    it); scale (Gemm's alpha) and bias_scale (beta) are applied when the kernel is prepared."""

    params = ("weight", "bias")
    optional = ("bias",)

    @staticmethod
    def infer(a, p, shapes):
        _need(len(shapes[0]) >= 2, f"expected an (N, ..., features) input of 2 or more dimensions, got {shapes[0]}")
        w = p["weight"]
        fin, fout = (w.shape[0], w.shape[1]) if a.get("transposed") else (w.shape[1], w.shape[0])
        _need(shapes[0][-1] == fin, f"weight {w.shape} expects {fin} input features, got {shapes[0][-1]}")
        return tuple(shapes[0][:-1]) + (fout,)

    @staticmethod
    def flops(a, shapes, out):
        return 2.0 * _prod(out) * shapes[0][-1]

    @staticmethod
    def _effective(a, p):
        w = p["weight"].T if a.get("transposed") else p["weight"]
        w = np.ascontiguousarray(w * np.float32(a.get("scale", 1.0)), np.float32)
        b = p.get("bias")
        if b is not None:
            b = np.ascontiguousarray(
                np.broadcast_to(b, (w.shape[0],)) * np.float32(a.get("bias_scale", 1.0)), np.float32
            )
        return w, b

    @classmethod
    def reference(cls, a, p, xs):
        w, b = cls._effective(a, p)
        return reference.linear(xs[0], w.astype(xs[0].dtype), b, a["activation"])

    @classmethod
    def kernel(cls, a, p, algo):
        w, b = cls._effective(a, p)
        act = a["activation"]
        relu = act == "relu"

        fin = w.shape[1]

        def rows(fn):  # (N, ..., In) runs as the matrix (N * ..., In): the features are the last axis
            return lambda x: fn(x) if x.ndim == 2 else fn(x.reshape(-1, fin)).reshape(x.shape[:-1] + (-1,))

        def bind(in_shapes, out_shape):
            call = _C.bind_linear(w, b, _prod(in_shapes[0][:-1]), relu)  # C++ call(x) -> y for x (N, In)
            return call if len(in_shapes[0]) == 2 else lambda x: call(x.reshape(-1, fin)).reshape(out_shape)

        return Kernel(rows(lambda x: ops.linear(x, w, b, act)), bind)


class BatchNorm(Op):
    params = ("weight", "bias", "running_mean", "running_var")
    optional = ("weight", "bias")

    @staticmethod
    def infer(a, p, shapes):
        _need(len(shapes[0]) >= 2, f"expected (N, C, ...), got {shapes[0]}")
        C = p["running_mean"].shape[0]
        _need(shapes[0][1] == C, f"parameters for {C} channels, input has {shapes[0][1]}")
        return shapes[0]

    @staticmethod
    def flops(a, shapes, out):
        return 2.0 * _prod(out)

    @staticmethod
    def reference(a, p, xs):
        return reference.batch_norm(
            xs[0], p["running_mean"], p["running_var"], p.get("weight"), p.get("bias"), a["eps"], a["activation"]
        )

    @staticmethod
    def kernel(a, p, algo):
        scale, shift = ops.fold_batch_norm(
            p["running_mean"], p["running_var"], p.get("weight"), p.get("bias"), a["eps"]
        )
        relu = a["activation"] == "relu"

        def bind(in_shapes, out_shape, layout=(0, None)):
            if not layout[0]:
                return lambda x: ops.channel_affine(x, scale, shift, relu)
            # x and y channel-blocked (N, C/16, H, W, 16) (pycnn/layout.py)
            shape = _layout.blocked_shape(out_shape)

            def run(x):
                y = np.empty(shape, _F32)
                _C.channel_affine_blocked16(x, scale, shift, y, relu)
                return y

            run.reads_strided = True  # x may be a channel slice of a wider concat (binding.elide_concats)
            return run

        # folded once here; each call is one affine pass (the Graph checked the shapes)
        return Kernel(lambda x: ops.channel_affine(as_array(x, "x"), scale, shift, relu), bind)


class Relu(Op):
    infer = staticmethod(lambda a, p, s: s[0])
    reference = staticmethod(lambda a, p, xs: reference.relu(xs[0]))
    kernel = staticmethod(lambda a, p, algo: Kernel(lambda x: ops.relu(x), _bind_relu))


def _pool_infer(a, p, shapes):
    _ndim(shapes, 0, 4, "(N, C, H, W)")
    N, C, H, W = shapes[0]
    (kh, kw), (sh, sw), (ph, pw) = a["kernel"], a["stride"], a["padding"]
    _need(ph <= kh // 2 and pw <= kw // 2, f"padding {a['padding']} is more than half the kernel {a['kernel']}")
    _need(H + 2 * ph >= kh and W + 2 * pw >= kw, f"kernel {a['kernel']} is larger than the padded input")
    return (N, C, pool_output_size(H, kh, sh, ph, a["ceil_mode"]), pool_output_size(W, kw, sw, pw, a["ceil_mode"]))


class MaxPool2d(Op):
    infer = staticmethod(_pool_infer)

    @staticmethod
    def reference(a, p, xs):
        return reference.max_pool2d(xs[0], a["kernel"], a["stride"], a["padding"], a["ceil_mode"])

    @staticmethod
    def kernel(a, p, algo):
        k, s, pad, c = a["kernel"], a["stride"], a["padding"], a["ceil_mode"]

        def bind(in_shapes, out_shape, layout=(0, None)):
            (kh, kw), (sh, sw), (ph, pw) = k, s, pad
            # C++ call(x) -> y for x of exactly in_shapes[0]; layout bits: x and y channel-blocked
            # (pycnn/layout.py)
            return _C.bind_pool2d(
                list(in_shapes[0]), list(out_shape), kh, kw, sh, sw, ph, pw, True, False, bool(layout[0])
            )

        return Kernel(lambda x: ops.max_pool2d(x, k, s, pad, ceil_mode=c), bind)


class AvgPool2d(Op):
    infer = staticmethod(_pool_infer)

    @staticmethod
    def flops(a, shapes, out):
        return float(_prod(out) * a["kernel"][0] * a["kernel"][1])

    @staticmethod
    def reference(a, p, xs):
        return reference.avg_pool2d(
            xs[0], a["kernel"], a["stride"], a["padding"], a["ceil_mode"], a["count_include_pad"]
        )

    @staticmethod
    def kernel(a, p, algo):
        k, s, pad, c, inc = a["kernel"], a["stride"], a["padding"], a["ceil_mode"], a["count_include_pad"]

        def bind(in_shapes, out_shape, layout=(0, None)):
            (kh, kw), (sh, sw), (ph, pw) = k, s, pad
            whole = out_shape[2:] == (1, 1) and (kh, kw) == tuple(in_shapes[0][2:]) and ph == pw == 0

            if not whole or layout[0]:  # C++ call(x) -> y for x of exactly in_shapes[0]; layout:
                # x and y channel-blocked (pycnn/layout.py)
                return _C.bind_pool2d(
                    list(in_shapes[0]), list(out_shape), kh, kw, sh, sw, ph, pw, False, bool(inc), bool(layout[0])
                )

            def run(x):
                y = np.empty(out_shape, _F32)
                _C.global_avg_pool2d(x, y)
                return y

            return run

        return Kernel(lambda x: ops.avg_pool2d(x, k, s, pad, c, inc), bind)


class AdaptiveAvgPool2d(Op):
    """attrs: output_size (h, w). Runs as a global average, an exact avg_pool2d when the input
    divides evenly, or the reference otherwise."""

    @staticmethod
    def infer(a, p, shapes):
        _ndim(shapes, 0, 4, "(N, C, H, W)")
        return shapes[0][:2] + tuple(a["output_size"])

    @staticmethod
    def flops(a, shapes, out):
        return float(_prod(shapes[0]))

    @staticmethod
    def reference(a, p, xs):
        return reference.adaptive_avg_pool2d(xs[0], a["output_size"])

    @staticmethod
    def kernel(a, p, algo):
        Ho, Wo = a["output_size"]

        def run(x):
            H, W = x.shape[2:]
            if (H, W) == (Ho, Wo):
                return x
            if (Ho, Wo) == (1, 1):
                return ops.global_avg_pool2d(x)
            if H % Ho == 0 and W % Wo == 0:
                return ops.avg_pool2d(x, (H // Ho, W // Wo))
            return reference.adaptive_avg_pool2d(x, (Ho, Wo)).astype(np.float32)

        def bind(in_shapes, out_shape, layout=(0, None)):
            if layout[0]:  # to 1 x 1 (pycnn/layout.py global_mean): a channel-blocked x
                return _blocked_mean_hw(out_shape)
            return run

        return Kernel(run, bind)


def _blocked_mean_hw(out_shape):
    """The bound mean over H and W of a channel-blocked x (N, C/16, H, W, 16) (pycnn/layout.py),
    16 channels at a time, into an NCHW y of out_shape (its N * C entries)."""

    def run(x):
        y = np.empty(out_shape, _F32)
        _C.global_avg_pool2d_blocked16(x, y)
        return y

    return run


class GlobalAvgPool2d(Op):
    infer = staticmethod(lambda a, p, s: (_ndim(s, 0, 4, "(N, C, H, W)"), s[0][:2] + (1, 1))[1])
    flops = staticmethod(lambda a, s, out: float(_prod(s[0])))
    reference = staticmethod(lambda a, p, xs: reference.global_avg_pool2d(xs[0]))

    @staticmethod
    def kernel(a, p, algo):
        def bind(in_shapes, out_shape, layout=(0, None)):
            if not layout[0]:
                return ops.global_avg_pool2d
            return _blocked_mean_hw(out_shape)  # y (N, C, 1, 1)

        return Kernel(ops.global_avg_pool2d, bind)


class LocalResponseNorm(Op):
    @staticmethod
    def infer(a, p, shapes):
        _need(len(shapes[0]) >= 3, f"expected (N, C, ...), got {shapes[0]}")
        return shapes[0]

    @staticmethod
    def flops(a, shapes, out):
        return float(_prod(out) * (a["size"] + 3))

    @staticmethod
    def reference(a, p, xs):
        return reference.local_response_norm(xs[0], a["size"], a["alpha"], a["beta"], a["k"])

    @staticmethod
    def kernel(a, p, algo):
        size, alpha, beta, k = a["size"], a["alpha"], a["beta"], a["k"]
        return Kernel(lambda x: ops.local_response_norm(x, size, alpha, beta, k))


def _broadcast(shapes):
    try:
        return tuple(np.broadcast_shapes(*shapes))
    except ValueError:
        raise ValueError(f"inputs do not broadcast: {' and '.join(map(str, shapes))}") from None


class Add(Op):
    """x1 + x2 (then the activation); shapes that differ broadcast as NumPy's (ONNX Add)."""

    n_inputs = 2

    @staticmethod
    def infer(a, p, shapes):
        return shapes[0] if shapes[0] == shapes[1] else _broadcast(shapes)

    flops = staticmethod(lambda a, s, out: float(_prod(out)))
    reference = staticmethod(lambda a, p, xs: reference.add(xs[0], xs[1], a["activation"]))

    @staticmethod
    def kernel(a, p, algo):
        act = a["activation"]
        relu = act == "relu"

        def broadcast(x1, x2):
            y = np.add(x1, x2, dtype=_F32)
            return reference.relu(y) if relu else y

        def fn(x1, x2):
            return ops.add(x1, x2, act) if x1.shape == x2.shape else broadcast(x1, x2)

        def bind(in_shapes, out_shape):
            if in_shapes[0] != in_shapes[1]:
                return broadcast

            def run(x1, x2):
                y = np.empty(out_shape, _F32)
                _C.add(x1, x2, y, relu)
                return y

            return run

        return Kernel(fn, bind)


UNARY_FNS = (
    "sigmoid",
    "hardsigmoid",
    "hardswish",
    "clip",
    "sqrt",
    "exp",
    "neg",
    "tanh",
    "abs",
    "erf",
    "reciprocal",
    "silu",
    "gelu",
)
# The functions with a C++ kernel (_C.unary, kernels/cpu/eltwise_unary.inl: vectorized per ISA,
# exp and erf approximated to ~2e-7 relative / 1.5e-7 absolute); the others run in NumPy.
_C_UNARY = {"clip": UNARY_CLIP, "sigmoid": 1, "hardsigmoid": 2, "hardswish": 3, "silu": 4, "erf": 5, "gelu": 6}


class Unary(Op):
    """An element-wise function of ONNX (reference.unary): attrs fn, and alpha, beta (hardsigmoid),
    lo, hi (clip). Runs in NumPy, in float32."""

    infer = staticmethod(lambda a, p, s: s[0])
    flops = staticmethod(lambda a, s, out: float(_prod(out)))

    @staticmethod
    def reference(a, p, xs):
        return reference.unary(xs[0], a["fn"], a.get("alpha", 0.2), a.get("beta", 0.5), a.get("lo"), a.get("hi"))

    @classmethod
    def kernel(cls, a, p, algo):
        fn = a["fn"]
        if fn not in _C_UNARY:
            return Kernel(lambda x: np.asarray(cls.reference(a, p, [x]), _F32), op=fn)
        code, lo, hi = _unary_args(fn, a.get("alpha"), a.get("beta"), a.get("lo"), a.get("hi"))

        def run(x):
            x = np.ascontiguousarray(x, _F32)
            y = np.empty_like(x)
            _C.unary(code, x, y, lo, hi)
            return y

        return Kernel(run, op=fn)


def _unary_args(fn, alpha=None, beta=None, lo=None, hi=None):
    """(code, a, b) for _C.unary: clip's bounds (None: unbounded), else hardsigmoid's alpha, beta."""
    if fn == "clip":
        return _C_UNARY[fn], -np.inf if lo is None else lo, np.inf if hi is None else hi
    return _C_UNARY[fn], 0.2 if alpha is None else alpha, 0.5 if beta is None else beta


class Binary(Op):
    """x (fn) y with NumPy broadcasting (reference.binary: add, sub, mul, div, pow); y is the second
    input, or the constant parameter 'other' (on the left when attrs const_first). NumPy, float32."""

    params = ("other",)
    optional = ("other",)
    n_inputs = None

    @staticmethod
    def infer(a, p, shapes):
        if "other" in p:
            return _broadcast([shapes[0], p["other"].shape])
        _need(len(shapes) == 2, f"expected 2 inputs (or 1 and the constant 'other'), got {len(shapes)}")
        return _broadcast(shapes)

    flops = staticmethod(lambda a, s, out: float(_prod(out)))

    @staticmethod
    def reference(a, p, xs):
        if "other" in p:
            c = p["other"].astype(xs[0].dtype)
            return reference.binary(c, xs[0], a["fn"]) if a.get("const_first") else reference.binary(xs[0], c, a["fn"])
        return reference.binary(xs[0], xs[1], a["fn"])

    @classmethod
    def kernel(cls, a, p, algo):
        ref = lambda *xs: np.asarray(cls.reference(a, p, list(xs)), _F32)  # noqa: E731
        fn = a["fn"]

        def bind(in_shapes, out_shape, layout=(0, None)):
            # A scale or shift per channel of a 4-D tensor (ConvNeXt's layer scale, a bias, squeeze-
            # and-excitation's gate (N, C, 1, 1)) is one C++ pass (channel_affine), x viewed as
            # (1, N*C, H*W) with a scale and shift per plane.
            s = tuple(out_shape)
            if layout[0]:  # x * gate with x and y channel-blocked (pycnn/layout.py gate_input)
                xpos = 0 if tuple(in_shapes[0]) == s else 1

                def gate_blocked(*xs):
                    x = xs[xpos]
                    y = np.empty(x.shape, _F32)
                    _C.channel_scale_blocked16(x, xs[1 - xpos], y)
                    return y

                return gate_blocked
            if fn not in ("mul", "add", "sub") or len(s) != 4:
                return ref
            N, C = s[0], s[1]
            if len(in_shapes) == 2 and fn == "mul" and tuple(in_shapes[0]) == (N, C, 1, 1) != s:
                g = bind([in_shapes[1], in_shapes[0]], out_shape)  # gate * x: the same product
                return ref if g is ref else lambda gt, x: g(x, gt)
            if tuple(in_shapes[0]) != s:
                return ref
            if "other" in p and not (fn == "sub" and a.get("const_first")):
                o = p["other"]
                if o.size != C or np.broadcast_shapes(o.shape, (1, C, 1, 1)) != (1, C, 1, 1):
                    return ref
                v = np.ascontiguousarray(np.tile(o.reshape(-1), N), _F32)
                one, zero = np.ones(N * C, _F32), np.zeros(N * C, _F32)
                scale, shift = (v, zero) if fn == "mul" else (one, v if fn == "add" else -v)

                def run(x):
                    y = np.empty(s, _F32)
                    _C.channel_affine(x.reshape(1, N * C, -1), scale, shift, y.reshape(1, N * C, -1), False)
                    return y

                return run
            if fn == "mul" and len(in_shapes) == 2 and tuple(in_shapes[1]) == (N, C, 1, 1):
                zero = np.zeros(N * C, _F32)

                def gate(x, g):
                    y = np.empty(s, _F32)
                    _C.channel_affine(x.reshape(1, N * C, -1), g.reshape(-1), zero, y.reshape(1, N * C, -1), False)
                    return y

                return gate
            return ref

        return Kernel(ref, bind, op=fn)


class BiasAdd(Op):
    """x + bias, bias broadcast against x's trailing dimensions (AlphaGo's bias per board point;
    ONNX Add with a constant)."""

    params = ("bias",)

    @staticmethod
    def infer(a, p, shapes):
        b = p["bias"].shape
        try:
            out = np.broadcast_shapes(shapes[0], b)
        except ValueError:
            raise ValueError(f"bias {b} does not broadcast against {shapes[0]}") from None
        _need(out == tuple(shapes[0]), f"bias {b} would change the shape {shapes[0]} to {out}")
        return shapes[0]

    flops = staticmethod(lambda a, s, out: float(_prod(out)))
    reference = staticmethod(lambda a, p, xs: xs[0] + p["bias"])

    @staticmethod
    def kernel(a, p, algo):
        b = p["bias"]
        return Kernel(lambda x: np.add(x, b, dtype=np.float32))


class Concat(Op):
    n_inputs = None  # any number >= 1

    @staticmethod
    def infer(a, p, shapes):
        ax = a["axis"]
        nd = len(shapes[0])
        _need(-nd <= ax < nd, f"axis {ax} out of range for {shapes[0]}")
        ax %= nd
        for s in shapes[1:]:
            _need(
                len(s) == nd and s[:ax] == shapes[0][:ax] and s[ax + 1 :] == shapes[0][ax + 1 :],
                f"shapes {shapes} differ outside axis {ax}",
            )
        return shapes[0][:ax] + (sum(s[ax] for s in shapes),) + shapes[0][ax + 1 :]

    reference = staticmethod(lambda a, p, xs: reference.concat(xs, a["axis"]))

    @staticmethod
    def kernel(a, p, algo):
        ax = a["axis"]

        def bind(in_shapes, out_shape, layout=(0, None)):
            k = ax % len(out_shape)
            outer, inner = _prod(out_shape[:k]), _prod(out_shape[k + 1 :])
            # Channel-blocked inputs (pycnn/layout.py; 16 | each input's channels): each image's
            # channel blocks of one input are one run of the same length as in NCHW, so the same
            # copy makes the blocked output.
            shape = _layout.blocked_shape(out_shape) if layout[0] else out_shape

            def run(*xs):
                y = np.empty(shape, _F32)
                _C.concat(list(xs), y, outer, inner)
                return y

            return run

        return Kernel(lambda *xs: ops.concat(list(xs), ax), bind)


class Softmax(Op):
    """attrs: axis; flatten (ONNX opset < 13: normalize over all dimensions from axis on)."""

    @staticmethod
    def infer(a, p, shapes):
        nd = len(shapes[0])
        _need(-nd <= a["axis"] < nd, f"axis {a['axis']} out of range for {shapes[0]}")
        return shapes[0]

    flops = staticmethod(lambda a, s, out: 3.0 * _prod(out))

    @staticmethod
    def _wrap(a, f):
        if not a.get("flatten"):
            return lambda x: f(x, a["axis"])
        ax = a["axis"]

        def run(x):
            k = ax % x.ndim
            return f(x.reshape(_prod(x.shape[:k]), -1), 1).reshape(x.shape)

        return run

    @classmethod
    def reference(cls, a, p, xs):
        return cls._wrap(a, reference.softmax)(xs[0])

    @classmethod
    def kernel(cls, a, p, algo):
        fn = cls._wrap(a, ops.softmax)
        if a.get("flatten"):
            return Kernel(fn)

        def bind(in_shapes, out_shape):
            if a["axis"] % len(out_shape) != len(out_shape) - 1:
                return fn  # softmax over an inner axis: the general path
            n = out_shape[-1]

            def run(x):
                y = np.empty(out_shape, _F32)
                _C.softmax_rows(x.reshape(-1, n), y.reshape(-1, n))
                return y

            return run

        return Kernel(fn, bind)


class _ViewOp(Op):
    """An operator that only relabels the shape (the output is a view of the input); a subclass
    gives infer, and both paths reshape to what it says."""

    @classmethod
    def reference(cls, a, p, xs):
        return xs[0].reshape(cls.infer(a, p, [xs[0].shape]))

    @classmethod
    def kernel(cls, a, p, algo):
        return Kernel(lambda x: x.reshape(cls.infer(a, p, [x.shape])), _bind_reshape)


class Flatten(_ViewOp):
    """ONNX semantics: (d0..d_{axis-1}, d_axis..) -> 2-D; axis=1 is torch.flatten(x, 1)."""

    @staticmethod
    def infer(a, p, shapes):
        nd = len(shapes[0])
        _need(-nd <= a["axis"] <= nd, f"axis {a['axis']} out of range for {shapes[0]}")
        ax = a["axis"] + nd if a["axis"] < 0 else a["axis"]
        return (_prod(shapes[0][:ax]), _prod(shapes[0][ax:]))


class Reshape(_ViewOp):
    """attrs: shape with ONNX's rules (0 copies the input's dimension, one -1 is inferred)."""

    @staticmethod
    def infer(a, p, shapes):
        src = shapes[0]
        out = [src[i] if d == 0 and i < len(src) else d for i, d in enumerate(a["shape"])]
        _need(out.count(-1) <= 1 and all(d >= -1 for d in out), f"invalid target shape {a['shape']}")
        total = _prod(src)
        if -1 in out:
            known = _prod(d for d in out if d != -1)
            _need(known > 0 and total % known == 0, f"cannot reshape {src} to {a['shape']}")
            out[out.index(-1)] = total // known
        _need(_prod(out) == total, f"cannot reshape {src} ({total} elements) to {tuple(out)}")
        return tuple(out)


class Squeeze(_ViewOp):
    """attrs: axes (dimensions of size 1 to drop)."""

    @staticmethod
    def infer(a, p, shapes):
        s = shapes[0]
        axes = {ax % len(s) for ax in a["axes"]}
        _need(all(s[ax] == 1 for ax in axes), f"axes {a['axes']} are not all of size 1 in {s}")
        return tuple(d for i, d in enumerate(s) if i not in axes)


class Unsqueeze(_ViewOp):
    """attrs: axes (positions in the output of new dimensions of size 1)."""

    @staticmethod
    def infer(a, p, shapes):
        nd = len(shapes[0]) + len(a["axes"])
        axes = sorted(ax % nd for ax in a["axes"])
        out = list(shapes[0])
        for ax in axes:
            out.insert(ax, 1)
        return tuple(out)


class Identity(Op):
    """Dropout at inference, ONNX Identity: the input itself."""

    infer = staticmethod(lambda a, p, s: s[0])
    reference = staticmethod(lambda a, p, xs: xs[0])
    kernel = staticmethod(lambda a, p, algo: Kernel(lambda x: x))


class Embedding(Op):
    """Token ids (any integer shape) -> ids.shape + (dim,) rows of weight (vocabulary, dim).
    Ids outside [0, vocabulary) raise ValueError."""

    params = ("weight",)

    @staticmethod
    def infer(a, p, shapes):
        return tuple(shapes[0]) + (p["weight"].shape[1],)

    @staticmethod
    def _ids(x, V):
        ids = np.asarray(x)
        if ids.dtype.kind not in "iu":
            raise TypeError(f"x: token ids must be integers, got dtype {ids.dtype}")
        if ids.size and (ids.min() < 0 or ids.max() >= V):
            raise ValueError(f"x: token ids must lie in [0, {V}), got [{ids.min()}, {ids.max()}]")
        return ids

    @classmethod
    def reference(cls, a, p, xs):
        return reference.embedding(cls._ids(xs[0], p["weight"].shape[0]), p["weight"])

    @classmethod
    def kernel(cls, a, p, algo):
        w = np.ascontiguousarray(p["weight"], dtype=_F32)

        def run(x):
            ids = np.asarray(x)
            if ids.dtype.kind not in "iu" or ids.dtype == np.uint64:  # uint64 would wrap in int64
                ids = cls._ids(ids, w.shape[0])
            y = np.empty(ids.shape + (w.shape[1],), _F32)
            _C.embedding(np.ascontiguousarray(ids, dtype=np.int64), w, y)  # checks the id range
            return y

        return Kernel(run)


class ReduceMax(Op):
    """attrs: axes, keepdims (max over time in Kim's CNN)."""

    @staticmethod
    def infer(a, p, shapes):
        s = shapes[0]
        _need(all(-len(s) <= ax < len(s) for ax in a["axes"]), f"axes {a['axes']} out of range for {s}")
        axes = {ax % len(s) for ax in a["axes"]}
        _need(all(s[ax] >= 1 for ax in axes), f"cannot reduce an empty axis of {s}")
        if a["keepdims"]:
            return tuple(1 if i in axes else d for i, d in enumerate(s))
        return tuple(d for i, d in enumerate(s) if i not in axes)

    flops = staticmethod(lambda a, s, out: float(_prod(s[0])))
    reference = staticmethod(lambda a, p, xs: reference.reduce_max(xs[0], a["axes"], a["keepdims"]))

    @staticmethod
    def kernel(a, p, algo):
        axes, keep = tuple(a["axes"]), a["keepdims"]
        fn = lambda x: np.max(x, axis=axes, keepdims=keep)  # noqa: E731

        def bind(in_shapes, out_shape):
            s = in_shapes[0]
            red = sorted(ax % len(s) for ax in axes)
            if red != list(range(len(s) - len(red), len(s))):
                return fn  # not the trailing axes: NumPy
            cols = _prod(s[len(s) - len(red) :])

            def run(x):  # max over the trailing axes = max of each row of x viewed as (rows, cols)
                y = np.empty(out_shape, _F32)
                _C.max_rows(x.reshape(-1, cols), y.reshape(-1))
                return y

            return run

        return Kernel(fn, bind)


class Transpose(Op):
    """attrs: perm (None: reverse the axes, as ONNX). A copy in the new order (NumPy)."""

    @staticmethod
    def _perm(a, ndim):
        return tuple(range(ndim))[::-1] if a.get("perm") is None else tuple(a["perm"])

    @classmethod
    def infer(cls, a, p, shapes):
        s = shapes[0]
        perm = cls._perm(a, len(s))
        _need(sorted(perm) == list(range(len(s))), f"perm {perm} is not a permutation of the {len(s)} axes of {s}")
        return tuple(s[i] for i in perm)

    @classmethod
    def reference(cls, a, p, xs):
        return np.ascontiguousarray(np.transpose(xs[0], cls._perm(a, xs[0].ndim)))

    @staticmethod
    def _swap(perm):
        """(p, m, q) when perm keeps axes [0, p) and [q, n) and swaps the groups [p, m) and [m, q)
        (NCHW <-> NHWC, a channel shuffle: a batched 2-D transpose of runs), else None."""
        n = len(perm)
        p = 0
        while p < n and perm[p] == p:
            p += 1
        if p == n:
            return None
        m = perm[p]
        q = n
        while q > m and perm[q - 1] == q - 1:
            q -= 1
        if list(perm) == list(range(p)) + list(range(m, q)) + list(range(p, m)) + list(range(q, n)):
            return p, m, q
        return None

    @classmethod
    def kernel(cls, a, p, algo):
        ref = lambda x: cls.reference(a, p, [x])  # noqa: E731

        def bind(in_shapes, out_shape):
            s = in_shapes[0]
            swap = cls._swap(cls._perm(a, len(s)))
            if swap is None:
                return ref
            i, m, q = swap
            dims = (_prod(s[:i]), _prod(s[i:m]), _prod(s[m:q]), _prod(s[q:]))

            def run(x):  # a batched (rows, cols) -> (cols, rows) transpose of runs, in C++
                y = np.empty(out_shape, _F32)
                _C.transpose_batched(x, *dims, y)
                return y

            return run

        return Kernel(ref, bind, op="transpose")


class _ShapeOnly:
    """Stands for a parameter where only its shape is read (shape inference of run-time weights)."""

    def __init__(self, shape):
        self.shape = shape


class Conv2dDynamic(Op):
    """Convolution whose weight (and bias) are inputs computed at run time (ONNX Conv with its
    weights as graph inputs): inputs x, w[, b]; attrs stride, padding (top, left, bottom, right),
    dilation, groups. Runs pycnn.conv2d per call (its weight cache re-prepares changed weights): the
    slower path, named 'conv2d per call' in a profile."""

    n_inputs = None

    @staticmethod
    def infer(a, p, shapes):
        _need(len(shapes) in (2, 3), f"expected inputs x, w[, b], got {len(shapes)}")
        _ndim(shapes, 0, 4, "(N, C, H, W)")
        _ndim(shapes, 1, 4, "weight (K, C/groups, R, S)")
        w = _ShapeOnly(tuple(shapes[1]))
        if len(shapes) == 3:
            _need(tuple(shapes[2]) == (shapes[1][0],), f"bias {shapes[2]} must have {shapes[1][0]} entries")
        return Conv2d.infer(dict(a), {"weight": w}, shapes[:1])

    @staticmethod
    def flops(a, shapes, out):
        K, Cg, R, S = shapes[1]
        return 2.0 * out[0] * K * out[2] * out[3] * Cg * R * S

    @staticmethod
    def reference(a, p, xs):
        b = xs[2] if len(xs) > 2 else None
        return reference.conv2d(xs[0], xs[1], b, a["stride"], a["padding"], a["dilation"], a["groups"])

    @staticmethod
    def kernel(a, p, algo):
        def run(x, w, b=None):
            return ops.conv2d(x, w, b, a["stride"], a["padding"], a["dilation"], a["groups"])

        return Kernel(run, op="conv2d per call")


def _matmul_shape(s1, s2):
    """np.matmul's shape rule (1-D operands promoted and the added axis dropped)."""
    _need(len(s1) >= 1 and len(s2) >= 1, f"matmul of a scalar: shapes {s1} and {s2}")
    a = (1,) + tuple(s1) if len(s1) == 1 else tuple(s1)
    b = tuple(s2) + (1,) if len(s2) == 1 else tuple(s2)
    _need(a[-1] == b[-2], f"matmul: {s1} @ {s2} contracts {a[-1]} with {b[-2]}")
    try:
        batch = np.broadcast_shapes(a[:-2], b[:-2])
    except ValueError:
        raise ValueError(f"matmul: the batch dimensions of {s1} and {s2} do not broadcast") from None
    out = tuple(batch) + (a[-2], b[-1])
    if len(s1) == 1:
        out = out[:-2] + out[-1:]
    if len(s2) == 1:
        out = out[:-1]
    return out


class MatMul(Op):
    """x @ y with np.matmul's rules (ONNX MatMul of two tensors, any ranks); y is the second input
    or the constant parameter 'other' (on the left when attrs const_first). NumPy (BLAS)."""

    params = ("other",)
    optional = ("other",)
    n_inputs = None

    @staticmethod
    def _operands(a, p, shapes):
        if "other" in p:
            return (p["other"].shape, shapes[0]) if a.get("const_first") else (shapes[0], p["other"].shape)
        _need(len(shapes) == 2, f"expected 2 inputs (or 1 and the constant 'other'), got {len(shapes)}")
        return shapes[0], shapes[1]

    @classmethod
    def infer(cls, a, p, shapes):
        return _matmul_shape(*cls._operands(a, p, shapes))

    @classmethod
    def flops(cls, a, shapes, out):
        return 2.0 * _prod(out) * (shapes[0][0] if len(shapes[0]) == 1 else shapes[0][-1])

    @staticmethod
    def reference(a, p, xs):
        if "other" in p:
            c = p["other"].astype(xs[0].dtype)
            return np.matmul(c, xs[0]) if a.get("const_first") else np.matmul(xs[0], c)
        return np.matmul(xs[0], xs[1])

    @classmethod
    def kernel(cls, a, p, algo):
        def run(*xs):
            y = np.asarray(cls.reference(a, p, list(xs)), _F32)  # 1-D @ 1-D is 0-D: no ascontiguousarray
            return y if y.flags.c_contiguous else y.copy()

        return Kernel(run, op="matmul")


class Slice(Op):
    """attrs: starts, ends, axes, steps (ONNX Slice with constant arguments: channel splits,
    crops). A copy (NumPy)."""

    @staticmethod
    def infer(a, p, shapes):
        s = list(shapes[0])
        for st, e, ax, step in zip(a["starts"], a["ends"], a["axes"], a["steps"]):
            _need(-len(s) <= ax < len(s), f"axis {ax} out of range for {shapes[0]}")
            _need(step != 0, "steps must not be 0")
            s[ax % len(s)] = len(range(*slice(st, e, step).indices(s[ax % len(s)])))
        return tuple(s)

    @staticmethod
    def reference(a, p, xs):
        return reference.slice_(xs[0], a["starts"], a["ends"], a["axes"], a["steps"])

    @classmethod
    def kernel(cls, a, p, algo):
        return Kernel(lambda x: cls.reference(a, p, [x]), op="slice")


class Pad(Op):
    """attrs: pads (begin of every axis, then end; negative crops), mode (constant, reflect,
    edge, wrap), value. A copy (NumPy)."""

    @staticmethod
    def infer(a, p, shapes):
        s, pads = shapes[0], a["pads"]
        _need(len(pads) == 2 * len(s), f"pads {pads} must list 2 x {len(s)} values for {s}")
        out = tuple(d + pads[i] + pads[i + len(s)] for i, d in enumerate(s))
        _need(all(d >= 0 for d in out), f"pads {pads} crop more than {s} holds")
        if a["mode"] == "reflect":
            _need(
                all(pads[i] < d and pads[i + len(s)] < d for i, d in enumerate(s)),
                f"reflect padding {pads} must be smaller than the sizes {s}",
            )
        elif a["mode"] != "constant":
            _need(
                all(d > 0 for i, d in enumerate(s) if pads[i] or pads[i + len(s)]), f"cannot pad an empty axis of {s}"
            )
        return out

    @staticmethod
    def reference(a, p, xs):
        return reference.pad(xs[0], a["pads"], a["mode"], a["value"])

    @classmethod
    def kernel(cls, a, p, algo):
        return Kernel(lambda x: np.asarray(cls.reference(a, p, [x]), _F32), op="pad")


class LayerNorm(Op):
    """attrs: axis, eps; params weight, bias (the shape of the normalized axes, or broadcast to it).
    Normalizes over the axes from axis on (ONNX LayerNormalization; ConvNeXt's over channels)."""

    params = ("weight", "bias")
    optional = ("weight", "bias")

    @staticmethod
    def infer(a, p, shapes):
        s = shapes[0]
        _need(-len(s) <= a["axis"] < len(s), f"axis {a['axis']} out of range for {s}")
        inner = s[a["axis"] % len(s) :]
        for r in ("weight", "bias"):
            if r in p:
                _need(
                    np.broadcast_shapes(p[r].shape, inner) == tuple(inner),
                    f"{r} of shape {p[r].shape} does not broadcast to the normalized axes {tuple(inner)}",
                )
        return s

    flops = staticmethod(lambda a, s, out: 8.0 * _prod(out))

    @staticmethod
    def reference(a, p, xs):
        return reference.layer_norm(xs[0], a["axis"], a["eps"], p.get("weight"), p.get("bias"))

    @staticmethod
    def kernel(a, p, algo):
        def bind(in_shapes, out_shape):
            s = in_shapes[0]
            cols = _prod(s[a["axis"] % len(s) :])
            w, b = (
                np.ascontiguousarray(np.broadcast_to(p[r], s[a["axis"] % len(s) :]).reshape(-1), _F32)
                if r in p
                else np.ones(cols, _F32) * (r == "weight")
                for r in ("weight", "bias")
            )

            def run(x):  # each row of x viewed as (rows, cols) normalized
                y = np.empty(out_shape, _F32)
                _C.layer_norm_rows(x.reshape(-1, cols), w, b, float(a["eps"]), y.reshape(-1, cols))
                return y

            return run

        return Kernel(lambda x: bind([x.shape], x.shape)(np.ascontiguousarray(x, _F32)), bind)


class ReduceMean(ReduceMax):
    """attrs: axes, keepdims (ONNX ReduceMean: MNASNet's mean over H and W)."""

    reference = staticmethod(lambda a, p, xs: reference.reduce_mean(xs[0], a["axes"], a["keepdims"]))

    @staticmethod
    def kernel(a, p, algo):
        axes, keep = tuple(a["axes"]), a["keepdims"]
        fn = lambda x: np.mean(x, axis=axes, keepdims=keep, dtype=_F32)  # noqa: E731

        def bind(in_shapes, out_shape, layout=(0, None)):
            s = in_shapes[0]
            if len(s) != 4 or not _layout.hw_axes(axes):
                return fn  # not a mean over H and W: NumPy (the layout never blocks its input)
            if layout[0]:  # y (N, C) or (N, C, 1, 1) as keepdims says
                return _blocked_mean_hw(out_shape)

            def run(x):  # the mean of each plane: the global average pooling kernel
                return ops.global_avg_pool2d(x).reshape(out_shape)

            return run

        return Kernel(fn, bind)


class ChannelNorm(Op):
    """LayerNorm over the channel axis of (N, C, ...): each position's C values normalized (mean,
    biased variance), then * weight[c] + bias[c]. ConvNeXt's LayerNorm, which PyTorch runs on NHWC
    between two transposes, on NCHW (pycnn/io/onnx_fuse.py rewrites the transposed block)."""

    params = ("weight", "bias")
    optional = ("weight", "bias")

    @staticmethod
    def infer(a, p, shapes):
        s = shapes[0]
        _need(len(s) >= 2, f"expected (N, C, ...), got {s}")
        for r in ("weight", "bias"):
            if r in p:
                _need(p[r].size == s[1], f"{r} of {p[r].size} entries for {s[1]} channels")
        return s

    flops = staticmethod(lambda a, s, out: 8.0 * _prod(out))

    @staticmethod
    def reference(a, p, xs):
        x = np.moveaxis(xs[0], 1, -1)
        w, b = (p[r].reshape(-1) if r in p else None for r in ("weight", "bias"))
        return np.ascontiguousarray(np.moveaxis(reference.layer_norm(x, -1, a["eps"], w, b), -1, 1))

    @staticmethod
    def kernel(a, p, algo):
        def bind(in_shapes, out_shape, layout=(0, None)):
            C = in_shapes[0][1]
            w, b = (
                np.ascontiguousarray(p[r].reshape(-1), _F32) if r in p else np.full(C, float(r == "weight"), _F32)
                for r in ("weight", "bias")
            )
            # x and y channel-blocked (N, C/16, H, W, 16) when the layout says so (pycnn/layout.py)
            norm = _C.layer_norm_channels_blocked16 if layout[0] else _C.layer_norm_channels
            shape = _layout.blocked_shape(out_shape) if layout[0] else out_shape

            def run(x):
                y = np.empty(shape, _F32)
                norm(x, w, b, float(a["eps"]), y)
                return y

            return run

        return Kernel(lambda x: bind([x.shape], x.shape)(np.ascontiguousarray(x, _F32)), bind)


OPS = {
    "conv2d": Conv2d,
    "linear": Linear,
    "batch_norm": BatchNorm,
    "relu": Relu,
    "max_pool2d": MaxPool2d,
    "avg_pool2d": AvgPool2d,
    "adaptive_avg_pool2d": AdaptiveAvgPool2d,
    "global_avg_pool2d": GlobalAvgPool2d,
    "local_response_norm": LocalResponseNorm,
    "add": Add,
    "unary": Unary,
    "binary": Binary,
    "bias_add": BiasAdd,
    "concat": Concat,
    "softmax": Softmax,
    "flatten": Flatten,
    "reshape": Reshape,
    "squeeze": Squeeze,
    "unsqueeze": Unsqueeze,
    "identity": Identity,
    "embedding": Embedding,
    "reduce_max": ReduceMax,
    "reduce_mean": ReduceMean,
    "transpose": Transpose,
    "slice": Slice,
    "conv2d_dynamic": Conv2dDynamic,
    "matmul": MatMul,
    "pad": Pad,
    "layer_norm": LayerNorm,
    "channel_norm": ChannelNorm,
}


# ----------------------------------------------------------------------------- attributes
def normalize_attrs(op, attrs, params):
    """Fill defaults and check types once, when the node is made; returns a new dict."""
    a = dict(attrs)
    if op == "conv2d":
        K, Cg, R, S = params["weight"].shape
        a["kernel"] = (R, S)
        a["stride"] = pair(a.get("stride", 1), "stride")
        a["dilation"] = pair(a.get("dilation", 1), "dilation")
        a["padding"] = conv_padding(a.get("padding", 0), (R, S), a["dilation"], a["stride"])
        a["groups"] = int(a.get("groups", 1))
        if min(a["stride"] + a["dilation"]) < 1 or min(a["padding"]) < 0 or a["groups"] < 1:
            raise ValueError(f"invalid conv attributes {attrs}")
    elif op in ("max_pool2d", "avg_pool2d"):
        a["kernel"] = pair(a["kernel"], "kernel")
        a["stride"] = pair(a.get("stride") or a["kernel"], "stride")
        a["padding"] = pair(a.get("padding", 0), "padding")
        a["ceil_mode"] = bool(a.get("ceil_mode", False))
        if op == "avg_pool2d":
            a["count_include_pad"] = bool(a.get("count_include_pad", True))
    elif op == "adaptive_avg_pool2d":
        a["output_size"] = pair(a["output_size"], "output_size")
    elif op == "local_response_norm":
        a.setdefault("alpha", 1e-4)
        a.setdefault("beta", 0.75)
        a.setdefault("k", 1.0)
        a["size"] = int(a["size"])
    elif op == "batch_norm":
        a["eps"] = float(a.get("eps", 1e-5))
    elif op in ("concat", "softmax"):
        a["axis"] = int(a.get("axis", 1 if op == "concat" else -1))
        if op == "softmax":
            a["flatten"] = bool(a.get("flatten", False))
    elif op == "flatten":
        a["axis"] = int(a.get("axis", 1))
    elif op == "reshape":
        a["shape"] = tuple(int(d) for d in a["shape"])
    elif op in ("squeeze", "unsqueeze", "reduce_max", "reduce_mean"):
        a["axes"] = tuple(int(d) for d in a["axes"])
        if op in ("reduce_max", "reduce_mean"):
            a["keepdims"] = bool(a.get("keepdims", False))
    elif op == "conv2d_dynamic":
        a["stride"] = pair(a.get("stride", 1), "stride")
        a["dilation"] = pair(a.get("dilation", 1), "dilation")
        pad = tuple(int(v) for v in a.get("padding", (0, 0, 0, 0)))
        if len(pad) != 4 or min(pad) < 0:
            raise ValueError(f"padding: expected (top, left, bottom, right) >= 0, got {pad}")
        a["padding"], a["groups"] = pad, int(a.get("groups", 1))
        if min(a["stride"] + a["dilation"]) < 1 or a["groups"] < 1:
            raise ValueError(f"invalid conv attributes {attrs}")
    elif op == "matmul":
        a["const_first"] = bool(a.get("const_first", False))
    elif op == "slice":
        n = len(a["starts"])
        a["starts"], a["ends"] = tuple(int(v) for v in a["starts"]), tuple(int(v) for v in a["ends"])
        a["axes"] = tuple(int(v) for v in a.get("axes") or range(n))
        a["steps"] = tuple(int(v) for v in a.get("steps") or (1,) * n)
        if not len(a["ends"]) == len(a["axes"]) == len(a["steps"]) == n:
            raise ValueError("starts, ends, axes and steps must have the same length")
        if len(set(a["axes"])) != n:
            raise ValueError(f"axes {a['axes']} repeat an axis")
    elif op == "pad":
        a["pads"] = tuple(int(v) for v in a["pads"])
        a["mode"] = str(a.get("mode", "constant"))
        if a["mode"] not in reference.PAD_MODES:
            raise ValueError(f"mode: expected one of {reference.PAD_MODES}, got {a['mode']!r}")
        a["value"] = float(a.get("value", 0.0))
    elif op == "layer_norm":
        a["axis"], a["eps"] = int(a.get("axis", -1)), float(a.get("eps", 1e-5))
    elif op == "channel_norm":
        a["eps"] = float(a.get("eps", 1e-5))
    elif op == "transpose":
        a["perm"] = None if a.get("perm") is None else tuple(int(d) for d in a["perm"])
    elif op == "unary":
        if a.get("fn") not in UNARY_FNS:
            raise ValueError(f"fn: expected one of {sorted(UNARY_FNS)}, got {a.get('fn')!r}")
    elif op == "binary":
        if a.get("fn") not in reference.BINARY:
            raise ValueError(f"fn: expected one of {sorted(reference.BINARY)}, got {a.get('fn')!r}")
        a["const_first"] = bool(a.get("const_first", False))
    if op in ("conv2d", "linear", "batch_norm", "add"):
        a.setdefault("activation", None)
        if a["activation"] not in (None, "relu"):
            raise ValueError(f"activation: expected None or 'relu', got {a['activation']!r}")
    return a
