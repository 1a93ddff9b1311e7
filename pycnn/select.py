"""The auto rule for conv2d: a pure function of the convolution's shape (no timing, no state).

pycnn/policy.py applies it for algo='auto' after the override (PYCNN_CONV_ALGO) and the
autotuner (pycnn.autotune). Its thresholds were measured with `python -m bench layers` and
Graph.profile inside the networks (2 threads, batch 1 and 8, weights cold as in a network),
on the AVX-512 development machine; docs/performance.md ("The auto rule") has the measurements
behind each one. In order, a convolution runs:
  0. depthwise when each group has one input channel (groups == C > 1: MobileNet, EfficientNet):
     depthwise_c16 (vectorized over channels) with one output channel per group, on maps at most
     ISA_RULES' depthwise_c16_max_width wide, else depthwise (per plane); grouped_c16 when
     each group has 2, 4 or 8 input and as many output channels (ResNeXt, RegNet), up to
     ISA_RULES' grouped_c16_max_group; per ISA (ISA_RULES' pointwise_sgemm_min_weights and
     _min_macs: avx2) im2col + SGEMM for stride-1 unpadded 1x1s with many weights and
     multiply-adds, ahead of every rule below;
  1. direct_oc when it has more than DIRECT_MAX_CHANNELS input channels per group and at most
     DIRECT_OC_MAX_PIXELS_ANY output pixels in the batch (ResNet's 7x7 maps at batch 1), or a
     window larger than 1x1 with at most DIRECT_OC_FEW_K outputs on DIRECT_OC_FEW_K_MAX_PIXELS;
  2. (the first two ahead of rule 1) Winograd F(4x4,5x5) for stride-1 5x5 layers with at least
     WINOGRAD_5X5_MIN_TILES tiles and Cg * Kg / (Cg + Kg) at least WINOGRAD_5X5_MIN_CK
     (WINOGRAD_5X5_MANY_TILES_MIN_CK with WINOGRAD_5X5_MANY_TILES tiles): 64 multiplies per 16
     outputs instead of 400 (AlexNet's, AlphaGo's and Inception v3's 5x5s 2.2-3.4x faster than
     direct_oc), or F(2x2,5x5) where direct_oc would leave more than a quarter of its vector lanes
     idle (ISA_RULES' f2_5x5_max_lane_pct: ConvNetJS's 20 outputs); F(1x4,1xr) / F(4x1,rx1) for
     stride-1 one-dimensional layers (r = 3, 4, 5, 7) with Cg * Kg / (Cg + Kg) >=
     WINOGRAD_1D_MIN_CK and WINOGRAD_1D_MIN_TILES tiles; 3x3 layers:
     Winograd when it runs the shape with >= WINOGRAD_MIN_CHANNELS input channels per group (F4
     with >= ISA_RULES' f4_min_tiles tiles, else F2), except direct_oc where the transforms are not
     paid back (few channels: DIRECT_OC_FEW_C, DIRECT_OC_FEWER_C; little GEMM work per tile:
     ISA_RULES' max_ck_per_tile, and on small maps its small_map_direct_oc_max_ck);
  3. first layers (<= DIRECT_MAX_CHANNELS input channels, output >= DIRECT_MIN_WIDTH wide):
     direct_oc when strided or with >= DIRECT_OC_MIN_FIRST_K outputs, else direct;
  4. direct_oc for strided windows larger than 1x1 with few outputs in the batch or a small
     input per image (ResNet's stride-2 3x3s), for every stride-1 window larger than 1x1 that
     Winograd does not take, for unpadded 1x1s on maps of <= DIRECT_OC_POINTWISE_MAX_MAP pixels
     or with at most DIRECT_OC_POINTWISE_MAX_C input channels or (per ISA:
     pointwise_direct_oc_min_k) at least that many outputs (stride 1), or strided ones reading
     at most DIRECT_OC_STRIDED_POINTWISE_MAX_INPUT_BYTES per image, those three on input maps of
     at most ISA_RULES' pointwise_direct_oc_max_map pixels,
     and for windows larger than 1x1 with few outputs;
  5. im2col + SGEMM otherwise (1x1 layers, large strided ones).
Every name it returns is an algorithm of pycnn/registry.py that runs the shape (tests/test_select.py).

Per ISA (ISA_RULES, keyed by the active kernel table's ISA, and avx512_256 for the avx512 table
on CPUs whose AVX-512 FMAs run at the AVX2 rate: rule_set()): the F4 tile threshold, the
Cg * Kg / (Cg + Kg) above which a Winograd-eligible 3x3 layer on a small map (rule 1's <=
DIRECT_OC_MAX_PIXELS_ANY pixels) runs F2 instead of direct_oc, the widest map depthwise_c16
takes, the largest group grouped_c16 takes, the Cg * Kg / (Cg + Kg) at or below which 3x3
layers run direct_oc rather than Winograd (at any size, and on maps of at most
DIRECT_OC_FEW_C_MAX_PIXELS pixels), and when 1x1 layers run direct_oc rather than the
SGEMM (the fewest outputs, the largest input map). Where each was measured: docs/performance.md
("The auto rule").
"""

