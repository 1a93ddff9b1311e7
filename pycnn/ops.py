"""The functional API: validate once, choose an algorithm, dispatch to one kernel.

Input rule (documented in the README):
  * arrays must be NumPy arrays (or array-likes NumPy can convert) of a real floating dtype;
    float32 is used as is, float16 and float64 are converted to float32 and the result is
    float32; integer, bool, complex and object arrays raise TypeError.
  * non-contiguous arrays (slices, transposes) are copied to C-contiguous first.
  * a bad shape, size or option raises ValueError naming the argument and the shapes.
CUDA arrays (anything with __cuda_array_interface__) are refused with a clear error until the
CUDA backend lands.
"""
from __future__ import annotations

import numbers
import os

import numpy as np

from . import _C, numba_conv, reference
from . import select as _select
from .select import winograd_applies
from ._shapes import conv_output_size, conv_padding, pool_output_size

_F32 = np.dtype(np.float32)
CONV_ALGOS_CPU = ("auto", "direct", "direct_oc", "im2col", "winograd", "winograd_f2", "winograd_f4", "winograd_f6", "reference",
                  "numba", "numba_im2col")
WINOGRAD_ALGOS = ("winograd_f2", "winograd_f4", "winograd_f6")
ACTIVATIONS = (None, "relu")


# ----------------------------------------------------------------------------- validation
def _array(a, name, ndim=None):
    """Apply the input rule; returns a C-contiguous float32 ndarray."""
    if a is None:
        raise TypeError(f"{name}: expected an array, got None")
    if hasattr(a, "__cuda_array_interface__"):
        raise TypeError(f"{name}: CUDA arrays need the CUDA backend (pycnn._C_cuda), which is not available here")
    if type(a) is not np.ndarray:
        try:
            a = np.asarray(a)
        except Exception as e:  # noqa: BLE001 - report any conversion failure against the argument
            raise TypeError(f"{name}: cannot convert {type(a).__name__} to an array: {e}") from None
    dt = a.dtype
    if dt is not _F32:
        if dt.kind != "f":
            raise TypeError(f"{name}: expected a floating-point array (float32), got dtype {dt}")
        a = a.astype(np.float32)
    if not a.flags.c_contiguous:
        a = np.ascontiguousarray(a)
    if ndim is not None and a.ndim != ndim:
        raise ValueError(f"{name}: expected {ndim} dimensions, got shape {a.shape}")
    return a


def _int(v, name, minimum):
    if isinstance(v, bool) or not isinstance(v, (numbers.Integral,)):
        raise TypeError(f"{name}: expected an int, got {v!r}")
    v = int(v)
    if v < minimum:
        raise ValueError(f"{name}: must be >= {minimum}, got {v}")
    return v


def _pair(v, name, minimum):
    if isinstance(v, (tuple, list)):
        if len(v) != 2:
            raise ValueError(f"{name}: expected an int or a pair, got {v!r}")
        return _int(v[0], name, minimum), _int(v[1], name, minimum)
    v = _int(v, name, minimum)
    return v, v


def _activation(activation):
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation: expected None or 'relu', got {activation!r}")
    return activation == "relu"


def _vector(b, name, n):
    if b is None:
        return None
    b = _array(b, name)
    if b.ndim != 1 or b.shape[0] != n:
        raise ValueError(f"{name}: expected shape ({n},), got {b.shape}")
    return b


