"""The GPU's conv2d rule: which CUDA kernel algo='auto' runs for a shape (a pure function).

Fitted to the H200 timings of every algorithm on the lecture's layers at batch 1 and 32
(bench/measured/h200_gpu_suite.json, from bench/gpu_check.sh; `python -m bench.gpu_rule` prints
the rule's pick against the fastest per layer). The tiled kernels compute 128x128 output tiles
(output channels x output pixels) in steps of 8 along the reduction C/groups*R*S, and the H200
has 132 multiprocessors, so:
  * a reduction under 32 terms, or under 2 MFLOP in all with a window of 9+ taps: 'direct'
    (tiles mostly idle; a tiny 1x1 reads its channels strided and goes to a GEMM);
  * 3x3, stride 1, dilation 1, groups 1, 16+ channels on both sides: Winograd, F4 where 64+
    channels on both sides amortize its 6x6 transforms and there are 1024+ output pixels in the
    batch (a 7x7 map at batch 1 has 4 F4 tiles per image: F2 measured 1.5x faster there);
  * a window of 9+ taps with at most 80k outputs: 'direct' (one thread per output, its taps
    contiguous; the GEMM tiles would be mostly empty: Kim's CNN and AlphaGo's 5x5 at batch 1,
    1.2-1.8x faster than the GEMMs);
  * a reduction of 192+ terms and 10+ per tile: 'im2col' (its SGEMM's double-buffered inner
    loop beats the implicit GEMM's gather when few tiles run long reductions: ResNet-50's and
    GoogLeNet's 1x1s at 7x7 and 14x14, 1.2-1.5x);
  * everything else: 'implicit_gemm' (no workspace).
pycnn.autotune(True) (or PYCNN_AUTOTUNE=1) times the candidates with CUDA events instead.
"""

from __future__ import annotations

from .._shapes import ConvShape

TILE = 128  # the SGEMM / implicit GEMM output tile, both sides


def choose(s: ConvShape) -> str:
    reduction = (s.C // s.groups) * s.R * s.S
    if reduction < 32 or (s.flops < 2e6 and s.R * s.S >= 9):
        return "direct"
    if (s.R, s.S) == (3, 3) and s.stride == (1, 1) and s.dilation == (1, 1) and s.groups == 1:
        if s.C >= 16 and s.K >= 16:
            return winograd_tile(s)
    pixels = s.N * s.Ho * s.Wo
    if s.R * s.S >= 9 and pixels * s.K <= 80_000:
        return "direct"
    tiles = -(-pixels // TILE) * -(-s.K // TILE)
    if reduction >= max(192, 10 * tiles):
        return "im2col"
    return "implicit_gemm"


def winograd_tile(s: ConvShape) -> str:
    """The Winograd tile algo='winograd' runs."""
    return "winograd_f4" if min(s.C, s.K) >= 64 and s.N * s.Ho * s.Wo >= 1024 else "winograd_f2"


__all__ = ["choose", "winograd_tile"]
