"""The CUDA backends: the functional ops of pycnn/ops.py on device arrays, run by the kernels of
kernels/cuda (pycnn._C_cuda on a GPU, pycnn._C_cuda_emu on the CPU emulator).

The argument rules are the CPU's (names, defaults, shapes, errors); arrays are the device's
(CuPy for 'cuda', NumPy standing in for device memory on 'cuda_emu') and results are too.
pycnn.conv2d(x_cupy, w_cupy) reaches here through the device layer (pycnn/device.py); the
emulator is asked for by name: pycnn.backend('cuda_emu').conv2d(x, w).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, Optional

import numpy as np

from .. import registry
from .._shapes import ConvShape  # noqa: F401 (re-exported for the tests)
from .._validate import activation_flag, as_bool, as_int
from ..ops import batch_norm_folded, check_linear, concat_shape, softmax_dim
from . import select  # noqa: F401
from .conv import DeviceConv

# Element-wise functions with a CUDA kernel (eltwise.cu unary_kernel1's codes; 0-6 are the CPU's
# UnaryFn) and the binary ones (binary_kernel1).
UNARY = {"clip": 0, "sigmoid": 1, "hardsigmoid": 2, "hardswish": 3, "silu": 4, "erf": 5, "gelu": 6, "sqrt": 7,
         "exp": 8, "neg": 9, "tanh": 10, "abs": 11, "reciprocal": 12}  # fmt: skip
BINARY = {"add": 0, "sub": 1, "mul": 2, "div": 3, "pow": 4}


class CudaBackend:
    """Functional ops on one CUDA device ('cuda' or 'cuda_emu')."""

    def __init__(self, native, memory) -> None:
        self.native = native
        self.memory = memory
        self.device = memory.device

    def __repr__(self) -> str:
        return f"<pycnn CUDA backend {self.device!r}>"

    # ------------------------------------------------------------------ timing
    def time_ms(self, fn) -> float:
        """Milliseconds fn's launches take on the stream: CUDA events on a GPU, the host clock in
        the emulator (whose launches run to completion before returning)."""
        if self.device == "cuda":
            cp = self.memory.xp
            start, end = cp.cuda.Event(), cp.cuda.Event()
            start.record()
            fn()
            end.record()
            end.synchronize()
            return cp.cuda.get_elapsed_time(start, end)
        t = time.perf_counter()
        fn()
        return (time.perf_counter() - t) * 1e3

    def algorithms(self) -> list:
        return registry.names(self.device)

    # ------------------------------------------------------------------ convolution
    def prepare_conv(
        self, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, *, algo="auto", activation=None
    ) -> DeviceConv:
        """The weights kept on the device; returns a DeviceConv called as conv(x)."""
        return DeviceConv(self, weight, bias, stride, padding, dilation, groups, algo=algo, activation=activation)

    def conv2d(
        self, input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, *, algo="auto", activation=None
    ):
        return DeviceConv(self, weight, bias, stride, padding, dilation, groups, algo=algo, activation=activation)(
            input
        )

    # ------------------------------------------------------------------ pooling
    def max_pool2d(self, input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
        from ..ops import _pool_geometry

        m = self.memory
        x = m.asarray(input, "input", 4)
        kh, kw, sh, sw, ph, pw, Ho, Wo = _pool_geometry(x, kernel_size, stride, padding, ceil_mode, dilation)
        N, C, H, W = x.shape
        y = m.empty((N, C, Ho, Wo))
        self.native.max_pool2d((N, C, H, W, Ho, Wo, kh, kw, sh, sw, ph, pw), m.ptr(x), m.ptr(y), m.stream())
        return y

    def avg_pool2d(self, input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True):
        from ..ops import _pool_geometry

        m = self.memory
        x = m.asarray(input, "input", 4)
        kh, kw, sh, sw, ph, pw, Ho, Wo = _pool_geometry(x, kernel_size, stride, padding, ceil_mode)
        cip = as_bool(count_include_pad, "count_include_pad")
        N, C, H, W = x.shape
        y = m.empty((N, C, Ho, Wo))
        g = (N, C, H, W, Ho, Wo, kh, kw, sh, sw, ph, pw)
        self.native.avg_pool2d(g, m.ptr(x), m.ptr(y), cip, m.stream())
        return y

    def global_avg_pool2d(self, input):
        m = self.memory
        x = m.asarray(input, "input", 4)
        if x.shape[2] == 0 or x.shape[3] == 0:
            raise ValueError(f"input: spatial size must be >= 1, got {tuple(x.shape)}")
        y = m.empty(tuple(x.shape[:2]) + (1, 1))
        self.native.global_avg_pool2d(m.ptr(x), m.ptr(y), x.shape[0] * x.shape[1], x.shape[2] * x.shape[3], m.stream())
        return y

    # ------------------------------------------------------------------ the other layers
    def local_response_norm(self, input, size, alpha=1e-4, beta=0.75, k=1.0):
        m = self.memory
        x = m.asarray(input, "input")
        if x.ndim < 3:
            raise ValueError(f"input: expected (N, C, ...) with at least 3 dimensions, got shape {tuple(x.shape)}")
        size = as_int(size, "size", 1)
        y = m.empty(x.shape)
        hw = int(np.prod(x.shape[2:], dtype=np.int64))
        self.native.lrn(
            m.ptr(x), m.ptr(y), x.shape[0], x.shape[1], hw, size, float(alpha), float(beta), float(k), m.stream()
        )
        return y

    def linear(self, input, weight, bias=None, *, activation=None):
        m = self.memory
        x = m.asarray(input, "input")
        w = m.asarray(weight, "weight", 2)
        relu = activation_flag(activation)
        squeeze = x.ndim == 1
        if squeeze:
            x = x[None]
        check_linear(x.shape, w.shape)
        b = m.vector(bias, "bias", w.shape[0])
        N, K = x.shape
        O = w.shape[0]
        y = m.empty((N, O))
        if N and O:
            # y (N, O) = x (N, K) w^T: B given as (O, K), trans_b; bias per column.
            self.native.sgemm(
                2,
                N,
                O,
                K,
                m.ptr(x),
                K,
                0,
                m.ptr(w),
                K,
                0,
                True,
                m.ptr(y),
                O,
                0,
                1,
                m.ptr(b),
                2,
                0,
                0,
                0,
                relu,
                m.stream(),
            )
        return y[0] if squeeze else y

    def relu(self, input):
        m = self.memory
        x = m.asarray(input, "input")
        y = m.empty(x.shape)
        self.native.relu(m.ptr(x), m.ptr(y), x.size, m.stream())
        return y

    def add(self, input, other, *, activation=None):
        m = self.memory
        a = m.asarray(input, "input")
        b = m.asarray(other, "other")
        relu = activation_flag(activation)
        if a.shape != b.shape:
            raise ValueError(f"other: shape {tuple(b.shape)} does not match the input's {tuple(a.shape)}")
        y = m.empty(a.shape)
        self.native.add(m.ptr(a), m.ptr(b), m.ptr(y), a.size, relu, m.stream())
        return y

    def unary(self, input, fn: str, alpha=None, beta=None, lo=None, hi=None):
        """ONNX's element-wise function fn of reference.unary (sigmoid, hardsigmoid with alpha and
        beta, hardswish, clip to [lo, hi] (None: unbounded), silu, erf, gelu, sqrt, exp, neg, tanh,
        abs, reciprocal); NaN in, NaN out."""
        m = self.memory
        x = m.asarray(input, "input")
        if fn not in UNARY:
            raise ValueError(f"fn: expected one of {sorted(UNARY)}, got {fn!r}")
        if fn == "clip":
            a, b = (-np.inf if lo is None else float(lo)), (np.inf if hi is None else float(hi))
        else:
            a, b = (0.2 if alpha is None else float(alpha)), (0.5 if beta is None else float(beta))
        y = m.empty(x.shape)
        self.native.unary(UNARY[fn], m.ptr(x), m.ptr(y), x.size, a, b, m.stream())
        return y

    def binary(self, input, other, fn: str):
        """input (fn) other with NumPy broadcasting (reference.binary: add, sub, mul, div, pow),
        up to 6 dimensions."""
        m = self.memory
        a = m.asarray(input, "input")
        b = m.asarray(other, "other")
        if fn not in BINARY:
            raise ValueError(f"fn: expected one of {sorted(BINARY)}, got {fn!r}")
        try:
            shape = tuple(np.broadcast_shapes(tuple(a.shape), tuple(b.shape)))
        except ValueError:
            msg = f"other: shape {tuple(b.shape)} does not broadcast with the input's {tuple(a.shape)}"
            raise ValueError(msg) from None
        if len(shape) > 6:
            raise ValueError(f"input: at most 6 dimensions on the device, got {len(shape)}")
        y = m.empty(shape)
        full = shape or (1,)
        self.native.binary(BINARY[fn], m.ptr(a), _bcast_strides(a.shape, full), m.ptr(b), _bcast_strides(b.shape, full),
                           m.ptr(y), full, m.stream())  # fmt: skip
        return y

    def channel_norm(self, input, weight, bias, eps: float = 1e-5):
        """LayerNorm over the channels of (N, C, ...) (reference: layers.ChannelNorm): each
        position's C values normalized (mean, biased variance), then * weight[c] + bias[c]."""
        m = self.memory
        x = m.asarray(input, "input")
        if x.ndim < 2:
            raise ValueError(f"input: expected (N, C, ...), got shape {tuple(x.shape)}")
        C = x.shape[1]
        w, b = m.vector(weight, "weight", C), m.vector(bias, "bias", C)
        y = m.empty(x.shape)
        P = int(np.prod(x.shape[2:], dtype=np.int64))
        self.native.channel_norm(m.ptr(x), m.ptr(w), m.ptr(b), m.ptr(y), x.shape[0], C, P, float(eps), m.stream())
        return y

    def softmax(self, input, dim=-1, *, axis=None):
        m, xp = self.memory, self.memory.xp
        x = m.asarray(input, "input")
        dim = softmax_dim(x.ndim, dim, axis)
        moved = xp.ascontiguousarray(xp.moveaxis(x, dim, -1))
        y = m.empty(moved.shape)
        cols = moved.shape[-1]
        self.native.softmax(m.ptr(moved), m.ptr(y), moved.size // max(cols, 1), cols, m.stream())
        return xp.ascontiguousarray(xp.moveaxis(y, -1, dim))

    def concat(self, tensors: Sequence[Any], dim: int = 1, *, axis: Optional[int] = None):
        m = self.memory
        if not isinstance(tensors, (list, tuple)) or len(tensors) == 0:
            raise ValueError("tensors: expected a non-empty list of arrays")
        xs = [m.asarray(a, f"tensors[{i}]") for i, a in enumerate(tensors)]
        dim, shape = concat_shape([a.shape for a in xs], dim, axis)
        y = m.empty(tuple(shape))
        outer = int(np.prod(shape[:dim], dtype=np.int64))
        inner = int(np.prod(shape[dim + 1 :], dtype=np.int64))
        off = 0
        for a in xs:
            self.native.concat_copy(m.ptr(a), m.ptr(y), outer, int(a.shape[dim]), inner, shape[dim], off, m.stream())
            off += int(a.shape[dim])
        return y

    def batch_norm(
        self,
        input,
        running_mean,
        running_var,
        weight=None,
        bias=None,
        training=False,
        momentum=0.1,
        eps=1e-5,
        *,
        activation=None,
    ):
        m = self.memory
        x = m.asarray(input, "input")
        scale, shift, relu = batch_norm_folded(
            x.shape,
            (running_mean, running_var, weight, bias),
            training,
            eps,
            activation,
            lambda v, name, C: None if v is None else m.to_host(m.vector(v, name, C)),
        )
        return self.channel_affine(x, m.from_host(scale), m.from_host(shift), relu)

    def channel_affine(self, x, scale, shift, relu: bool = False):
        """y[:, c] = act(x[:, c] * scale[c] + shift[c]); x, scale, shift already on the device and
        checked (what batch_norm runs once folded; a DeviceGraph folds once)."""
        m = self.memory
        y = m.empty(x.shape)
        hw = int(np.prod(x.shape[2:], dtype=np.int64))
        self.native.channel_affine(
            m.ptr(x), m.ptr(scale), m.ptr(shift), m.ptr(y), x.shape[0], x.shape[1], hw, relu, m.stream()
        )
        return y

    # ------------------------------------------------------------------ graphs
    def graph_to(self, graph, cuda_graph: bool = False):
        """graph on this device (Graph.to): a DeviceGraph, its weights moved here once."""
        from .graph import DeviceGraph

        return DeviceGraph(graph, self, cuda_graph=cuda_graph)


def _bcast_strides(shape, out) -> tuple:
    """Element strides of a contiguous array of shape read as out (NumPy broadcasting): 0 along
    the dimensions it broadcasts over, including the leading ones it lacks."""
    shape = (1,) * (len(out) - len(shape)) + tuple(shape)
    strides, step = [0] * len(out), 1
    for d in range(len(out) - 1, -1, -1):
        strides[d] = 0 if shape[d] == 1 and out[d] != 1 else step
        step *= shape[d]
    return tuple(strides)


__all__ = ["CudaBackend"]