# ----------------------------------------------------------------------------- conv2d
class ConvShape:
    """Validated geometry of one conv2d call (also what select.py and the bench look at)."""

    __slots__ = ("N", "C", "H", "W", "K", "R", "S", "stride", "pad", "dilation", "groups", "Ho", "Wo")

    def __init__(self, x_shape, w_shape, stride, padding, dilation, groups):
        N, C, H, W = x_shape
        K, Cg, R, S = w_shape
        self.stride = _pair(stride, "stride", 1)
        self.dilation = _pair(dilation, "dilation", 1)
        self.groups = _int(groups, "groups", 1)
        if C % self.groups or K % self.groups:
            raise ValueError(f"groups: {groups} must divide both the input channels ({C}) and "
                             f"the output channels ({K}); x {tuple(x_shape)}, weight {tuple(w_shape)}")
        if Cg * self.groups != C:
            raise ValueError(f"weight: expected shape[1] == x channels / groups = {C // self.groups}, "
                             f"got weight {tuple(w_shape)} for x {tuple(x_shape)} with groups={groups}")
        if K == 0 or Cg == 0 or R == 0 or S == 0:
            raise ValueError(f"weight: every dimension must be >= 1, got {tuple(w_shape)}")
        if N == 0 or H == 0 or W == 0:
            raise ValueError(f"x: batch and spatial sizes must be >= 1, got {tuple(x_shape)}")
        if isinstance(padding, (tuple, list)) and len(padding) == 4:
            pad = tuple(_int(p, "padding", 0) for p in padding)
        elif isinstance(padding, str):
            pad = conv_padding(padding, (R, S), self.dilation, self.stride)
        else:
            ph, pw = _pair(padding, "padding", 0)
            pad = (ph, pw, ph, pw)
        self.pad = pad
        pt, pl, pb, pr = pad
        self.Ho = conv_output_size(H, R, self.stride[0], pt, pb, self.dilation[0])
        self.Wo = conv_output_size(W, S, self.stride[1], pl, pr, self.dilation[1])
        if self.Ho < 1 or self.Wo < 1:
            raise ValueError(
                f"weight: kernel {R}x{S} (dilation {self.dilation}) is larger than the padded input "
                f"{H + pt + pb}x{W + pl + pr}; x {tuple(x_shape)}, weight {tuple(w_shape)}, padding {padding!r}")
        self.N, self.C, self.H, self.W, self.K, self.R, self.S = N, C, H, W, K, R, S

    @property
    def flops(self):
        return 2.0 * self.N * self.K * self.Ho * self.Wo * (self.C // self.groups) * self.R * self.S

    def key(self):
        return (self.N, self.C, self.H, self.W, self.K, self.R, self.S, self.stride, self.pad,
                self.dilation, self.groups)


def resolve_algo(algo, s):
    """The concrete kernel name for algo on shape s ('auto' and 'winograd' choose; a Winograd
    name on a shape it cannot run raises ValueError)."""
    if algo == "auto":
        return _select.conv2d_algo(s)
    if algo == "winograd" or algo in WINOGRAD_ALGOS:
        if not winograd_applies(s):
            raise ValueError(f"algo: {algo!r} needs a 3x3 kernel with stride 1 and dilation 1, got "
                             f"kernel {s.R}x{s.S}, stride {s.stride}, dilation {s.dilation}")
        return _select.winograd_tile(s) if algo == "winograd" else algo
    if algo not in CONV_ALGOS_CPU:
        raise ValueError(f"algo: expected one of {list(CONV_ALGOS_CPU)}, got {algo!r}")
    if algo in numba_conv.ALGOS and not numba_conv.available():
        raise ValueError(f"algo: {algo!r} needs numba, which is not installed (pip install numba)")
    return algo


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, *, algo="auto", activation=None):
    """2-D convolution (cross-correlation, as torch.nn.functional.conv2d).

    x (N, C, H, W), weight (K, C/groups, R, S), bias (K,) or None. stride, dilation: int or
    (h, w); padding: int, (h, w), (top, left, bottom, right), 'valid' or 'same'.
    algo: 'auto', 'direct' (vectorized along output columns), 'direct_oc' (vectorized over
    output channels: small maps, strides), 'im2col', 'winograd' (tile chosen), 'winograd_f2', 'winograd_f4',
    'winograd_f6' (3x3, stride 1, dilation 1 only), 'reference', or 'numba' / 'numba_im2col'
    (JIT-compiled, when numba is installed); activation: None or 'relu'.
    Returns (N, K, Ho, Wo) float32.
    """
    x = _array(x, "x", 4)
    weight = _array(weight, "weight", 4)
    relu = _activation(activation)
    s = ConvShape(x.shape, weight.shape, stride, padding, dilation, groups)
    bias = _vector(bias, "bias", s.K)
    algo = resolve_algo(algo, s)
    if algo == "reference":
        return reference.conv2d(x, weight, bias, s.stride, s.pad, s.dilation, s.groups,
                                activation).astype(np.float32, copy=False)
    if algo in numba_conv.ALGOS:
        return numba_conv.conv2d(x, weight, bias, s, algo, relu)
    y = np.empty((s.N, s.K, s.Ho, s.Wo), np.float32)
    _C.conv2d(x, weight, bias, y, s.stride[0], s.stride[1], s.pad[0], s.pad[1],
              s.dilation[0], s.dilation[1], s.groups, algo, relu)
    return y


# ----------------------------------------------------------------------------- pooling
def _pool_geometry(x, kernel_size, stride, padding, ceil_mode):
    kh, kw = _pair(kernel_size, "kernel_size", 1)
    sh, sw = _pair(stride, "stride", 1) if stride is not None else (kh, kw)
    ph, pw = _pair(padding, "padding", 0)
    if ph > kh // 2 or pw > kw // 2:
        raise ValueError(f"padding: must be at most half the kernel size, got padding {(ph, pw)} "
                         f"for kernel_size {(kh, kw)}")
    H, W = x.shape[2:]
    if H + 2 * ph < kh or W + 2 * pw < kw:
        raise ValueError(f"kernel_size: {(kh, kw)} is larger than the padded input "
                         f"{(H + 2 * ph, W + 2 * pw)}; x {x.shape}")
    if not isinstance(ceil_mode, (bool, np.bool_)):
        raise TypeError(f"ceil_mode: expected a bool, got {ceil_mode!r}")
    Ho = pool_output_size(H, kh, sh, ph, ceil_mode)
    Wo = pool_output_size(W, kw, sw, pw, ceil_mode)
    return kh, kw, sh, sw, ph, pw, Ho, Wo


