"""Where a CUDA backend's arrays live, and how their pointers and the stream reach the kernels.

'cuda': CuPy arrays on the GPU (anything with __cuda_array_interface__ or a CUDA DLPack device,
such as a PyTorch CUDA tensor, is taken without a copy), CuPy's current stream.
'cuda_emu': the CPU emulator of pycnn._C_cuda_emu, where NumPy arrays stand in for device memory
and there is one in-order stream (0).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._validate import as_array


class EmuMemory:
    """NumPy arrays as the emulator's device memory."""

    device = "cuda_emu"
    xp = np

    def asarray(self, a: Any, name: str, ndim: int | None = None) -> np.ndarray:
        return as_array(a, name, ndim)

    def vector(self, a: Any, name: str, n: int):
        if a is None:
            return None
        v = as_array(a, name)
        if v.shape != (n,):
            raise ValueError(f"{name}: expected shape ({n},), got {v.shape}")
        return v

    def empty(self, shape) -> np.ndarray:
        # NaN-filled, where a GPU's memory would hold whatever was there: an element a kernel
        # forgets to write shows as NaN in the emulator's tests.
        return np.full(shape, np.nan, np.float32)

    def from_host(self, a) -> np.ndarray:
        return np.ascontiguousarray(a, np.float32)

    def to_host(self, a) -> np.ndarray:
        return np.asarray(a)

    @staticmethod
    def ptr(a) -> int:
        return 0 if a is None else a.ctypes.data

    @staticmethod
    def stream() -> int:
        return 0


class CupyMemory:
    """CuPy arrays on the GPU, CuPy's current stream."""

    device = "cuda"

    def __init__(self) -> None:
        import cupy

        self.xp = cupy

    def asarray(self, a: Any, name: str, ndim: int | None = None):
        cp = self.xp
        if a is None:
            raise TypeError(f"{name}: expected an array, got None")
        if isinstance(a, np.ndarray) or not (
            isinstance(a, cp.ndarray) or hasattr(a, "__cuda_array_interface__") or hasattr(a, "__dlpack__")
        ):
            raise TypeError(
                f"{name}: expected an array on the GPU (CuPy, or anything with __cuda_array_interface__ or "
                f"DLPack), got {type(a).__name__}; other arguments are on the GPU: pass cupy.asarray({name})"
            )
        if not isinstance(a, cp.ndarray):
            a = cp.asarray(a) if hasattr(a, "__cuda_array_interface__") else cp.from_dlpack(a)
        if a.dtype != cp.float32:
            if a.dtype.kind != "f":
                raise TypeError(f"{name}: expected a floating-point array (float32), got dtype {a.dtype}")
            a = a.astype(cp.float32)
        a = cp.ascontiguousarray(a)
        if ndim is not None and a.ndim != ndim:
            raise ValueError(f"{name}: expected {ndim} dimensions, got shape {a.shape}")
        return a

    def vector(self, a: Any, name: str, n: int):
        if a is None:
            return None
        v = self.asarray(a, name)
        if v.shape != (n,):
            raise ValueError(f"{name}: expected shape ({n},), got {v.shape}")
        return v

    def empty(self, shape):
        return self.xp.empty(shape, self.xp.float32)

    def from_host(self, a):
        return self.xp.asarray(np.ascontiguousarray(a, np.float32))

    def to_host(self, a) -> np.ndarray:
        return self.xp.asnumpy(a)

    @staticmethod
    def ptr(a) -> int:
        return 0 if a is None else a.data.ptr

    def stream(self) -> int:
        return self.xp.cuda.get_current_stream().ptr


__all__ = ["EmuMemory", "CupyMemory"]
