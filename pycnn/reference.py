"""NumPy reference of every op: the oracle the kernels are tested against.

Plain and readable on purpose, never optimized. Semantics follow torch.nn.functional. Arrays
are computed in the dtype they come in (pass float64 for a high-precision oracle). Layout is
NCHW throughout.
"""

from __future__ import annotations

import numpy as np

from ._shapes import conv_output_size, conv_padding, pair, pool_output_size

__all__ = [
    "conv2d",
    "max_pool2d",
    "avg_pool2d",
    "global_avg_pool2d",
    "local_response_norm",
    "linear",
    "relu",
    "softmax",
    "add",
    "concat",
    "batch_norm",
    "adaptive_avg_pool2d",
    "embedding",
    "reduce_max",
]


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, activation=None):
    """y[n, k, oh, ow] = bias[k] + sum_{c, r, s} w[k, c, r, s] * xpad[n, g*Cg + c, oh*sh + r*dh, ow*sw + s*dw]."""
    sh, sw = pair(stride)
    dh, dw = pair(dilation)
    K, Cg, R, S = weight.shape
    pt, pl, pb, pr = conv_padding(padding, (R, S), (dh, dw), (sh, sw))
    xp = np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)))
    N = x.shape[0]
    Ho = conv_output_size(x.shape[2], R, sh, pt, pb, dh)
    Wo = conv_output_size(x.shape[3], S, sw, pl, pr, dw)
    Kg = K // groups
    y = np.zeros((N, K, Ho, Wo), dtype=np.result_type(x, weight))
    for g in range(groups):
        xg = xp[:, g * Cg : (g + 1) * Cg]
        wg = weight[g * Kg : (g + 1) * Kg]
        for r in range(R):
            for s in range(S):
                h0, w0 = r * dh, s * dw
                patch = xg[:, :, h0 : h0 + sh * (Ho - 1) + 1 : sh, w0 : w0 + sw * (Wo - 1) + 1 : sw]
                y[:, g * Kg : (g + 1) * Kg] += np.einsum("nchw,kc->nkhw", patch, wg[:, :, r, s], optimize=True)
    if bias is not None:
        y += bias.reshape(1, K, 1, 1)
    return relu(y) if activation == "relu" else y


def _pool_windows(H, k, s, p, Ho):
    """(start, end, padded_end) of each window along one axis, PyTorch's rule."""
    out = []
    for o in range(Ho):
        start = o * s - p
        out.append((max(start, 0), min(start + k, H), min(start + k, H + p), start))
    return out


def max_pool2d(x, kernel_size, stride=None, padding=0, ceil_mode=False):
    """Max over each window; padding never wins; NaN in a window gives NaN."""
    kh, kw = pair(kernel_size)
    sh, sw = pair(stride if stride is not None else kernel_size)
    ph, pw = pair(padding)
    H, W = x.shape[2:]
    Ho = pool_output_size(H, kh, sh, ph, ceil_mode)
    Wo = pool_output_size(W, kw, sw, pw, ceil_mode)
    y = np.empty(x.shape[:2] + (Ho, Wo), dtype=x.dtype)
    for oh, (h0, h1, _, _) in enumerate(_pool_windows(H, kh, sh, ph, Ho)):
        for ow, (w0, w1, _, _) in enumerate(_pool_windows(W, kw, sw, pw, Wo)):
            y[:, :, oh, ow] = x[:, :, h0:h1, w0:w1].max(axis=(2, 3))
    return y


def avg_pool2d(x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True):
    """Mean over each window; with count_include_pad the divisor counts the padding (but not the
    extra columns that ceil_mode adds past it), else only the image pixels."""
    kh, kw = pair(kernel_size)
    sh, sw = pair(stride if stride is not None else kernel_size)
    ph, pw = pair(padding)
    H, W = x.shape[2:]
    Ho = pool_output_size(H, kh, sh, ph, ceil_mode)
    Wo = pool_output_size(W, kw, sw, pw, ceil_mode)
    y = np.empty(x.shape[:2] + (Ho, Wo), dtype=x.dtype)
    for oh, (h0, h1, hp, hs) in enumerate(_pool_windows(H, kh, sh, ph, Ho)):
        for ow, (w0, w1, wp, ws) in enumerate(_pool_windows(W, kw, sw, pw, Wo)):
            total = x[:, :, h0:h1, w0:w1].sum(axis=(2, 3))
            count = (hp - hs) * (wp - ws) if count_include_pad else (h1 - h0) * (w1 - w0)
            y[:, :, oh, ow] = total / count
    return y