from __future__ import annotations

import functools
from typing import Optional

from . import _C
from .registry import CONV
from .winograd import tile as _winograd_tile_shape

DIRECT_MAX_CHANNELS = 4  # C/groups at or below this -> direct ...
DIRECT_MIN_WIDTH = 8  # ... when the output is at least this wide
WINOGRAD_MIN_CHANNELS = 16  # 3x3 stride-1 layers with at least this many C/groups -> Winograd
WINOGRAD_F4_MIN_TILES = 16  # F(4x4,3x3) when its tiling has this many tiles, else F(2x2,3x3) (ISA_RULES)
DIRECT_OC_MIN_FIRST_K = 16  # stride-1 first layers (few input channels) with this many outputs -> direct_oc
DIRECT_OC_MAX_PIXELS_ANY = 64  # any layer (not a first layer) with N*Ho*Wo at most this -> direct_oc
DIRECT_OC_FEW_K = 32  # layers with at most this many outputs per group ...
DIRECT_OC_FEW_K_MAX_PIXELS = 256  # ... and N*Ho*Wo at most this -> direct_oc
DIRECT_OC_FEW_C = 32  # 3x3 layers Winograd would take with at most this many C/groups ...
DIRECT_OC_FEW_C_MAX_PIXELS = 196  # ... and N*Ho*Wo at most this -> direct_oc ...
DIRECT_OC_FEWER_C = 16  # ... or with at most this many C/groups, at any size ...
# ... or, at any size, with Cg * Kg / (Cg + Kg) at most this (ISA_RULES' max_ck_per_tile): per
# tile Winograd's GEMMs do Cg * Kg multiplies and its transforms work on Cg + Kg channels, so
# below it the transforms (and their trips through memory) are not paid back (Inception v3's
# 32 -> 32 at 147x147; with AVX-512 also DenseNet's 128 -> 32 and Inception's 32 -> 64: 25.6
# and 21.3).
DIRECT_OC_MAX_CK_PER_TILE = 16
# 5x5 stride-1 layers -> Winograd F(4x4,5x5) with at least WINOGRAD_5X5_MIN_TILES tiles in the batch
# and Cg * Kg / (Cg + Kg) >= WINOGRAD_5X5_MIN_CK, or with WINOGRAD_5X5_MANY_TILES tiles and >=
# WINOGRAD_5X5_MANY_TILES_MIN_CK (ConvNetJS's 16 -> 20 @16 at batch 8); else rule 1 and rule 4's
# direct_oc (16 -> 48 @14 and 48 -> 128 @7 at batch 1, the first layers). The same on
# every ISA: measured with the avx512 table on 256-bit FMA units, capped to avx2 and generic.
WINOGRAD_5X5_MIN_TILES = 16
WINOGRAD_5X5_MIN_CK = 16
WINOGRAD_5X5_MANY_TILES = 128
WINOGRAD_5X5_MANY_TILES_MIN_CK = 8
# 5x5 stride-1 layers F4 does not take run F(2x2,5x5) where direct_oc would leave many vector lanes
# idle: Kg at most ISA_RULES' f2_5x5_max_lane_pct percent of Kg rounded up to whole vectors of
# DIRECT_OC_LANES (ConvNetJS's 20 outputs fill 20 of 32 lanes with AVX-512, 20 of 24 with AVX2),
# with at least WINOGRAD_5X5_F2_MIN_TILES F2 tiles and Cg * Kg / (Cg + Kg) at least
# WINOGRAD_5X5_MANY_TILES_MIN_CK (its 16 -> 20 @16 at batch 1, 20 -> 20 @8 at batch 8; 20 -> 20 @8
# at batch 1, 16 F2 tiles, loses 2.3x).
WINOGRAD_5X5_F2_MIN_TILES = 64
DIRECT_OC_LANES = {"avx512": 16, "avx512_256": 16, "avx2": 8, "generic": 8}
# One-dimensional stride-1 layers (1 x r and r x 1, r = 3, 4, 5, 7) -> Winograd F(1x4,1xr) /
# F(4x1,rx1) (F(5, 4) for r = 4) with Cg * Kg / (Cg + Kg) at least WINOGRAD_1D_MIN_CK (Inception
# v3's 128 -> 192, 160- and 192-channel 1x7s; its 128 -> 128 ones, 64, stay on direct_oc) and at
# least WINOGRAD_1D_MIN_TILES tiles (its 384-channel 1x3 / 3x1 on 8x8 maps at batch 1, 16 tiles,
# tie with direct_oc; Kim's 3-, 4- and 5-row windows over 300-dimensional word vectors, as 300
# channels, lose at 10-12 tiles, tie at 20-24, win at 40-48). The same on every ISA: measured with
# the avx512 table on 256-bit FMA units and capped to avx2, the 1x7 threshold also on generic.
WINOGRAD_1D_MIN_CK = 70
WINOGRAD_1D_MIN_TILES = 32
WINOGRAD_1D_TAPS = (3, 4, 5, 7)  # the kernel lengths the rule takes (bench.layout_ab's winograd_1d_short: 7)
DIRECT_OC_MAX_PIXELS = 800  # strided k>1 layers with N*Ho*Wo at most this -> direct_oc ...
DIRECT_OC_STRIDED_MAX_INPUT_BYTES = 2 << 20  # ... or with an image's input at most this (L2)
DIRECT_OC_POINTWISE_MAX_MAP = 64  # unpadded 1x1 layers with outputs of at most this many pixels -> direct_oc
DIRECT_OC_POINTWISE_MAX_C = 48  # ... or stride-1 ones with at most this many input channels (B too shallow to pack)
DIRECT_OC_STRIDED_POINTWISE_MAX_INPUT_BYTES = 1 << 20  # ... or strided, with an image's input at most this

