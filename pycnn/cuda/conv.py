"""Convolution on a CUDA device: the weights kept there (Winograd-transformed once per tile),
the algorithm chosen per input shape, the kernels of kernels/cuda/conv2d_*.cu launched on the
backend's stream. What pycnn.prepare_conv returns for device weights, and what the functional
conv2d runs once per call.
"""

from __future__ import annotations

from typing import Any, Optional

from .. import _C, registry
from .._config import config
from .._shapes import ConvShape
from .._validate import activation_flag
from . import select

_tuned: dict = {}  # (device, shape key) -> the fastest algorithm, timed


def geometry(s: ConvShape) -> tuple:
    """The 16 numbers kernels/include/pycnn/cuda_ops.h's ConvGeom holds (padding: top, left)."""
    pt, pl = s.pad[0], s.pad[1]
    return (s.N, s.C, s.H, s.W, s.K, s.R, s.S, s.Ho, s.Wo, s.stride[0], s.stride[1], pt, pl) + (
        s.dilation[0],
        s.dilation[1],
        s.groups,
    )


class DeviceConv:
    """A convolution whose weights live on a CUDA device (or the emulator); called as conv(x)
    or conv(x, residual=r) (added before the activation: ResNet's join)."""

    def __init__(
        self, backend, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, *, algo="auto", activation=None
    ) -> None:
        self.backend = backend
        m = backend.memory
        self.weight = m.asarray(weight, "weight", 4)
        self.bias = m.vector(bias, "bias", self.weight.shape[0])
        self.relu = activation_flag(activation)
        self.stride, self.padding, self.dilation, self.groups = stride, padding, dilation, groups
        self.algo = registry.get(algo, backend.device).name
        self._U: dict = {}  # Winograd tile -> transformed weights on the device
        if self.algo in ("winograd_f2", "winograd_f4"):  # a named tile: transformed now, at prepare time
            w = self.weight.shape
            if w[2:] != (3, 3) or groups != 1:
                raise ValueError(f"algo: {algo!r} runs 3x3 convolutions with groups 1 only, weight {tuple(w)}")
            self.winograd_weights(2 if self.algo == "winograd_f2" else 4)

    @property
    def device(self) -> str:
        return self.backend.device

    def shape(self, x_shape) -> ConvShape:
        return ConvShape(x_shape, self.weight.shape, self.stride, self.padding, self.dilation, self.groups)

    def resolve(self, s: ConvShape) -> str:
        """The algorithm that runs s: the one named, or the rule's / the autotuner's choice."""
        dev = self.backend.device
        algo = self.algo
        if algo == "winograd":
            registry.check(algo, s, dev)
            return select.winograd_tile(s)
        if algo != "auto":
            return registry.check(algo, s, dev).name
        forced = config.conv_algo
        if forced and forced in registry.table(dev) and registry.table(dev)[forced].supports(s):
            return forced if forced not in ("auto", "winograd") else select.choose(s)
        if config.autotune:
            return self._autotune(s)
        return select.choose(s)

    def __call__(self, input: Any, residual: Optional[Any] = None):
        m = self.backend.memory
        x = m.asarray(input, "input", 4)
        s = self.shape(x.shape)
        r = None
        if residual is not None:
            r = m.asarray(residual, "residual", 4)
            if tuple(r.shape) != s.out_shape:
                raise ValueError(f"residual: expected shape {s.out_shape}, got {tuple(r.shape)}")
        y = m.empty(s.out_shape)
        if s.N == 0:
            return y
        self.run(self.resolve(s), s, x, r, y)
        return y

    def winograd_weights(self, tile: int):
        """U = G g G^T for every (k, c), [alpha*alpha][K][C], made once per tile on the device."""
        U = self._U.get(tile)
        if U is None:
            be, m = self.backend, self.backend.memory
            K, C = self.weight.shape[:2]
            a = be.native.winograd_alpha(tile)
            U = m.empty((a * a * K * C,))
            be.native.winograd_filter_transform(tile, m.ptr(self.weight), K, C, m.ptr(U), m.stream())
            self._U[tile] = U
        return U

    def run(self, algo: str, s: ConvShape, x, r, y) -> None:
        be, m = self.backend, self.backend.memory
        n, g, st = be.native, geometry(s), m.stream()
        args = (m.ptr(self.bias), m.ptr(r), m.ptr(y), self.relu)
        if algo == "direct":
            n.conv2d_direct(g, m.ptr(x), m.ptr(self.weight), *args, st)
        elif algo == "implicit_gemm":
            n.conv2d_implicit_gemm(g, m.ptr(x), m.ptr(self.weight), *args, st)
        elif algo == "im2col":
            per_image = n.conv2d_im2col_workspace(g, 1)
            # the CPU's workspace limit bounds the device workspace too (pycnn.set_workspace_limit)
            chunk = max(1, min(s.N, _C.get_workspace_limit() // max(4 * per_image, 1)))
            work = m.empty((per_image * chunk,))
            n.conv2d_im2col(g, m.ptr(x), m.ptr(self.weight), *args, m.ptr(work), chunk, st)
        elif algo in ("winograd_f2", "winograd_f4"):
            tile = 2 if algo == "winograd_f2" else 4
            U = self.winograd_weights(tile)
            work = m.empty((n.winograd_workspace(tile, g),))
            n.conv2d_winograd(tile, g, m.ptr(x), m.ptr(U), *args, m.ptr(work), st)
        else:
            raise ValueError(f"algo: {algo!r} has no CUDA kernel")

    def _autotune(self, s: ConvShape) -> str:
        key = (self.backend.device, s.key())
        best = _tuned.get(key)
        if best is None:
            m = self.backend.memory
            x = m.xp.zeros((s.N, s.C, s.H, s.W), m.xp.float32)
            y = m.empty(s.out_shape)
            times = {}
            for algo in registry.candidates(s, self.backend.device):
                self.run(algo, s, x, None, y)  # warm-up (and the Winograd transform)
                times[algo] = min(self.backend.time_ms(lambda a=algo: self.run(a, s, x, None, y)) for _ in range(3))
            best = min(times, key=times.get)
            _tuned[key] = best
        return best


def clear_tuning() -> None:
    _tuned.clear()


__all__ = ["DeviceConv", "geometry", "clear_tuning"]
