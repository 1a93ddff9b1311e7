"""pycnn.prepare_conv: a convolution whose weights are transformed once.

The weights are packed into SGEMM panels (im2col) or reordered into the direct kernel's register
blocks when the object is made; every call then only runs the kernel. This is what a Graph does
for each of its layers, and what the bench times for "prepared" rows.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
from numpy.typing import ArrayLike

from . import _C, numba_conv, policy, reference, registry
from . import device as _device
from ._shapes import ConvShape
from ._validate import activation_flag, as_array, as_vector
from .ops import IntPair, Padding
from .step_kernel import NO_LAYOUT

UNARY_CLIP = 0  # _C.unary's code for clip (UnaryFn::clip, kernels/cpu/ops_cpu.h)


class PreparedConv:
    """Callable like conv2d with the weights, bias and geometry fixed: y = prepared(x).

    auto_elsewhere: where `algo` cannot run an input's shape, run what algo='auto' picks instead
    of raising (a Graph told to run 'winograd' keeps its 1x1 layers on their usual kernels)."""

    def __init__(
        self,
        weight,
        bias=None,
        stride=1,
        padding=0,
        dilation=1,
        groups=1,
        *,
        algo="auto",
        activation=None,
        auto_elsewhere=False,
    ):
        self.weight = as_array(weight, "weight", 4)
        w = self.weight
        self.relu = activation_flag(activation)
        self.activation = activation
        self.bias = as_vector(bias, "bias", w.shape[0])
        self.stride, self.padding, self.dilation, self.groups = stride, padding, dilation, groups
        # Validate the options once, on an input large enough for any kernel.
        probe = ConvShape(
            (
                1,
                w.shape[1] * (groups if isinstance(groups, int) and groups > 0 else 1),
                1 + (w.shape[2] - 1) * 64,
                1 + (w.shape[3] - 1) * 64,
            ),
            w.shape,
            stride,
            padding,
            dilation,
            groups,
        )
        entry = registry.get(algo)
        if not auto_elsewhere:
            registry.check(algo, probe)  # the ValueError that says why this algorithm cannot run it
        self.algo, self.auto_elsewhere = algo, bool(auto_elsewhere)
        # An element-wise activation after bias, residual and ReLU: (fn code of _C.unary, a, b)
        # (a Graph's fuse_activation pass), applied in the native kernels' epilogue (_epilogue).
        self.post = None
        self._groups = probe.groups
        self._handles = {}  # algorithm -> prepared weights, made once on first use
        self._shapes = {}  # input shape -> (ConvShape, algorithm)
        if entry.prepared and entry.supports(probe):
            self._handle(algo)

    def __getstate__(self):
        """The weights and options; the native prepared weights are made again on unpickling."""
        state = dict(self.__dict__)
        state["_handles"], state["_shapes"] = {}, {}
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        if registry.CONV[self.algo].prepared:
            self._handle(self.algo)

    def _handle(self, algo):
        h = self._handles.get(algo)
        if h is None:
            h = self._handles[algo] = _C.PreparedWeights(self.weight, self._groups, algo)
        return h

    def __call__(self, x, residual=None):
        """The layer on x (N, C, H, W). residual (optional, the output's shape): added to the
        convolution before the activation, in the kernel's epilogue (ResNet's join
        relu(conv(x) + b + r) in one pass; a Graph fuses its adds this way)."""
        x = as_array(x, "x", 4)
        hit = self._shapes.get(x.shape)
        if hit is None:
            s = ConvShape(x.shape, self.weight.shape, self.stride, self.padding, self.dilation, self.groups)
            hit = (s, self._resolve(s))
            if len(self._shapes) < 64:
                self._shapes[x.shape] = hit
        s, algo = hit
        if residual is not None:
            residual = as_array(residual, "residual", 4)
            if residual.shape != (s.N, s.K, s.Ho, s.Wo):
                raise ValueError(
                    f"residual: expected the output's shape {(s.N, s.K, s.Ho, s.Wo)}, got {residual.shape}"
                )
        if not registry.CONV[algo].prepared:
            relu_after = self.relu and residual is not None
            if algo == "reference":
                y = reference.conv2d(
                    x,
                    self.weight,
                    self.bias,
                    s.stride,
                    s.pad,
                    s.dilation,
                    s.groups,
                    None if relu_after else self.activation,
                ).astype(np.float32, copy=False)
            else:
                y = numba_conv.conv2d(x, self.weight, self.bias, s, algo, self.relu and not relu_after)
            if residual is not None:
                y = y + residual
                if relu_after:
                    y = np.where(y < 0, np.float32(0), y)  # NaN stays NaN
            return self._post(np.ascontiguousarray(y, np.float32))
        y = np.empty((s.N, s.K, s.Ho, s.Wo), np.float32)
        self._run(algo, x, s, y, residual)
        return y

    def _epilogue(self):
        """The native kernels' epilogue after bias, residual and ReLU, as the keyword arguments
        of their run and bind: a clip post-activation with lo <= hi (ReLU6, ONNX's Clip) is the
        clamp [clip_lo, clip_hi]; any other is post_fn with its a, b, applied to each tile as it
        is stored (no second pass over y)."""
        post = self.post
        if post is None:
            return {}
        if post[0] == UNARY_CLIP and post[1] <= post[2]:
            return {"clip_lo": float(post[1]), "clip_hi": float(post[2])}
        return {"post_fn": int(post[0]), "post_a": float(post[1]), "post_b": float(post[2])}

    def epilogue_tuple(self) -> tuple:
        """The epilogue as the fused native calls take it (_C.conv2d_pw_dw_blocked16, _C.se_block):
        (relu, clip_lo, clip_hi, post_fn, post_a, post_b), unset entries as the conv's own binding
        defaults them."""
        e = self._epilogue()
        inf = float("inf")
        return (
            bool(self.relu),
            e.get("clip_lo", -inf),
            e.get("clip_hi", inf),
            e.get("post_fn", -1),
            e.get("post_a", 0.0),
            e.get("post_b", 0.0),
        )

    def _post(self, y):
        """The post-activation on y in place, for the Python algorithms (reference, numba)."""
        if self.post is not None:
            _C.unary(self.post[0], y, y, self.post[1], self.post[2])
        return y

    def _run(self, algo, x, s, y, residual):
        self._handle(algo).run(
            x,
            self.bias,
            y,
            s.stride[0],
            s.stride[1],
            s.pad[0],
            s.pad[1],
            s.dilation[0],
            s.dilation[1],
            self.relu,
            residual,
            **self._epilogue(),
        )

    def bind(self, in_shapes, out_shape, max_map=0, layout=NO_LAYOUT, run_algo=None):
        """A callable for inputs of exactly in_shapes[0] (a Graph's fast path): the geometry,
        algorithm and prepared weights are looked up once here, each call only allocates the
        output and runs the kernel. Python-side algorithms (reference, numba) keep __call__.
        max_map 1 or 2: the callable returns the max over each output map, shaped (N, K) or
        (N, K, 1, 1) (see ConvMaxMap). layout: (bits, algorithm) from pycnn.layout.plan: x, y
        and/or the residual channel-blocked (N, C/16, H, W, 16), run by that algorithm. run_algo:
        the algorithm of an NCHW call instead of the one this shape resolves to (a chunked chain
        binds its convs for a few images with the algorithm the whole batch runs)."""
        s = ConvShape(tuple(in_shapes[0]), self.weight.shape, self.stride, self.padding, self.dilation, self.groups)
        bits, forced = layout
        algo = forced if bits else (policy.resolve(run_algo, s) if run_algo else self._resolve(s))
        if not registry.CONV[algo].prepared:
            return ConvMaxMap(self, max_map) if max_map else self
        # A C++ object called as call(x, residual=None, out=None) -> y: only those cross into C++
        # per call (the output allocated there); out, when given, is a C-contiguous array of the
        # output's shape to write (a Graph passes a slice of a concat's output: writes_out).
        call = self._handle(algo).bind(
            self.bias,
            [s.N, s.C, s.H, s.W],
            s.stride[0],
            s.stride[1],
            s.pad[0],
            s.pad[1],
            s.dilation[0],
            s.dilation[1],
            s.Ho,
            s.Wo,
            self.relu,
            max_map,
            bits,
            **self._epilogue(),
        )
        return call

    def prepare_for(self, x_shape):
        """Transform the weights now for the algorithm an input of x_shape will run (what a Graph
        does when it is built, so that the first call only runs kernels)."""
        algo = self.algo_for(x_shape)
        if registry.CONV[algo].prepared:
            self._handle(algo)
        return algo

    def algo_for(self, x_shape):
        """The algorithm a call with an input of x_shape runs."""
        s = ConvShape(tuple(x_shape), self.weight.shape, self.stride, self.padding, self.dilation, self.groups)
        return self._resolve(s)

    def _resolve(self, s):
        return policy.resolve_or_auto(self.algo, s) if self.auto_elsewhere else policy.resolve(self.algo, s)

    def __repr__(self):
        return (
            f"PreparedConv(weight={self.weight.shape}, algo={self.algo!r}, stride={self.stride}, "
            f"padding={self.padding}, dilation={self.dilation}, groups={self.groups})"
        )


class ConvMaxMap:
    """A convolution followed by the max over each output map (H and W): y = conv(x).max((2, 3)),
    shaped (N, K) for max_map 1 or (N, K, 1, 1) for 2, NaN propagating. What a Graph runs for a
    conv whose only consumer is such a reduce_max (Kim's max over time): bound, the maps stay in
    C++ (one call instead of two)."""

    def __init__(self, conv, max_map):
        self.conv, self.max_map = conv, max_map

    def __call__(self, x):
        y = np.max(self.conv(x), axis=(2, 3), keepdims=self.max_map == 2)  # NaN propagates
        return np.ascontiguousarray(y, dtype=np.float32)

    def bind(self, in_shapes, out_shape, layout=NO_LAYOUT):
        if layout[0]:
            raise ValueError("layout: a conv followed by a max over its maps reads and writes NCHW")
        return self.conv.bind(in_shapes, out_shape, self.max_map)

    def prepare_for(self, x_shape):
        return self.conv.prepare_for(x_shape)

    def algo_for(self, x_shape):
        return self.conv.algo_for(x_shape)


class ConvBankMax:
    """Convolutions of one input, each followed by the max over its maps, concatenated along the
    channels: y = concat([conv(x).max((2, 3)) for conv in convs], axis=1), shaped (N, sum K) for
    max_map 1 or (N, sum K, 1, 1) for 2. What a Graph runs for a sentence CNN's filter bank
    (Kim's CNN: heights 3, 4, 5 over the word vectors, max over time, concat).

    On a single-channel input whose windows span whole rows (R x W kernels, no padding, the same
    filter count; x (N, 1, L, D), one word vector per row) it runs one of two ways:
    - rows as channels, where every conv is algo='auto' and the rule (pycnn/select.py) runs each
      as the same convolution over x^T (N, D, L, 1) with weights (K, D, R, 1) on a one-dimensional
      Winograd tile (enough tiles in the batch): R-tap filters over L with D channels, the
      transposed weights made once per tile;
    - else, with im2col for each conv, one kernel (_C.bind_rows_bank_max): the im2col matrix is
      packed once per image for all the convs and they share one parallel region.
    Any other shape or algorithm runs the convs one by one."""

    def __init__(self, convs, max_map):
        self.convs, self.max_map = list(convs), max_map
        self._rows = {}  # algorithm per conv -> the transposed PreparedConvs

    def __call__(self, x):
        return np.concatenate([ConvMaxMap(c, self.max_map)(x) for c in self.convs], axis=1)

    def _whole_rows(self, x_shape, c):
        """c's ConvShape on x_shape when its windows span whole rows of a one-channel input
        (no padding, dilation 1, one group), else None."""
        if len(x_shape) != 4 or x_shape[1] != 1:
            return None
        s = ConvShape(tuple(x_shape), c.weight.shape, c.stride, c.padding, c.dilation, c.groups)
        if s.S != s.W or s.Wo != 1 or any(s.pad) or s.dilation[0] != 1 or s.groups != 1:
            return None
        return s

    def fused_stride(self, x_shape):
        """The convs' common row stride when an input of x_shape runs as one bank kernel, else None."""
        if len({c.weight.shape[0] for c in self.convs}) != 1:
            return None
        strides = set()
        for c in self.convs:
            s = self._whole_rows(x_shape, c)
            if s is None or c.algo_for(x_shape) != "im2col":
                return None
            strides.add(s.stride[0])
        return strides.pop() if len(strides) == 1 else None

    def rows_as_channels(self, x_shape):
        """The algorithm of each conv run over x^T (N, D, L, 1) where the rule takes a Winograd
        tile for every one of them (algo='auto', stride 1), else None."""
        algos = []
        for c in self.convs:
            s = self._whole_rows(x_shape, c)
            if s is None or c.algo != "auto" or s.stride != (1, 1):
                return None
            N, _, L, D = x_shape
            t = ConvShape((N, D, L, 1), (s.K, D, s.R, 1), 1, 0, 1, 1)
            algo = policy.resolve("auto", t)
            if not algo.startswith("winograd"):
                return None
            algos.append(algo)
        return tuple(algos)

    def _transposed(self, algos):
        """The convs with weights (K, 1, R, D) -> (K, D, R, 1), prepared for algos (made once)."""
        convs = self._rows.get(algos)
        if convs is None:
            convs = []
            for c, algo in zip(self.convs, algos):
                t = PreparedConv(
                    np.ascontiguousarray(c.weight.transpose(0, 3, 2, 1)), c.bias, algo=algo, activation=c.activation
                )
                t.post = c.post
                convs.append(t)
            self._rows[algos] = convs
        return convs

    def bind(self, in_shapes, out_shape, layout=NO_LAYOUT):
        if layout[0]:
            raise ValueError("layout: a conv bank reads and writes NCHW")
        shape = tuple(in_shapes[0])
        algos = self.rows_as_channels(shape)
        if algos is not None:
            N, _, L, D = shape
            xt_shape = (N, D, L, 1)
            fns = [c.bind([xt_shape], None, self.max_map) for c in self._transposed(algos)]

            def run(x):
                xt = np.empty(xt_shape, np.float32)
                _C.transpose_batched(x, N, L, D, 1, xt)
                return np.concatenate([f(xt) for f in fns], axis=1)

            return run
        stride_h = self.fused_stride(shape)
        if stride_h is not None:
            return _C.bind_rows_bank_max(
                [c._handle("im2col") for c in self.convs],
                [c.bias for c in self.convs],
                [c.relu for c in self.convs],
                list(shape),
                stride_h,
                self.max_map,
            )
        fns = [c.bind(in_shapes, None, self.max_map) for c in self.convs]
        return lambda x: np.concatenate([f(x) for f in fns], axis=1)

    def prepare_for(self, x_shape):
        algos = self.rows_as_channels(tuple(x_shape))
        if algos is not None:
            self._transposed(algos)
            return list(algos)
        return [c.prepare_for(x_shape) for c in self.convs]

    def algo_for(self, x_shape):
        algos = self.rows_as_channels(tuple(x_shape))
        if algos is not None:
            return "+".join(algos) + " (rows as channels)"
        if self.fused_stride(tuple(x_shape)) is not None:
            return f"im2col_rows_bank (x{len(self.convs)})"
        return "+".join(c.algo_for(x_shape) for c in self.convs)


@_device.routed
def prepare_conv(
    weight: ArrayLike,
    bias: Optional[ArrayLike] = None,
    stride: IntPair = 1,
    padding: Padding = 0,
    dilation: IntPair = 1,
    groups: int = 1,
    *,
    algo: str = "auto",
    activation: Optional[str] = None,
) -> PreparedConv:
    """Transform conv weights once; returns a PreparedConv called as prepared(x) (arguments as
    pycnn.conv2d's). With algo='auto' the weights are transformed on first use for the
    algorithm the input's shape chooses, and kept for later calls."""
    return PreparedConv(weight, bias, stride, padding, dilation, groups, algo=algo, activation=activation)