# The thresholds measured per ISA. small_map_f2_min_ck: Winograd-eligible layers with at most
# DIRECT_OC_MAX_PIXELS_ANY output pixels and Cg * Kg / (Cg + Kg) above this run F2 (rule 2) rather
# than direct_oc (rule 1); None: never (on 512-bit FMA units direct_oc runs them near the peak).
# depthwise_c16_max_width: depthwise convs with one output channel per group and output maps at
# most this wide (None: any) run depthwise_c16, the others depthwise (rule 0); SSE2's register
# transposes make the NCHW path of depthwise_c16 lose on wide maps. grouped_c16_max_group: grouped
# convs with C == K and 2, 4 .. this many channels per group run grouped_c16 (rule 0); the generic
# build's rotations (plain loops over 8 floats) lose to direct_oc at 8. pointwise_direct_oc_min_k:
# unpadded stride-1 1x1 convs with at least this many outputs per group run direct_oc (rule 4;
# None: only those DIRECT_OC_POINTWISE_MAX_C and _MAX_MAP send there): on the Zen 4's AVX-512
# direct_oc beats the SGEMM on every such lecture layer but AlphaGo's 1-output head (on 512-bit
# FMA units only to 14x14 maps: pointwise_direct_oc_max_map); capped to AVX2 the
# SGEMM keeps the 56x56 and 28x28 maps with 64+ outputs. max_ck_per_tile: DIRECT_OC_MAX_CK_PER_TILE
# per ISA (capped to AVX2, DenseNet's 128 -> 32 on direct_oc lost 0.92-0.94x). f4_min_tiles:
# WINOGRAD_F4_MIN_TILES per ISA: on 512-bit FMA units a 3x3 layer tiled into exactly 16 F4 tiles
# (13x13 and 14x14 maps at batch 1) runs F2, whose U is 16/36 of F4's and streams from L3 per
# call (ResNet-34 and -101 at batch 1 4-8% faster), where the Zen 4 (avx512_256, avx2) had F4
# ahead there.
# small_map_direct_oc_max_ck: Winograd-eligible 3x3 layers on at most DIRECT_OC_FEW_C_MAX_PIXELS
# output pixels in the batch (13x13 and 14x14 maps at batch 1: 16 F4 tiles) with Cg * Kg / (Cg +
# Kg) at most this run direct_oc (None: only max_ck_per_tile's). On 512-bit FMA units direct_oc
# beats both tiles there on SqueezeNet's 48 -> 192 (38.4) and ties them on 64 -> 256 (51.2), and in
# the network it also lets the squeeze 1x1 before them write the channel-blocked layout; from
# GoogLeNet's 96 -> 208 (65.7) up Winograd wins. Capped to AVX2, F4 wins both SqueezeNet layers.
# pointwise_direct_oc_max_map: unpadded 1x1 convs reading more than this many pixels per input
# channel run the SGEMM whatever the other pointwise rules say (DIRECT_OC_POINTWISE_MAX_C,
# pointwise_direct_oc_min_k, DIRECT_OC_STRIDED_POINTWISE_MAX_INPUT_BYTES; None: no limit). On
# 512-bit FMA units the SGEMM's 12x32 kernel runs 28x28 and larger NCHW maps 1.1-1.6x faster than
# direct_oc, shallow or strided alike; at 14x14 and below direct_oc keeps its lead. It only
# matters for NCHW inputs: a Graph's 1x1 convs that read the channel-blocked layout run direct_oc
# (pycnn/layout.py) whatever the rule. pointwise_sgemm_min_weights, _min_macs: unpadded stride-1
# 1x1 convs (groups 1) with at least this many weights (Cg * Kg) and multiply-adds (times N * Ho *
# Wo) run the SGEMM ahead of every direct_oc rule, the small-map ones included (None: never).
# Capped to AVX2 on the 512-bit Xeon the SGEMM ran ResNet-50's 7x7 1x1s (1M weights) 8-10%
# faster than direct_oc at batch 1 and 8 and GoogLeNet's 832 -> 160 .. 384 at batch 8 2-7%, while
# direct_oc kept 832 -> 384 at batch 1 and 832 -> 128 (106K weights); with AVX-512 direct_oc
# keeps them all.
# f2_5x5_max_lane_pct: the lane use at or below which the F(2x2,5x5) rule (at
# WINOGRAD_5X5_F2_MIN_TILES above) takes a 5x5 layer (None: never). Measured on a 512-bit Xeon
# (`python -m bench.algo_ab 1,16,16,K,5,1,2 --algos direct_oc,winograd_f2 --nchw`, F2 /
# direct_oc time): K = 20 (62.5%) 0.82-0.87, 24 (75%) 0.95, 33 (69%) 0.76, 25 (78%) 1.08, 40
# (83%) 0.99; capped to AVX2 K = 20 (83% of 24 lanes) 0.92. avx512_256 keeps avx512's (not
# measured on the Zen 4); the generic build was not measured.
ISA_RULES = {
    "avx512": {
        "f4_min_tiles": WINOGRAD_F4_MIN_TILES + 1,
        "small_map_f2_min_ck": None,
        "depthwise_c16_max_width": None,
        "grouped_c16_max_group": 8,
        "pointwise_direct_oc_min_k": 16,
        "pointwise_direct_oc_max_map": 196,
        "max_ck_per_tile": 26,
        "small_map_direct_oc_max_ck": 56,
        "pointwise_sgemm_min_weights": None,
        "pointwise_sgemm_min_macs": None,
        "f2_5x5_max_lane_pct": 75,
    },
    "avx2": {
        "f4_min_tiles": WINOGRAD_F4_MIN_TILES,
        "small_map_f2_min_ck": 48,
        "depthwise_c16_max_width": None,
        "grouped_c16_max_group": 8,
        "pointwise_direct_oc_min_k": None,
        "pointwise_direct_oc_max_map": None,
        "max_ck_per_tile": DIRECT_OC_MAX_CK_PER_TILE,
        "small_map_direct_oc_max_ck": None,
        "pointwise_sgemm_min_weights": 128_000,
        "pointwise_sgemm_min_macs": 40_000_000,
        "f2_5x5_max_lane_pct": 85,
    },
    "generic": {
        "f4_min_tiles": WINOGRAD_F4_MIN_TILES,
        "small_map_f2_min_ck": 48,
        "depthwise_c16_max_width": 14,
        "grouped_c16_max_group": 4,
        "pointwise_direct_oc_min_k": None,
        "pointwise_direct_oc_max_map": None,
        "max_ck_per_tile": DIRECT_OC_MAX_CK_PER_TILE,
        "small_map_direct_oc_max_ck": None,
        "pointwise_sgemm_min_weights": None,
        "pointwise_sgemm_min_macs": None,
        "f2_5x5_max_lane_pct": None,
    },
}

