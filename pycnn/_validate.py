"""Argument checks shared by the functional API, prepared convolutions, the layers and the Graph.

A leaf module (imports only NumPy): every check raises TypeError or ValueError whose message
starts with the name of the argument, so the user sees which one is wrong.

Input rule (README "Input rule"): arrays are NumPy arrays, or anything NumPy converts, of a real
floating dtype; float32 is used as is, float16 and float64 are converted; integer, bool,
complex and object arrays raise TypeError; non-contiguous arrays are copied to C-contiguous.
"""

from __future__ import annotations

import numbers

import numpy as np

F32 = np.dtype(np.float32)
ACTIVATIONS = (None, "relu")


def nhwc_hint(shape, channels) -> str:
    """' (it looks like NHWC ...)' when a 4-D shape has `channels` last but not second, else ''."""
    if len(shape) == 4 and shape[3] == channels and shape[1] != channels:
        return (
            f" (it looks like NHWC, channels last; pycnn expects NCHW: pass "
            f"x.transpose(0, 3, 1, 2), shape {(shape[0], shape[3], shape[1], shape[2])})"
        )
    return ""


def as_array(a, name: str, ndim: int | None = None) -> np.ndarray:
    """Apply the input rule; returns a C-contiguous float32 ndarray."""
    if a is None:
        raise TypeError(f"{name}: expected an array, got None")
    if type(a) is not np.ndarray:
        if hasattr(a, "__cuda_array_interface__"):
            raise TypeError(
                f"{name}: a CUDA array needs the CUDA backend (pycnn._C_cuda), which is not "
                f"available here; copy it to the host first"
            )
        try:
            a = np.asarray(a)
        except Exception as e:  # noqa: BLE001 - report any conversion failure against the argument
            raise TypeError(f"{name}: cannot convert {type(a).__name__} to an array: {e}") from None
    dt = a.dtype
    if dt is not F32:
        if dt.kind != "f":
            raise TypeError(f"{name}: expected a floating-point array (float32), got dtype {dt}")
        a = a.astype(np.float32)
    if not a.flags.c_contiguous:
        a = np.ascontiguousarray(a)
    if ndim is not None and a.ndim != ndim:
        raise ValueError(f"{name}: expected {ndim} dimensions, got shape {a.shape}")
    return a


def as_int(v, name: str, minimum: int, maximum: int | None = None) -> int:
    if isinstance(v, bool) or not isinstance(v, numbers.Integral):
        raise TypeError(f"{name}: expected an int, got {v!r}")
    v = int(v)
    if v < minimum:
        raise ValueError(f"{name}: must be >= {minimum}, got {v}")
    if maximum is not None and v > maximum:
        raise ValueError(f"{name}: must be <= {maximum}, got {v}")
    return v


def as_pair(v, name: str, minimum: int) -> tuple[int, int]:
    if isinstance(v, (tuple, list)):
        if len(v) != 2:
            raise ValueError(f"{name}: expected an int or a pair, got {v!r}")
        return as_int(v[0], name, minimum), as_int(v[1], name, minimum)
    v = as_int(v, name, minimum)
    return v, v


def as_bool(v, name: str) -> bool:
    if not isinstance(v, (bool, np.bool_)):
        raise TypeError(f"{name}: expected a bool, got {v!r}")
    return bool(v)


def activation_flag(activation) -> bool:
    """True for 'relu', False for None; anything else raises."""
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation: expected None or 'relu', got {activation!r}")
    return activation == "relu"


def as_vector(b, name: str, n: int) -> np.ndarray | None:
    """None, or a float32 vector of length n."""
    if b is None:
        return None
    b = as_array(b, name)
    if b.ndim != 1 or b.shape[0] != n:
        raise ValueError(f"{name}: expected shape ({n},), got {b.shape}")
    return b


__all__ = [
    "F32",
    "ACTIVATIONS",
    "nhwc_hint",
    "as_array",
    "as_int",
    "as_pair",
    "as_bool",
    "activation_flag",
    "as_vector",
]
