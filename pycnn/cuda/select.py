"""The GPU's conv2d rule: which CUDA kernel algo='auto' runs for a shape (a pure function).

Derived from the kernels' structure, not yet from GPU timings (no GPU has run them; the H200
numbers of the gpu bench are to set these thresholds): the tiled kernels compute 128x128 output
tiles in steps of 8 along the reduction, so
  * a reduction of fewer than 32 terms (C/groups*R*S: RGB first layers, tiny channel counts) or
    fewer than 2 MFLOP in all leaves the tiles mostly idle: 'direct' (one thread per output);
  * 3x3, stride 1, dilation 1, groups 1 with at least 16 input and output channels: Winograd
    (F4, 4x fewer multiplies than direct, once the 6x6 transforms are amortized by 64+ channels
    on both sides; F2 below that);
  * everything else: 'implicit_gemm' (no workspace, unlike 'im2col').
pycnn.autotune(True) (or PYCNN_AUTOTUNE=1) times the candidates with CUDA events instead.
"""

from __future__ import annotations

from .._shapes import ConvShape


def choose(s: ConvShape) -> str:
    reduction = (s.C // s.groups) * s.R * s.S
    if reduction < 32 or s.flops < 2e6:
        return "direct"
    if (s.R, s.S) == (3, 3) and s.stride == (1, 1) and s.dilation == (1, 1) and s.groups == 1:
        if s.C >= 16 and s.K >= 16:
            return winograd_tile(s)
    return "implicit_gemm"


def winograd_tile(s: ConvShape) -> str:
    """The Winograd tile algo='winograd' runs."""
    return "winograd_f4" if min(s.C, s.K) >= 64 else "winograd_f2"


__all__ = ["choose", "winograd_tile"]
