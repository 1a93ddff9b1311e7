"""The functional API: validate once, choose an algorithm, dispatch to one kernel.

Names and positional order follow torch.nn.functional (input, weight, bias, dim ...). The input
rule (pycnn/_validate.py): NumPy arrays (or convertible) of a floating dtype, float32 used as is,
float16/float64 converted; integer, bool and complex arrays raise TypeError; non-contiguous
arrays are copied; a bad shape or option raises ValueError naming the argument. An empty batch
(N == 0) gives an empty result of the right shape, as in PyTorch.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Optional, Union

import numpy as np
from numpy.typing import ArrayLike

from . import _C, _weight_cache, numba_conv, policy, reference, registry
from . import device as _device
from ._config import config
from ._shapes import ConvShape, conv_output_size, conv_padding, pool_output_size  # noqa: F401 (re-exported)
from ._validate import activation_flag, as_array, as_bool, as_int, as_pair, as_vector

IntPair = Union[int, Sequence[int]]
Padding = Union[int, Sequence[int], str]


# ----------------------------------------------------------------------------- conv2d
@_device.routed
def conv2d(
    input: ArrayLike,
    weight: ArrayLike,
    bias: Optional[ArrayLike] = None,
    stride: IntPair = 1,
    padding: Padding = 0,
    dilation: IntPair = 1,
    groups: int = 1,
    *,
    algo: str = "auto",
    activation: Optional[str] = None,
) -> np.ndarray:
    """2-D convolution (cross-correlation), as torch.nn.functional.conv2d.

    input (N, C, H, W); weight (K, C/groups, R, S); bias (K,) or None. stride, dilation: int or
    (h, w); padding: int, (h, w), (top, left, bottom, right), 'valid' or 'same'.
    algo: 'auto', 'direct' (vectorized along output columns), 'direct_oc' (vectorized over
    output channels), 'im2col', 'winograd' (tile chosen), 'winograd_f2', 'winograd_f4' (3x3 or
    5x5), 'winograd_f6' (3x3) (Winograd: stride 1, dilation 1 only), 'reference', or 'numba' / 'numba_im2col'
    (when numba is installed); pycnn.algorithms() lists them. activation: None or 'relu' (fused).
    Returns (N, K, Ho, Wo) float32. The weights' transformed copy is kept between calls while the
    array is alive and unchanged (pycnn/_weight_cache.py); pycnn.prepare_conv holds it explicitly.
    """
    x = as_array(input, "input", 4)
    given = weight
    weight = as_array(weight, "weight", 4)
    relu = activation_flag(activation)
    s, algo = policy.conv_call(x.shape, weight.shape, stride, padding, dilation, groups, algo)
    bias = as_vector(bias, "bias", s.K)
    if s.N == 0:  # nothing to choose for (a named algorithm was checked)
        return np.empty(s.out_shape, np.float32)
    if algo == "reference":
        return reference.conv2d(x, weight, bias, s.stride, s.pad, s.dilation, s.groups, activation).astype(
            np.float32, copy=False
        )
    if registry.CONV[algo].kind == registry.PYTHON:
        return numba_conv.conv2d(x, weight, bias, s, algo, relu)
    # The weights transformed for algo: kept between calls while the array is alive and unchanged
    # (pycnn/_weight_cache.py), so a loop over the same weights pays the transform once.
    handle = _weight_cache.prepared(weight, s.groups, algo, keyable=weight is given)
    y = np.empty(s.out_shape, np.float32)
    handle.run(x, bias, y, s.stride[0], s.stride[1], s.pad[0], s.pad[1], s.dilation[0], s.dilation[1], relu, None)
    return y


# ----------------------------------------------------------------------------- pooling
def _pool_geometry(x, kernel_size, stride, padding, ceil_mode, dilation=1):
    kh, kw = as_pair(kernel_size, "kernel_size", 1)
    sh, sw = as_pair(stride, "stride", 1) if stride is not None else (kh, kw)
    ph, pw = as_pair(padding, "padding", 0)
    if as_pair(dilation, "dilation", 1) != (1, 1):
        raise ValueError(f"dilation: pycnn's pooling kernels support dilation 1 only, got {dilation!r}")
    if ph > kh // 2 or pw > kw // 2:
        raise ValueError(
            f"padding: must be at most half the kernel size, got padding {(ph, pw)} for kernel_size {(kh, kw)}"
        )
    H, W = x.shape[2:]
    if H + 2 * ph < kh or W + 2 * pw < kw:
        raise ValueError(
            f"kernel_size: {(kh, kw)} is larger than the padded input {(H + 2 * ph, W + 2 * pw)}; input {x.shape}"
        )
    ceil_mode = as_bool(ceil_mode, "ceil_mode")
    Ho = pool_output_size(H, kh, sh, ph, ceil_mode)
    Wo = pool_output_size(W, kw, sw, pw, ceil_mode)
    return kh, kw, sh, sw, ph, pw, Ho, Wo


@_device.routed
def max_pool2d(
    input: ArrayLike,
    kernel_size: IntPair,
    stride: Optional[IntPair] = None,
    padding: IntPair = 0,
    dilation: IntPair = 1,
    ceil_mode: bool = False,
) -> np.ndarray:
    """Max pooling over (N, C, H, W), as torch.nn.functional.max_pool2d: padding is never
    selected, NaN in a window wins, ceil_mode's last window starts inside the image or the left
    padding. stride defaults to kernel_size; dilation must be 1."""
    x = as_array(input, "input", 4)
    kh, kw, sh, sw, ph, pw, Ho, Wo = _pool_geometry(x, kernel_size, stride, padding, ceil_mode, dilation)
    y = np.empty(x.shape[:2] + (Ho, Wo), np.float32)
    if y.size:
        _C.max_pool2d(x, y, kh, kw, sh, sw, ph, pw)
    return y


@_device.routed
def avg_pool2d(
    input: ArrayLike,
    kernel_size: IntPair,
    stride: Optional[IntPair] = None,
    padding: IntPair = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
) -> np.ndarray:
    """Average pooling over (N, C, H, W), as torch.nn.functional.avg_pool2d (count_include_pad:
    the zero padding counts in the divisor)."""
    x = as_array(input, "input", 4)
    kh, kw, sh, sw, ph, pw, Ho, Wo = _pool_geometry(x, kernel_size, stride, padding, ceil_mode)
    count_include_pad = as_bool(count_include_pad, "count_include_pad")
    y = np.empty(x.shape[:2] + (Ho, Wo), np.float32)
    if not y.size:
        return y
    if (Ho, Wo) == (1, 1) and (kh, kw) == x.shape[2:] and ph == pw == 0:
        _C.global_avg_pool2d(x, y)  # one window over the whole plane (GoogLeNet's 7x7 avgpool)
    else:
        _C.avg_pool2d(x, y, kh, kw, sh, sw, ph, pw, count_include_pad)
    return y


@_device.routed
def global_avg_pool2d(input: ArrayLike) -> np.ndarray:
    """(N, C, H, W) -> (N, C, 1, 1), the mean of each plane."""
    x = as_array(input, "input", 4)
    if x.shape[2] == 0 or x.shape[3] == 0:
        raise ValueError(f"input: spatial size must be >= 1, got {x.shape}")
    y = np.empty(x.shape[:2] + (1, 1), np.float32)
    if y.size:
        _C.global_avg_pool2d(x, y)
    return y


@_device.routed
def local_response_norm(
    input: ArrayLike, size: int, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0
) -> np.ndarray:
    """Cross-channel LRN over (N, C, ...), as torch.nn.functional.local_response_norm:
    y = x / (k + alpha / size * sum of x^2 over `size` neighbouring channels) ** beta."""
    x = as_array(input, "input")
    if x.ndim < 3:
        raise ValueError(f"input: expected (N, C, ...) with at least 3 dimensions, got shape {x.shape}")
    size = as_int(size, "size", 1)
    y = np.empty_like(x)
    if y.size:
        _C.local_response_norm(x, y, size, float(alpha), float(beta), float(k))
    return y


# ----------------------------------------------------------------------------- dense and element-wise
@_device.routed
def linear(
    input: ArrayLike, weight: ArrayLike, bias: Optional[ArrayLike] = None, *, activation: Optional[str] = None
) -> np.ndarray:
    """y = input weight^T + bias, as torch.nn.functional.linear, with weight (out_features,
    in_features) and input (N, in_features) or (in_features,). activation: None or 'relu'."""
    x = as_array(input, "input")
    w = as_array(weight, "weight", 2)
    relu = activation_flag(activation)
    squeeze = x.ndim == 1
    if squeeze:
        x = x[None]
    check_linear(x.shape, w.shape)
    b = as_vector(bias, "bias", w.shape[0])
    y = np.empty((x.shape[0], w.shape[0]), np.float32)
    if y.size:
        _C.linear(x, w, b, y, relu)
    return y[0] if squeeze else y


@_device.routed
def relu(input: ArrayLike) -> np.ndarray:
    """max(input, 0) element-wise; NaN stays NaN."""
    x = as_array(input, "input")
    y = np.empty_like(x)
    if y.size:
        _C.relu(x, y)
    return y


@_device.routed
def add(input: ArrayLike, other: ArrayLike, *, activation: Optional[str] = None) -> np.ndarray:
    """input + other (same shape), optionally followed by ReLU (ResNet's residual join)."""
    a = as_array(input, "input")
    b = as_array(other, "other")
    relu = activation_flag(activation)
    if a.shape != b.shape:
        raise ValueError(f"other: shape {b.shape} does not match the input's {a.shape}")
    y = np.empty_like(a)
    if y.size:
        _C.add(a, b, y, relu)
    return y


@_device.routed
def softmax(input: ArrayLike, dim: int = -1, *, axis: Optional[int] = None) -> np.ndarray:
    """exp(x) / sum(exp(x)) along dim, as torch.nn.functional.softmax (axis: NumPy's name for dim)."""
    x = as_array(input, "input")
    dim = softmax_dim(x.ndim, dim, axis)
    moved = np.ascontiguousarray(np.moveaxis(x, dim, -1))
    y = np.empty_like(moved)
    if y.size:
        _C.softmax_rows(moved.reshape(-1, moved.shape[-1]), y.reshape(-1, moved.shape[-1]))
    return np.ascontiguousarray(np.moveaxis(y, -1, dim))


@_device.routed
def concat(tensors: Sequence[ArrayLike], dim: int = 1, *, axis: Optional[int] = None) -> np.ndarray:
    """Concatenate arrays along dim (all other dimensions equal), as torch.cat; the default is
    the channel dimension 1 (Inception's concat), where torch.cat's is 0. axis: NumPy's name."""
    if not isinstance(tensors, (list, tuple)) or len(tensors) == 0:
        raise ValueError("tensors: expected a non-empty list of arrays")
    xs = [as_array(a, f"tensors[{i}]") for i, a in enumerate(tensors)]
    dim, shape = concat_shape([a.shape for a in xs], dim, axis)
    y = np.empty(shape, np.float32)
    if y.size:
        outer = int(np.prod(shape[:dim], dtype=np.int64))
        inner = int(np.prod(shape[dim + 1 :], dtype=np.int64))
        _C.concat(xs, y, outer, inner)
    return y


# ----------------------------------------------------------------------------- argument rules shared by the backends
def check_linear(x_shape, w_shape) -> None:
    """linear's shape rule: x (N, in_features) after a 1-D input is lifted, w (out, in)."""
    if len(x_shape) != 2:
        raise ValueError(f"input: expected (N, in_features) or (in_features,), got shape {tuple(x_shape)}")
    if x_shape[1] != w_shape[1]:
        raise ValueError(
            f"weight: in_features {w_shape[1]} does not match the input's {x_shape[1]}; "
            f"input {tuple(x_shape)}, weight {tuple(w_shape)}"
        )


def softmax_dim(ndim: int, dim, axis) -> int:
    """softmax's dimension from dim or its NumPy name axis, checked against ndim."""
    if axis is not None:
        if dim != -1 and dim != axis:
            raise ValueError(f"axis: {axis} contradicts dim={dim}; pass one of them")
        dim, name = axis, "axis"
    else:
        name = "dim"
    if ndim == 0:
        raise ValueError("input: expected at least 1 dimension, got a scalar")
    return as_int(dim, name, -ndim, ndim - 1)


def concat_shape(shapes, dim, axis) -> tuple:
    """(dim, output shape) of concatenating arrays of these shapes along dim (or axis)."""
    if axis is not None:
        if dim != 1 and dim != axis:
            raise ValueError(f"axis: {axis} contradicts dim={dim}; pass one of them")
        dim, name = axis, "axis"
    else:
        name = "dim"
    shapes = [tuple(sh) for sh in shapes]
    nd = len(shapes[0])
    dim = as_int(dim, name, -nd, nd - 1) % nd
    for i, sh in enumerate(shapes):
        if len(sh) != nd or sh[:dim] != shapes[0][:dim] or sh[dim + 1 :] != shapes[0][dim + 1 :]:
            raise ValueError(f"tensors[{i}]: shape {sh} does not match tensors[0] {shapes[0]} outside dimension {dim}")
    shape = list(shapes[0])
    shape[dim] = sum(sh[dim] for sh in shapes)
    return dim, shape


def batch_norm_folded(x_shape, stats, training, eps, activation, vector) -> tuple:
    """batch_norm's argument rules, then its statistics folded: (scale, shift, relu). stats:
    (running_mean, running_var, weight, bias); vector(v, name, C) -> a host float32 vector of
    length C, or None for None (each backend reads its own arrays)."""
    if as_bool(training, "training"):
        raise ValueError(
            "training: pycnn runs inference only; batch statistics are not computed "
            "(pass training=False with running_mean and running_var)"
        )
    if len(x_shape) < 2:
        raise ValueError(f"input: expected (N, C, ...), got shape {tuple(x_shape)}")
    C = x_shape[1]
    relu = activation_flag(activation)
    if float(eps) < 0:
        raise ValueError(f"eps: must be >= 0, got {eps}")
    vecs = [vector(v, n, C) for v, n in zip(stats, ("running_mean", "running_var", "weight", "bias"))]
    if vecs[0] is None or vecs[1] is None:
        raise TypeError("running_mean, running_var: expected arrays, got None")
    return (*fold_batch_norm(*vecs, eps=eps), relu)


def fold_batch_norm(running_mean, running_var, weight=None, bias=None, eps=1e-5):
    """(scale, shift) with batch_norm(x) == x * scale + shift per channel (computed in float64)."""
    mean = np.asarray(running_mean, np.float64)
    var = np.asarray(running_var, np.float64)
    scale = 1.0 / np.sqrt(var + eps)
    if weight is not None:
        scale = scale * np.asarray(weight, np.float64)
    shift = -mean * scale
    if bias is not None:
        shift = shift + np.asarray(bias, np.float64)
    return scale.astype(np.float32), shift.astype(np.float32)


@_device.routed
def batch_norm(
    input: ArrayLike,
    running_mean: ArrayLike,
    running_var: ArrayLike,
    weight: Optional[ArrayLike] = None,
    bias: Optional[ArrayLike] = None,
    training: bool = False,
    momentum: float = 0.1,
    eps: float = 1e-5,
    *,
    activation: Optional[str] = None,
) -> np.ndarray:
    """Inference batch norm over dimension 1 with the given statistics, as
    torch.nn.functional.batch_norm with training=False (momentum only matters in training,
    which pycnn does not do: training=True raises). activation: None or 'relu'."""
    x = as_array(input, "input")
    scale, shift, relu = batch_norm_folded(
        x.shape, (running_mean, running_var, weight, bias), training, eps, activation, as_vector
    )
    return channel_affine(x, scale, shift, relu)


def channel_affine(x: np.ndarray, scale: np.ndarray, shift: np.ndarray, relu: bool) -> np.ndarray:
    """y[:, c] = x[:, c] * scale[c] + shift[c] (then ReLU); x already validated, (N, C, ...) with
    C == len(scale). What batch_norm runs once its statistics are folded (a Graph folds once)."""
    y = np.empty_like(x)
    if y.size:
        _C.channel_affine(x, scale, shift, y, relu)
    return y


# ----------------------------------------------------------------------------- runtime
def algorithms(op: str = "conv2d", device: str = "cpu") -> list:
    """The algorithm names usable here for op on device (pycnn/registry.py lists them)."""
    if op != "conv2d":
        raise ValueError(f"op: only 'conv2d' has algorithm choices, got {op!r}")
    if not _device.available(device):
        _device.backend(device)  # raises: no backend for it in this build
    return registry.names(device)


# More OpenMP threads than this is a mistake, not a setting (each thread has its own scratch).
MAX_THREADS = max(64, 8 * (os.cpu_count() or 1))


def set_num_threads(n: int) -> None:
    """Threads every kernel uses from now on (default: OMP_NUM_THREADS or the core count);
    1 <= n <= MAX_THREADS (8 per core, at least 64)."""
    _C.set_num_threads(as_int(n, "n", 1, MAX_THREADS))


def get_num_threads() -> int:
    """Threads the kernels use."""
    return _C.get_num_threads()


def set_workspace_limit(nbytes: int) -> None:
    """Largest scratch buffer one kernel call may allocate (im2col tiles, staged GEMM blocks,
    Winograd transforms, padded images), in bytes; default 2 GiB or PYCNN_WORKSPACE_LIMIT.
    A call that would need more raises MemoryError instead of allocating."""
    _C.set_workspace_limit(as_int(nbytes, "nbytes", 1))


def get_workspace_limit() -> int:
    """The scratch limit of one kernel call, in bytes."""
    return _C.get_workspace_limit()


def apply_config() -> None:
    """Hand the environment's kernel settings (pycnn.config: PYCNN_ISA, PYCNN_WORKSPACE_LIMIT) to
    the kernels; pycnn/__init__.py calls it once."""
    if config.isa:
        best = _C.cpu_isa()
        order = ("generic", "avx2", "avx512")
        _C.set_isa(config.isa if order.index(config.isa) < order.index(best) else best)
    if config.workspace_limit:
        _C.set_workspace_limit(config.workspace_limit)
