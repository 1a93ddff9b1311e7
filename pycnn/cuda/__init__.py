"""The CUDA side of pycnn: backends for the device layer (pycnn/device.py).

'cuda_emu' is registered whenever pycnn._C_cuda_emu was built (every build): the CUDA kernels
compiled against the CPU emulator of kernels/cuda/emu, NumPy arrays standing in for device
memory. 'cuda' is registered when pycnn._C_cuda was built, a GPU is visible and CuPy is
installed; CuPy is imported on first use, not at `import pycnn`.
"""

from __future__ import annotations

import importlib.util

from .. import device as _device
from .backend import CudaBackend
from .memory import CupyMemory, EmuMemory


class _LazyBackend:
    """The 'cuda' backend, built (CuPy imported) on first use."""

    def __init__(self, native) -> None:
        self._native = native
        self._real = None

    def __getattr__(self, name):
        if self._real is None:
            self._real = CudaBackend(self._native, CupyMemory())
        return getattr(self._real, name)


def _register() -> None:
    try:
        from .. import _C_cuda_emu
    except ImportError:  # built with -DPYCNN_CUDA_EMU=OFF (the sanitizer build)
        _C_cuda_emu = None
    if _C_cuda_emu is not None:
        _device.register("cuda_emu", CudaBackend(_C_cuda_emu, EmuMemory()))
    try:
        from .. import _C_cuda
    except ImportError:  # no CUDA compiler at build time
        return
    if _C_cuda.device_count() > 0 and importlib.util.find_spec("cupy") is not None:
        _device.register("cuda", _LazyBackend(_C_cuda))


def why_not(device: str) -> str:
    """Why this build or machine has no backend for device ('' when it has one)."""
    if _device.available(device):
        return ""
    if device == "cuda_emu":
        return "pycnn._C_cuda_emu was not built (-DPYCNN_CUDA_EMU=OFF)"
    try:
        from .. import _C_cuda
    except ImportError:
        return "pycnn._C_cuda was not built (no CUDA compiler at build time)"
    if _C_cuda.device_count() == 0:
        return "no CUDA device on this machine"
    return "CuPy is not installed (pip install 'pycnn[cuda]')"


_register()

__all__ = ["CudaBackend", "why_not"]