# avx512_256: the avx512 kernels on a CPU whose AVX-512 FMAs run on 256-bit units at the AVX2 rate
# (AMD Zen 4; avx512_fma_width), where direct_oc runs further from the peak than Winograd's GEMMs:
# avx512's thresholds but F2 on 7x7 maps with many channels (ResNet's 512@7 at batch 1), and
# direct_oc for the pointwise convs on any map (there it beat the SGEMM on the lecture's 56x56 and
# 28x28 1x1s, which the SGEMM wins on 512-bit units), and F4 from 16 tiles, without the small-map
# direct_oc rule (measured on 512-bit units and capped to AVX2 only, where F4 won). It keeps
# avx512's max_ck_per_tile (26: DenseNet's 128 -> 32, SqueezeNet's 32 -> 128, Inception's 32 -> 64
# on direct_oc): F4 beat direct_oc on them by a few percent while the VM's L3 held its V and M
# buffers and lost by up to 1.5x when it did not; direct_oc's time stays put.
ISA_RULES["avx512_256"] = {
    **ISA_RULES["avx512"],
    "small_map_f2_min_ck": 80,
    "pointwise_direct_oc_max_map": None,
    "f4_min_tiles": WINOGRAD_F4_MIN_TILES,
    "small_map_direct_oc_max_ck": None,
}


