"""What a Graph step's kernel offers: the explicit interface between the operators
(pycnn/layers.py, pycnn/prepared.py) and the Graph's plan (pycnn/graph/).

A StepKernel is what an operator's kernel(attrs, params, algo) returns: callable on its inputs,
and bindable to one set of input shapes. A BoundCall is what bind returns: the kernel with the
geometry, algorithm and output shape fixed, called once per run with the inputs only. A bound
call that can write into a caller's array (a slice of a concat's output) says so with
writes_out = True and takes out=; one whose out= may also have its images further apart than an
image (a channel slice at batch > 1) says writes_strided_out = True, and one whose input may be
such a slice says reads_strided = True.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Optional, Protocol, runtime_checkable

NO_LAYOUT = (0, None)  # (layout bits, algorithm) of a step that reads and writes NCHW


@runtime_checkable
class BoundCall(Protocol):
    def __call__(self, *xs: Any) -> Any: ...


@runtime_checkable
class StepKernel(Protocol):
    def __call__(self, *xs: Any) -> Any:
        """The step on its inputs, any shapes its operator accepts (validated per call)."""

    def bind(self, in_shapes: list, out_shape: tuple, layout: tuple = NO_LAYOUT) -> BoundCall:
        """A call for inputs of exactly in_shapes (checked once by the Graph); layout: (bits,
        algorithm) from pycnn/layout.py, for the steps that read or write channel-blocked tensors."""

    def prepare_for(self, x_shape: tuple) -> Any:
        """Transform weights now for an input of x_shape (a Graph does it when it is built)."""

    def algo_for(self, x_shape: tuple) -> str:
        """What runs for an input of x_shape (Graph.profile's algorithm column)."""


def writes_out(call: BoundCall) -> bool:
    """Whether a bound call takes out= (the C++ bound convolutions do)."""
    return bool(getattr(call, "writes_out", False))


def writes_strided_out(call: BoundCall) -> bool:
    """Whether a bound call's out= may have strided images (blocked-y direct_oc and Winograd)."""
    return bool(getattr(call, "writes_strided_out", False))


def reads_strided(call: BoundCall) -> bool:
    """Whether a bound call takes an input with strided images (the blocked batch norm)."""
    return bool(getattr(call, "reads_strided", False))


class Kernel:
    """A StepKernel from a function: fn(*xs) per call; bind(in_shapes, out_shape) -> a faster call
    for fixed shapes (default: fn itself); no weights to prepare."""

    __slots__ = ("fn", "_bind", "op")

    def __init__(self, fn: Callable, bind: Optional[Callable] = None, op: str = ""):
        self.fn, self._bind, self.op = fn, bind, op

    def __call__(self, *xs):
        return self.fn(*xs)

    def bind(self, in_shapes, out_shape, layout=NO_LAYOUT):
        if self._bind is None:
            if layout[0]:
                raise ValueError(f"layout: {self.op or 'this step'} does not take channel-blocked tensors")
            return self.fn
        if layout[0]:
            return self._bind(in_shapes, out_shape, layout=layout)
        return self._bind(in_shapes, out_shape)

    def prepare_for(self, x_shape):
        return None

    def algo_for(self, x_shape):
        return self.op


__all__ = ["StepKernel", "BoundCall", "Kernel", "NO_LAYOUT", "writes_out", "writes_strided_out", "reads_strided"]