def global_avg_pool2d(x):
    """(N, C, H, W) -> (N, C, 1, 1) mean over the spatial axes."""
    return x.mean(axis=(2, 3), keepdims=True)


def local_response_norm(x, size, alpha=1e-4, beta=0.75, k=1.0):
    """y = x / (k + alpha/size * sum over channels [c - size//2, c + (size-1)//2] of x^2)^beta."""
    C = x.shape[1]
    sq = x * x
    div = np.zeros_like(x)
    for c in range(C):
        lo, hi = max(0, c - size // 2), min(C, c + (size - 1) // 2 + 1)
        div[:, c] = sq[:, lo:hi].sum(axis=1)
    return x / (k + (alpha / size) * div) ** beta


def linear(x, weight, bias=None, activation=None):
    """y = x W^T + b; weight is (out_features, in_features)."""
    y = x @ weight.T
    if bias is not None:
        y = y + bias
    return relu(y) if activation == "relu" else y


def relu(x):
    """max(x, 0), NaN kept."""
    return np.where(x < 0, np.zeros_like(x), x)


def softmax(x, axis=-1):
    """exp(x - max) / sum(exp(x - max)) along axis."""
    m = np.max(x, axis=axis, keepdims=True)
    m = np.where(np.isneginf(m), 0, m)
    e = np.exp(x - m)
    return e / e.sum(axis=axis, keepdims=True)


def add(a, b, activation=None):
    """a + b with NumPy broadcasting, then the activation."""
    y = a + b
    return relu(y) if activation == "relu" else y


def _erf(x):
    import math

    return np.vectorize(math.erf, otypes=[np.float64])(x).astype(x.dtype)


def unary(x, fn, alpha=0.2, beta=0.5, lo=None, hi=None):
    """The element-wise functions of ONNX that pycnn imports (IEEE: NaN in, NaN out):
    sigmoid 1/(1+e^-x); hardsigmoid clip(alpha x + beta, 0, 1); hardswish x clip(x/6 + 1/2, 0, 1);
    clip(x, lo, hi) (None: unbounded); sqrt, exp, neg, tanh, abs, erf, reciprocal; silu x sigmoid(x);
    gelu x/2 (1 + erf(x / sqrt 2))."""
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        if fn == "sigmoid":
            return 1.0 / (1.0 + np.exp(-x))
        if fn == "hardsigmoid":
            return np.clip(alpha * x + beta, 0, 1).astype(x.dtype)
        if fn == "hardswish":
            return x * np.clip(x / 6 + 0.5, 0, 1)
        if fn == "clip":
            y = x if lo is None else np.where(x < lo, np.asarray(lo, x.dtype), x)
            return y if hi is None else np.where(y > hi, np.asarray(hi, x.dtype), y)
        if fn == "erf":
            return _erf(x)
        if fn == "silu":
            return x / (1.0 + np.exp(-x))
        if fn == "gelu":  # the exact (erf) form
            return (0.5 * x * (1.0 + _erf(x / np.sqrt(2.0)))).astype(x.dtype)
        f = {"sqrt": np.sqrt, "exp": np.exp, "neg": np.negative, "tanh": np.tanh, "abs": np.abs}.get(fn)
        if f is not None:
            return f(x)
        if fn == "reciprocal":
            return 1.0 / x
    raise ValueError(f"fn: unknown element-wise function {fn!r}")


BINARY = {"add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.divide, "pow": np.power}


def binary(a, b, fn):
    """a (fn) b with NumPy broadcasting: add, sub, mul, div, pow (IEEE: x/0 = inf, 0/0 = NaN)."""
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        return BINARY[fn](a, b)


def concat(xs, axis=1):
    return np.concatenate(xs, axis=axis)


def batch_norm(x, running_mean, running_var, weight=None, bias=None, eps=1e-5, activation=None):
    """Inference batch norm over axis 1: (x - mean) / sqrt(var + eps) * weight + bias."""
    shape = (1, -1) + (1,) * (x.ndim - 2)
    y = (x - running_mean.reshape(shape)) / np.sqrt(running_var.reshape(shape) + eps)
    if weight is not None:
        y = y * weight.reshape(shape)
    if bias is not None:
        y = y + bias.reshape(shape)
    return relu(y) if activation == "relu" else y


def adaptive_avg_pool2d(x, output_size):
    """PyTorch's adaptive average pooling: output cell i averages rows floor(i*H/Ho) to
    ceil((i+1)*H/Ho) (and the same for columns)."""
    Ho, Wo = pair(output_size)
    H, W = x.shape[2:]
    y = np.empty(x.shape[:2] + (Ho, Wo), dtype=x.dtype)
    for i in range(Ho):
        h0, h1 = (i * H) // Ho, -((-(i + 1) * H) // Ho)
        for j in range(Wo):
            w0, w1 = (j * W) // Wo, -((-(j + 1) * W) // Wo)
            y[:, :, i, j] = x[:, :, h0:h1, w0:w1].mean(axis=(2, 3))
    return y


def embedding(ids, weight):
    """weight[ids]: integer ids of any shape -> ids.shape + (embedding_dim,)."""
    return weight[ids]


def reduce_mean(x, axes, keepdims=False):
    """Mean over the given axes (NaN propagates)."""
    return np.mean(x, axis=tuple(axes), keepdims=keepdims).astype(x.dtype)


def reduce_max(x, axes, keepdims=False):
    """Max over the given axes (NaN propagates)."""
    return np.max(x, axis=tuple(axes), keepdims=keepdims)


def slice_(x, starts, ends, axes, steps):
    """ONNX Slice: per listed axis, x[start:end:step] with ONNX's clamping (negative indices count
    from the end; ends beyond the size clamp; a negative step walks backwards)."""
    return np.ascontiguousarray(x[slice_index(x.shape, starts, ends, axes, steps)])


def slice_index(shape, starts, ends, axes, steps) -> tuple:
    """The index tuple of ONNX Slice on an array of shape (what slice_ and the CUDA backends apply)."""
    idx = [slice(None)] * len(shape)
    for s, e, ax, st in zip(starts, ends, axes, steps):
        s, e, st = slice(int(s), int(e), int(st)).indices(shape[ax % len(shape)])
        idx[ax % len(shape)] = slice(s, None if e < 0 else e, st)  # -1 from indices() means "past index 0"
    return tuple(idx)


PAD_MODES = ("constant", "reflect", "edge", "wrap")


def pad(x, pads, mode="constant", value=0.0):
    """ONNX Pad: pads = (begin_0 .. begin_{n-1}, end_0 .. end_{n-1}); negative entries crop."""
    n = x.ndim
    begin, end = list(pads[:n]), list(pads[n:])
    crop = tuple(slice(max(-b, 0), x.shape[i] - max(-e, 0)) for i, (b, e) in enumerate(zip(begin, end)))
    x = x[crop]
    width = [(max(b, 0), max(e, 0)) for b, e in zip(begin, end)]
    if mode == "constant":
        return np.pad(x, width, mode="constant", constant_values=np.asarray(value, x.dtype))
    return np.pad(x, width, mode=mode)


def layer_norm(x, axis=-1, eps=1e-5, weight=None, bias=None):
    """ONNX LayerNormalization: normalize over the axes from axis on (mean and biased variance,
    accumulated in float64), then scale by weight and add bias (both broadcast over those axes)."""
    axes = tuple(range(axis % x.ndim, x.ndim))
    x64 = x.astype(np.float64)
    mean = x64.mean(axis=axes, keepdims=True)
    var = ((x64 - mean) ** 2).mean(axis=axes, keepdims=True)
    y = (x64 - mean) / np.sqrt(var + eps)
    if weight is not None:
        y = y * weight
    if bias is not None:
        y = y + bias
    return y.astype(x.dtype)
