"""Algorithm choice for conv2d: one heuristic, overridable.

PYCNN_CONV_ALGO=<name> forces an algorithm for every algo='auto' call.

The heuristic, from `python -m bench layers --batch 1` on the 2-core development machine
(docs/performance.md has the table): the direct kernel wins only when the layer has very few
input channels per group (the first layers: LeNet conv1 C=1, AlexNet/GoogLeNet/ResNet conv1 and
ConvNetJS conv1 with C=3), where im2col's packing of B costs as much as the GEMM's few FMAs per
packed element; measured there direct was 1.1-1.8x faster than im2col. With 6 or more input
channels im2col + SGEMM won on every lecture layer (by 1.5-10x on 1x1 layers with 64+ channels).
"""
from __future__ import annotations

import os

DIRECT_MAX_CHANNELS = 4  # C/groups at or below this -> direct ...
DIRECT_MIN_WIDTH = 8  # ... when the output is at least this wide (the direct kernel vectorizes
#                       along output columns; Kim's CNN has Wo = 1 and runs 8x faster on im2col)


def conv2d_algo(shape) -> str:
    forced = os.environ.get("PYCNN_CONV_ALGO")
    if forced:
        return forced
    if shape.C // shape.groups <= DIRECT_MAX_CHANNELS and shape.Wo >= DIRECT_MIN_WIDTH:
        return "direct"
    return "im2col"


def winograd_tile(shape) -> str:
    """Winograd tile for algo='winograd': larger tiles do fewer multiplications per output
    (F2: 4, F4: 2.25, F6: 1.78 per output and tap... relative 2.25x, 4x, 5.06x fewer than direct)
    but waste more at the edges of small maps and lose accuracy. F6 when the map is at least 24
    wide (edge waste <= 25%), F4 from 8, F2 below."""
    size = min(shape.Ho, shape.Wo)
    if size >= 24:
        return "winograd_f6"
    if size >= 8:
        return "winograd_f4"
    return "winograd_f2"
