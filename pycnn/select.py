"""Algorithm choice for conv2d: one heuristic, overridable.

PYCNN_CONV_ALGO=<name> forces an algorithm for every algo='auto' call (the bench uses it).

The heuristic (thresholds measured on the 2-core development machine with
`python -m bench layers`, see docs/performance.md): the direct kernel wins when the reduction
per output (C/groups * R * S) is small, i.e. first layers with 1 or 3 input channels and
depthwise or narrow grouped convolutions, where the GEMM's K dimension is too short to amortize
packing; im2col + SGEMM wins everywhere else.
"""
from __future__ import annotations

import os

DIRECT_MAX_REDUCTION = 75  # Cg*R*S at or below this -> direct (LeNet conv1: 25, C=3 5x5: 75)


def conv2d_algo(shape) -> str:
    forced = os.environ.get("PYCNN_CONV_ALGO")
    if forced:
        return forced
    reduction = (shape.C // shape.groups) * shape.R * shape.S
    if reduction <= DIRECT_MAX_REDUCTION:
        return "direct"
    return "im2col"
