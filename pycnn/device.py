"""The device layer: where an array lives, and which backend runs it.

NumPy arrays (and anything NumPy converts) live on the CPU. An object with
__cuda_array_interface__ (CuPy, Numba, PyTorch CUDA tensors) or a DLPack device of type CUDA
lives on 'cuda'. The functional API (pycnn/ops.py) runs CPU arrays itself and hands any other to
backend(device); a Graph binds its layers' kernels per device (Graph.to). The CPU is the only
backend built in here; pycnn/cuda registers 'cuda' (a GPU with CuPy) and 'cuda_emu' (the CUDA
kernels on the CPU emulator) with register().

A backend is an object with the functional ops of pycnn/ops.py under their names (conv2d,
max_pool2d, ..., taking that device's arrays) and graph_to(graph) -> the Graph on its device.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, Optional

import numpy as np

CPU = "cpu"
DEVICES = ("cpu", "cuda", "cuda_emu")  # the names pycnn knows; backends exist for some of them
_DLPACK_CUDA = (2, 3, 13)  # kDLCUDA, kDLCUDAHost, kDLCUDAManaged
_backends: dict = {}


def device_of(a: Any) -> str:
    """'cuda' for an array on a GPU, else 'cpu' (NumPy arrays, lists, scalars ...)."""
    if type(a) is np.ndarray:
        return CPU
    if hasattr(a, "__cuda_array_interface__"):
        return "cuda"
    dl = getattr(a, "__dlpack_device__", None)
    if dl is not None:
        try:
            kind = int(dl()[0])
        except Exception:  # noqa: BLE001 - an object whose DLPack query fails is not on a GPU we can use
            return CPU
        if kind in _DLPACK_CUDA:
            return "cuda"
    return CPU


def foreign(*arrays: Any) -> Optional[str]:
    """The first device other than the CPU that one of arrays (or of a list of them) lives on,
    or None."""
    for a in arrays:
        if a is None or type(a) is np.ndarray or isinstance(a, (int, float, str, bool)):
            continue
        if isinstance(a, (list, tuple)):
            d = foreign(*a)
            if d:
                return d
        elif device_of(a) != CPU:
            return device_of(a)
    return None


def routed(fn: Callable) -> Callable:
    """A functional op whose arrays may live elsewhere: a call with an argument on another device
    goes to that device's backend's function of the same name; CPU calls run fn."""
    name = fn.__name__

    @functools.wraps(fn)
    def call(*args, **kw):
        dev = foreign(*args, *kw.values())
        if dev:
            return getattr(backend(dev), name)(*args, **kw)
        return fn(*args, **kw)

    return call


def check(device: Any) -> str:
    """device as a known name (ValueError naming the known ones otherwise)."""
    if device not in DEVICES:
        raise ValueError(f"device: expected one of {list(DEVICES)}, got {device!r}")
    return device


def register(device: str, backend: Any) -> None:
    """Make backend run the functional ops (and Graph layers) for arrays on device."""
    _backends[check(device)] = backend


def available(device: str) -> bool:
    """Whether this build has a backend for device (the CPU always)."""
    return check(device) == CPU or device in _backends


def backend(device: str) -> Any:
    """The backend registered for device; RuntimeError if this build has none."""
    check(device)
    b = _backends.get(device)
    if b is None:
        from .cuda import why_not

        raise RuntimeError(
            f"device: no {device!r} backend here ({why_not(device)}); copy the arrays to the host (NumPy) "
            f"to run them on the CPU"
        )
    return b


__all__ = ["CPU", "DEVICES", "device_of", "foreign", "routed", "check", "register", "available", "backend"]