def max_pool2d(x, kernel_size, stride=None, padding=0, ceil_mode=False):
    """Max pooling with PyTorch's semantics (padding never selected; NaN propagates)."""
    x = _array(x, "x", 4)
    kh, kw, sh, sw, ph, pw, Ho, Wo = _pool_geometry(x, kernel_size, stride, padding, ceil_mode)
    y = np.empty(x.shape[:2] + (Ho, Wo), np.float32)
    _C.max_pool2d(x, y, kh, kw, sh, sw, ph, pw)
    return y


def avg_pool2d(x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True):
    """Average pooling with PyTorch's semantics."""
    x = _array(x, "x", 4)
    kh, kw, sh, sw, ph, pw, Ho, Wo = _pool_geometry(x, kernel_size, stride, padding, ceil_mode)
    y = np.empty(x.shape[:2] + (Ho, Wo), np.float32)
    if (Ho, Wo) == (1, 1) and (kh, kw) == x.shape[2:] and ph == pw == 0:
        _C.global_avg_pool2d(x, y)  # one window over the whole plane (GoogLeNet's 7x7 avgpool)
    else:
        _C.avg_pool2d(x, y, kh, kw, sh, sw, ph, pw, bool(count_include_pad))
    return y


def global_avg_pool2d(x):
    """(N, C, H, W) -> (N, C, 1, 1)."""
    x = _array(x, "x", 4)
    if x.shape[2] == 0 or x.shape[3] == 0:
        raise ValueError(f"x: spatial size must be >= 1, got {x.shape}")
    y = np.empty(x.shape[:2] + (1, 1), np.float32)
    _C.global_avg_pool2d(x, y)
    return y


def local_response_norm(x, size, alpha=1e-4, beta=0.75, k=1.0):
    """Cross-channel LRN with PyTorch's semantics (alpha is divided by size)."""
    x = _array(x, "x")
    if x.ndim < 3:
        raise ValueError(f"x: expected (N, C, ...) with at least 3 dimensions, got shape {x.shape}")
    size = _int(size, "size", 1)
    y = np.empty_like(x)
    _C.local_response_norm(x, y, size, float(alpha), float(beta), float(k))
    return y


# ----------------------------------------------------------------------------- dense and element-wise
def linear(x, w, b=None, activation=None):
    """y = x w^T + b with w (out_features, in_features); x (N, in) or (in,)."""
    x = _array(x, "x")
    w = _array(w, "w", 2)
    relu = _activation(activation)
    squeeze = x.ndim == 1
    if squeeze:
        x = x[None]
    if x.ndim != 2:
        raise ValueError(f"x: expected (N, in_features) or (in_features,), got shape {x.shape}")
    if x.shape[1] != w.shape[1]:
        raise ValueError(f"w: in_features {w.shape[1]} does not match x's {x.shape[1]}; "
                         f"x {x.shape}, w {w.shape}")
    b = _vector(b, "b", w.shape[0])
    y = np.empty((x.shape[0], w.shape[0]), np.float32)
    _C.linear(x, w, b, y, relu)
    return y[0] if squeeze else y


def relu(x):
    x = _array(x, "x")
    y = np.empty_like(x)
    _C.relu(x, y)
    return y


def add(a, b, activation=None):
    """a + b (same shape), optionally followed by ReLU (the residual join of ResNet)."""
    a = _array(a, "a")
    b = _array(b, "b")
    relu = _activation(activation)
    if a.shape != b.shape:
        raise ValueError(f"b: shape {b.shape} does not match a's {a.shape}")
    y = np.empty_like(a)
    _C.add(a, b, y, relu)
    return y


def softmax(x, axis=-1):
    x = _array(x, "x")
    if x.ndim == 0:
        raise ValueError("x: expected at least 1 dimension, got a scalar")
    axis = _int(axis, "axis", -x.ndim)
    if axis >= x.ndim:
        raise ValueError(f"axis: {axis} is out of range for shape {x.shape}")
    moved = np.ascontiguousarray(np.moveaxis(x, axis, -1))
    y = np.empty_like(moved)
    _C.softmax_rows(moved.reshape(-1, moved.shape[-1]), y.reshape(-1, moved.shape[-1]))
    return np.ascontiguousarray(np.moveaxis(y, -1, axis))