def rules(isa: Optional[str] = None) -> dict:
    """The thresholds of rule set isa (an ISA_RULES key; default: rule_set(), this CPU's for the
    active kernel table)."""
    return ISA_RULES[isa or rule_set()]


def rule_set(isa: Optional[str] = None) -> str:
    """The ISA_RULES key for kernel table isa (default: the active one, pycnn._C.get_isa()) on this
    CPU: avx512_256 where its AVX-512 FMAs run at the AVX2 rate."""
    isa = isa or _C.get_isa()
    return "avx512_256" if isa == "avx512" and avx512_fma_width() == 256 else isa


@functools.cache
def avx512_fma_width() -> int:
    """512 where this CPU's AVX-512 FMAs run at about twice its AVX2 rate, 256 where they run at
    the AVX2 rate (AMD Zen 4 executes them on 256-bit units; so do Xeons with one 512-bit FMA
    port), 0 without AVX-512. Measured once (pycnn._C.fma_peak, one thread, best of three runs of
    each table, ~3 ms): CPUID does not tell the FMA ports."""
    if _C.cpu_isa() != "avx512":
        return 0
    best = dict.fromkeys(("avx2", "avx512"), 0.0)
    for _ in range(3):
        for isa in best:
            best[isa] = max(best[isa], _C.fma_peak(1, 200_000, isa))
    return 512 if best["avx512"] > 1.5 * best["avx2"] else 256


