"""What the binding passes that fuse steps into one call share (fuse_pw_dw, fuse_se, chunk_chains):
a tensor's producer, readers and size, which conv steps they may take, and the marker of a step
whose work a later fused step does (bind_plan leaves such steps out of the bound plan)."""

from __future__ import annotations

import numpy as np

from ..prepared import PreparedConv


class Produced:
    """A step whose work a later fused step does (fuse_pw_dw's 1x1, fuse_se's pool and convs):
    nothing to compute; bind_plan leaves it out of the bound plan."""


def producers_and_readers(steps) -> tuple:
    """({tensor: the index of the step making it}, {tensor: the indices of the steps reading it,
    in order}): what the passes ask of a tensor's neighbours."""
    producer = {s.output: i for i, s in enumerate(steps)}
    readers = {}
    for j, s in enumerate(steps):
        for t in s.inputs:
            readers.setdefault(t, []).append(j)
    return producer, readers


def nbytes(shape) -> int:
    """The bytes of a float32 tensor of this shape."""
    return 4 * int(np.prod(shape, dtype=np.int64))


def prepared_conv(step) -> bool:
    """A conv step with its own prepared weights and no max over its maps (a fused residual
    allowed): what the binding passes may bind anew or run inside another call."""
    return step.op == "conv2d" and isinstance(step.fn, PreparedConv) and not step.attrs.get("max_map")


def own_conv(step) -> bool:
    """A prepared conv step with one input (no fused residual): what a fused call can take over."""
    return prepared_conv(step) and len(step.inputs) == 1


def plain_1x1(shape) -> bool:
    """shape (a ConvShape) is a 1x1 conv, stride 1, unpadded, ungrouped."""
    return shape.R == shape.S == 1 and shape.stride == (1, 1) and shape.pad == (0, 0, 0, 0) and shape.groups == 1


__all__ = ["Produced", "own_conv", "plain_1x1", "prepared_conv", "producers_and_readers"]