def concat(xs, axis=1):
    """Concatenate arrays along axis (all other dimensions equal)."""
    if not isinstance(xs, (list, tuple)) or len(xs) == 0:
        raise ValueError("xs: expected a non-empty list of arrays")
    xs = [_array(a, f"xs[{i}]") for i, a in enumerate(xs)]
    nd = xs[0].ndim
    axis = _int(axis, "axis", -nd)
    if axis < 0:
        axis += nd
    if axis >= nd:
        raise ValueError(f"axis: out of range for shape {xs[0].shape}")
    for i, a in enumerate(xs):
        if a.ndim != nd or a.shape[:axis] != xs[0].shape[:axis] or a.shape[axis + 1:] != xs[0].shape[axis + 1:]:
            raise ValueError(f"xs[{i}]: shape {a.shape} does not match xs[0] {xs[0].shape} outside axis {axis}")
    shape = list(xs[0].shape)
    shape[axis] = sum(a.shape[axis] for a in xs)
    y = np.empty(shape, np.float32)
    outer = int(np.prod(shape[:axis], dtype=np.int64))
    inner = int(np.prod(shape[axis + 1:], dtype=np.int64))
    _C.concat(xs, y, outer, inner)
    return y


def fold_batch_norm(running_mean, running_var, weight=None, bias=None, eps=1e-5):
    """(scale, shift) with batch_norm(x) == x * scale + shift per channel."""
    mean = np.asarray(running_mean, np.float64)
    var = np.asarray(running_var, np.float64)
    scale = 1.0 / np.sqrt(var + eps)
    if weight is not None:
        scale = scale * np.asarray(weight, np.float64)
    shift = -mean * scale
    if bias is not None:
        shift = shift + np.asarray(bias, np.float64)
    return scale.astype(np.float32), shift.astype(np.float32)


def batch_norm(x, running_mean, running_var, weight=None, bias=None, eps=1e-5, activation=None):
    """Inference batch norm over axis 1 (statistics given), folded into one scale and shift."""
    x = _array(x, "x")
    if x.ndim < 2:
        raise ValueError(f"x: expected (N, C, ...), got shape {x.shape}")
    C = x.shape[1]
    relu = _activation(activation)
    if float(eps) < 0:
        raise ValueError(f"eps: must be >= 0, got {eps}")
    vecs = [_vector(v, n, C) for v, n in ((running_mean, "running_mean"), (running_var, "running_var"),
                                          (weight, "weight"), (bias, "bias"))]
    if vecs[0] is None or vecs[1] is None:
        raise TypeError("running_mean, running_var: expected arrays, got None")
    scale, shift = fold_batch_norm(*vecs, eps=eps)
    return _channel_affine(x, scale, shift, relu)


def _channel_affine(x, scale, shift, relu):
    """y[:, c] = x[:, c] * scale[c] + shift[c] (then ReLU); x already validated, (N, C, ...) with
    C == len(scale). What batch_norm runs once its statistics are folded (a Graph folds once)."""
    y = np.empty_like(x)
    _C.channel_affine(x, scale, shift, y, relu)
    return y


# ----------------------------------------------------------------------------- runtime
def algorithms(op="conv2d", device="cpu"):
    """The algorithm names usable here for op on device."""
    if op != "conv2d":
        raise ValueError(f"op: only 'conv2d' has algorithm choices, got {op!r}")
    if device != "cpu":
        raise ValueError(f"device: only 'cpu' is available in this build, got {device!r}")
    return [a for a in CONV_ALGOS_CPU if a not in numba_conv.ALGOS or numba_conv.available()]


def set_num_threads(n):
    """Threads every kernel uses from now on (default: OMP_NUM_THREADS or the core count)."""
    _C.set_num_threads(_int(n, "n", 1))


def get_num_threads():
    return _C.get_num_threads()


def set_workspace_limit(nbytes):
    """Largest scratch buffer one kernel call may allocate (im2col tiles, staged GEMM blocks,
    Winograd transforms, padded images), in bytes; default 2 GiB or PYCNN_WORKSPACE_LIMIT.
    A call that would need more raises MemoryError instead of allocating."""
    _C.set_workspace_limit(_int(nbytes, "nbytes", 1))


def get_workspace_limit():
    return _C.get_workspace_limit()


def _env_isa():
    isa = os.environ.get("PYCNN_ISA")
    if isa and isa not in ("generic", "avx2", "avx512"):
        import warnings

        warnings.warn(f"PYCNN_ISA={isa!r} is not one of 'generic', 'avx2', 'avx512'; ignored", stacklevel=3)