def heuristic(shape, isa: Optional[str] = None) -> str:
    """The documented rule (no timing), with rule set isa (an ISA_RULES key; default: rule_set())."""
    isa = isa or rule_set()
    r = rules(isa)
    if shape.groups > 1 and CONV["depthwise"].supports(shape):
        wmax = r["depthwise_c16_max_width"]
        c16 = CONV["depthwise_c16"].supports(shape) and (wmax is None or shape.Wo <= wmax)
        return "depthwise_c16" if c16 else "depthwise"
    if CONV["grouped_c16"].supports(shape) and shape.C // shape.groups <= r["grouped_c16_max_group"]:
        return "grouped_c16"
    cg = shape.C // shape.groups
    pixels = shape.N * shape.Ho * shape.Wo
    kg = shape.K // shape.groups
    pw_min_k = r["pointwise_direct_oc_min_k"]
    pw_max_map = r["pointwise_direct_oc_max_map"]
    if shape.R == shape.S == 5 and CONV["winograd_f4"].supports(shape):
        tiles = winograd_tile_count(shape, 4)
        ck = cg * kg / (cg + kg)
        if tiles >= WINOGRAD_5X5_MIN_TILES and (
            ck >= WINOGRAD_5X5_MIN_CK or (tiles >= WINOGRAD_5X5_MANY_TILES and ck >= WINOGRAD_5X5_MANY_TILES_MIN_CK)
        ):
            return "winograd_f4"
        lane_pct, lanes = r["f2_5x5_max_lane_pct"], DIRECT_OC_LANES[isa]
        if (
            lane_pct is not None
            and ck >= WINOGRAD_5X5_MANY_TILES_MIN_CK
            and 100 * kg <= lane_pct * lanes * -(-kg // lanes)
            and winograd_tile_count(shape, 2) >= WINOGRAD_5X5_F2_MIN_TILES
            and CONV["winograd_f2"].supports(shape)
        ):
            return "winograd_f2"
    if 1 in (shape.R, shape.S) and shape.R * shape.S in WINOGRAD_1D_TAPS and CONV["winograd_f4"].supports(shape):
        if cg * kg >= WINOGRAD_1D_MIN_CK * (cg + kg) and winograd_tile_count(shape, 4) >= WINOGRAD_1D_MIN_TILES:
            return "winograd_f4"
    sg_w, sg_macs = r["pointwise_sgemm_min_weights"], r["pointwise_sgemm_min_macs"]
    if (
        sg_w is not None
        and shape.groups == 1
        and shape.R == shape.S == 1
        and shape.stride == (1, 1)
        and shape.pad == (0, 0, 0, 0)
        and cg * kg >= sg_w
        and cg * kg * pixels >= sg_macs
    ):
        return "im2col"
    winograd = shape.R == shape.S == 3 and CONV["winograd"].supports(shape) and cg >= WINOGRAD_MIN_CHANNELS
    f2_ck = r["small_map_f2_min_ck"]
    if (
        winograd
        and f2_ck is not None
        and pixels <= DIRECT_OC_MAX_PIXELS_ANY
        and cg > DIRECT_OC_FEW_C
        and cg * kg > f2_ck * (cg + kg)
    ):
        return "winograd_f2"
    if cg > DIRECT_MAX_CHANNELS and (
        pixels <= DIRECT_OC_MAX_PIXELS_ANY
        or (kg <= DIRECT_OC_FEW_K and pixels <= DIRECT_OC_FEW_K_MAX_PIXELS and shape.R * shape.S > 1)
    ):
        return "direct_oc"
    if winograd:
        # the Cg * Kg / (Cg + Kg) at or below which the transforms are not paid back: the set's
        # max_ck_per_tile, raised on small maps where it says so
        max_ck = r["max_ck_per_tile"]
        if r["small_map_direct_oc_max_ck"] is not None and pixels <= DIRECT_OC_FEW_C_MAX_PIXELS:
            max_ck = max(max_ck, r["small_map_direct_oc_max_ck"])
        if (
            cg <= DIRECT_OC_FEWER_C
            or cg * kg <= max_ck * (cg + kg)
            or (cg <= DIRECT_OC_FEW_C and pixels <= DIRECT_OC_FEW_C_MAX_PIXELS)
        ):
            return "direct_oc"
        return winograd_tile(shape, isa)
    if cg <= DIRECT_MAX_CHANNELS and shape.Wo >= DIRECT_MIN_WIDTH:
        return "direct_oc" if kg >= DIRECT_OC_MIN_FIRST_K or shape.stride != (1, 1) else "direct"
    if (
        shape.stride != (1, 1)
        and shape.R * shape.S > 1
        and (pixels <= DIRECT_OC_MAX_PIXELS or shape.C * shape.H * shape.W * 4 <= DIRECT_OC_STRIDED_MAX_INPUT_BYTES)
    ):
        return "direct_oc"
    if cg > DIRECT_MAX_CHANNELS and shape.stride == (1, 1) and shape.R * shape.S > 1:
        return "direct_oc"
    # the set's input map limit for the pointwise rules below but the <= 64-pixel one (else the SGEMM)
    pw_map_ok = pw_max_map is None or shape.H * shape.W <= pw_max_map
    if (
        cg > DIRECT_MAX_CHANNELS
        and shape.R == shape.S == 1
        and shape.pad == (0, 0, 0, 0)
        and (
            shape.Ho * shape.Wo <= DIRECT_OC_POINTWISE_MAX_MAP
            or (
                pw_map_ok
                and (
                    (shape.stride == (1, 1) and cg <= DIRECT_OC_POINTWISE_MAX_C)
                    or (shape.stride == (1, 1) and pw_min_k is not None and kg >= pw_min_k)
                    or (
                        shape.stride != (1, 1)
                        and shape.C * shape.H * shape.W * 4 <= DIRECT_OC_STRIDED_POINTWISE_MAX_INPUT_BYTES
                    )
                )
            )
        )
    ):
        return "direct_oc"
    if cg > DIRECT_MAX_CHANNELS and kg <= DIRECT_OC_FEW_K and shape.R * shape.S > 1:
        return "direct_oc"
    return "im2col"


def winograd_tile_count(shape, m: int) -> int:
    """Output tiles of Winograd tile size m over the batch (1 along a kernel axis of size 1: a 1x7
    layer tiles Ho x ceil(Wo / m))."""
    mh, mw = _winograd_tile_shape(m, shape.R, shape.S)
    return shape.N * -(-shape.Ho // mh) * -(-shape.Wo // mw)


def winograd_tile(shape, isa: Optional[str] = None) -> str:
    """The Winograd tile for algo='winograd' (and for rule 2): F4 where it takes the kernel and its
    tiling has enough tiles, else F2."""
    f4 = winograd_tile_count(shape, 4) >= rules(isa)["f4_min_tiles"] and CONV["winograd_f4"].supports(shape)
    return "winograd_f4" if f4 else "winograd_f2"
