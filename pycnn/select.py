"""Algorithm choice for conv2d: one heuristic, an override, and an optional autotuner.

Override: PYCNN_CONV_ALGO=<name> forces an algorithm for every algo='auto' call.
Autotune: pycnn.autotune(True) (or PYCNN_AUTOTUNE=1) times the candidates once per layer shape
and remembers the winner (pycnn/tuning.py); the heuristic below is used otherwise.

The heuristic, from `python -m bench layers` (batch 1 and 8, 2 threads) on the development
machine, 2026-11-22 (docs/performance.md has the tables):
  * 3x3, stride 1, dilation 1, with >= 16 input channels per group -> Winograd. F4 was the
    fastest tile on every such lecture layer whose F4 tiling has at least 16 tiles (all maps of
    13x13 and up, and 7x7 at batch 8: ResNet 512@7 batch 8 F4 2.50 ms, F2 3.99 ms); with fewer
    tiles (7x7 at batch 1: 4 tiles) F2 won (ResNet 512@7: F2 0.64 ms, F4 1.60 ms). F6 won
    nowhere (its transforms cost more than the multiplications it saves at these sizes). With 16
    input channels (GoogLeNet's 5x5-branch 3x3s) F4 tied im2col at batch 1 and won by 1.5x at
    batch 8; Winograd beat im2col by 1.4-2.9x on every layer with 64+ channels.
    Inside the networks at batch 1 (fifth session, Graph.profile with the rule changed, 3
    rounds) F2 beat F4 on maps with exactly 16 F4 tiles (13x13 to 16x16): F4's transformed
    weights are 36/16 of F2's and stream from L3 for every image: ResNet-101 b1 -1.46 ms (its 23
    layer3 convs 256@14 0.74-0.75 -> 0.68 ms each), ResNet-34 -0.50, AlexNet (384@13) -0.45,
    GoogLeNet -0.15, ResNet-18 -0.13. With 25 tiles (AlphaGo's 19x19) F4 still won (+1.44 ms
    with F2), and with 32 (14x14 at batch 2) too (ResNet-50 b2 +0.29), so F4 needs > 16 tiles.
  * the direct kernel wins only when the layer has very few input channels per group (the first
    layers: C = 1 or 3) and an output at least 8 wide (it vectorizes along output columns):
    1.1-1.8x faster than im2col there, 8x slower on Kim's CNN (Wo = 1).
  * direct_oc (direct, vectorized over output channels) for strided layers with few output
    pixels in the whole batch: measured inside ResNet-50 (Graph.profile, weights cold as in a
    real run; 2026-11-22): 3x3 stride 2 to 7x7: batch 1 1.41 vs 2.39 ms (im2col), batch 8 9.9
    vs 12.5 ms; to 14x14 batch 1 1.19 vs 1.57, to 28x28 batch 1 1.32 vs 1.45; 1x1 stride 2 to
    7x7 batch 1 1.37 vs 1.95. It lost where N*Ho*Wo is larger (3x3 s2 to 14x14 at batch 8:
    9.5 vs 8.7; 1x1 s2 to 14x14 at batch 1: 1.35 vs 1.18) and on every large map (its input
    is re-read per 32-channel block and its transposing epilogue costs ~1 cycle per output).
    Since the fifth session (14-pixel tiles; at batch > 1 an image's input stays in L2 across a
    group of 32-channel blocks) it takes strided windows at any batch size: in the networks at batch
    8 (Graph.profile, rule changed, 3 rounds) ResNet-50 layer2.0.conv2 7.85 -> 7.10 ms,
    layer3.0.conv2 6.99 -> 7.01, ResNet-18 layer2.0/3.0.conv1 3.96 -> 3.35 and 3.50 -> 3.34,
    ResNet-34 -0.66 ms; cold alone 128->128 3x3/2 @56 b2 1.91 -> 1.48 ms, 64->128 b8 3.97 -> 3.12.
    Where an image's input does not fit L2 it is still re-read per kblock group: 128->256
    3x3/2 @112 b1 7.53 vs 6.63 ms (im2col), 64->128 @112 1.95 vs 1.91; so beyond 800 output
    pixels only layers whose per-image input is <= 2 MiB.
    At 3x3 stride 1 on 7x7 it tied Winograd F2 then (1.39 vs 1.33 ms); see the next rule for
    what changed. It also takes the first layers with >= 32 output channels (its (tap, channel)
    pairs run as one flat loop when C is small): ResNet/GoogLeNet conv1 7x7/2 3->64 batch 1 1.13 vs 1.34 ms (direct),
    batch 8 9.1 vs 9.2; AlexNet conv1 11x11/4 3->96 1.00 vs 1.08. With fewer outputs (LeNet 1->6,
    ConvNetJS 3->16) the 32-channel block is mostly padding and direct stays (0.023 vs 0.032 ms).
  * direct_oc for every layer (any kernel, any stride, not a first layer) with at most 64
    output pixels in the whole batch: ResNet's 7x7 layers and LeNet's/ConvNetJS's last convs at
    batch 1. Once direct_oc prefetched its next weight chunk (its weights come from memory
    there), it beat im2col and Winograd F2 on them: 1x1 512->2048 @7 0.45 ms vs 0.59 (im2col,
    weights cold), 3x3 512@7 0.89 vs 1.25 (F2, cold). Whole networks in one process, batch 1
    (2026-11-22, third session): ResNet-50 35.7 -> 34.1 ms, ResNet-18 13.2 -> 12.1, ResNet-34
    25.0 -> 23.3, GoogLeNet 13.1 -> 12.4, LeNet-5 70 -> 55 us, ConvNetJS 139 -> 131 us. Raising
    the limit to 196 (14x14 maps) lost again (ResNet-50 35.0, ResNet-18 12.7), and at batch 8
    (7x7 maps = 392 pixels) direct_oc for all 7x7 layers lost (ResNet-18 73.5 -> 83.3 ms).
  * direct_oc also for layers with at most 32 outputs per group on maps of at most 256 output
    pixels in the batch (LeNet conv2 6->16 @14: 9.5 vs 12.0 us with im2col, ConvNetJS conv2
    16->20 @16: 49 vs 55 us; PreparedConv calls, batch 1, 2026-11-22): im2col's GEMM has too
    few rows to pay for packing B. Windows larger than 1x1 only (fifth session): GoogLeNet's
    1x1 reductions 480->16 ... 528->32 @14 ran 0.060-0.067 ms each in the network (Graph.profile,
    batch 1) on direct_oc, 0.034-0.058 on im2col (GoogLeNet b1 10.40 -> 10.16 ms in that run).
  * direct_oc instead of Winograd for 3x3 layers with few input channels where the transforms
    and the 4x larger transformed weights (streamed from L3 at batch 1) are not paid back
    (fifth session, weights cold: 16 copies rotated): C <= 32 on <= 196 output pixels in the
    batch (GoogLeNet's 16->48 @14 0.032 -> 0.020 ms, 32->128 @14 0.057 -> 0.056; in the network
    24->64 @14 0.047 -> 0.036, 32->64 0.052 -> 0.046), and C <= 16 with <= 32 outputs at any
    size (16->32 @28 b1 0.047 -> 0.040, b8 0.246 -> 0.211, @56 0.154 -> 0.118). Not beyond:
    32->96 @28 0.113 (F4) vs 0.175, 32->32 @56 0.178 vs 0.243, 32->64 @14 b8 0.174 vs 0.250.
  * direct_oc for unpadded 1x1 layers with outputs of at most 64 pixels per image at any batch
    (7x7 at batch 8): im2col runs one GEMM per image, and 49 columns fill 64 (a 32-column panel
    and a 17-column one) while direct_oc's tiles span the whole 49-pixel map. PreparedConv
    calls, batch 8, 2 threads (fourth session): 512->2048 @7 2.79 vs 3.77 ms, 2048->512 @7 3.20
    vs 3.63, GoogLeNet's 832->384 @7 0.83 vs 1.00, 832->48 0.15 vs 0.16. Strided ones (ResNet's
    last downsample, 1024->2048 /2 to 7x7) run on a subsampled copy of x, as im2col does: batch
    8 5.93 vs 7.13 ms, batch 1 0.69 vs 0.89 (reading x strided instead: 10.0 ms at batch 8). To
    14x14 im2col stays ahead (512->1024 /2 b1 0.66 vs 0.71).
  * direct_oc for every other layer with a window larger than 1x1 and at most 32 outputs per
    group that Winograd does not take, at any size (the GEMM's few rows do not pay for packing
    R*S times x as B); since the ninth session the stride-1 ones are taken by the next rule
    first, so this one decides strided windows (at any size) only. PreparedConv calls, 2 threads (fourth session), direct_oc vs im2col:
    LeNet conv2 6->16 5x5 @14 b8 0.026 vs 0.047 ms, ConvNetJS conv2 16->20 5x5 @16 b8 0.177 vs
    0.209, conv3 20->20 5x5 @8 b8 0.056 vs 0.091, 16->20 5x5 @32 b8 0.68 vs 0.77, 16->32 3x3
    @56 0.12 vs 0.15 (Winograd's, kept for it); a tie at 16 outputs (24->16 3x3 @28 b4 0.139
    vs 0.136). Not for 1x1: GoogLeNet's 192->16 @28 b8 0.37 vs 0.25, 256->32 @28 b8 0.54 vs 0.48.
  * direct_oc for every stride-1 window larger than 1x1 that Winograd does not take, with more
    than 4 input channels per group (5x5 and 7x7 layers, 3x3 with few channels or dilation).
    The rule above this one was im2col until the ninth session (2026-11-23); since the 14-pixel
    tiles and the weight prefetch, direct_oc beat it on every such layer measured (PreparedConv
    calls, 8 weight copies rotated, 2 threads, im2col vs direct_oc): AlexNet 96->256 5x5 @27 b1
    3.04 vs 2.61 ms, b8 23.6 vs 21.3; AlexNet-torchvision 64->192 5x5 @27 b1 1.61 vs 1.31, b8
    11.7 vs 10.7; AlphaGo 48->192 5x5 @19 b1 0.64 vs 0.54, b8 4.84 vs 4.07; 64->64 5x5 @56 b1 2.24
    vs 1.96, b8 18.1 vs 15.3, @112 8.75 vs 8.11; 64->64 7x7 @56 4.07 vs 3.47; 32->64 7x7 @28 0.62
    vs 0.49; 8->128 3x3 @56 b8 2.12 vs 1.63; 12->64 3x3 @224 2.97 vs 2.76; dilated 3x3 64@28 d2
    0.25 vs 0.23, 64@28 d3 b8 2.10 vs 1.43; ties: 8->64 3x3 @56 0.150 vs 0.153, 16->33 5x5 @16
    b8 0.262 vs 0.272 (b1 0.060 vs 0.043). In the networks (g(x), alternating processes, old
    rule / new): AlexNet-torchvision b1 10.13 / 9.98 ms, b8 37.29 / 36.06; AlexNet b1 12.88 /
    12.73, b8 56.79 / 55.91; AlphaGo b8 34.62 / 33.68, but b1 5.25 / 5.37 (6 rounds; minima
    4.90 / 4.87): there conv1 gains 0.06 ms and the 3x3 layers after it lose about as much, a
    Winograd conv run right after a direct_oc conv taking ~6% longer than after an im2col one
    (0.38-0.39 vs 0.36-0.37 ms for AlphaGo's conv2; not when repeated alone). That traced to
    the per-thread workspace slot both kernels used (docs/performance.md, ninth session, item 7);
    giving direct_oc slots of its own evened the micro-test but not the networks. Since the
    tenth session direct_oc reads x in place and uses no such slot (AlphaGo b1 then 0.965 of
    the run before, one process).
  * im2col + SGEMM everywhere else (1x1 layers, large strided ones, few input channels).
"""
from __future__ import annotations

import os

DIRECT_MAX_CHANNELS = 4  # C/groups at or below this -> direct ...
DIRECT_MIN_WIDTH = 8  # ... when the output is at least this wide
WINOGRAD_MIN_CHANNELS = 16  # 3x3 stride-1 layers with at least this many C/groups -> Winograd
WINOGRAD_F4_MIN_TILES = 17  # F(4x4,3x3) when its tiling has this many tiles, else F(2x2,3x3)
DIRECT_OC_MIN_FIRST_K = 32  # first layers (few input channels) with this many outputs -> direct_oc
DIRECT_OC_MAX_PIXELS_ANY = 64  # any layer (not a first layer) with N*Ho*Wo at most this -> direct_oc
DIRECT_OC_FEW_K = 32  # layers with at most this many outputs per group ...
DIRECT_OC_FEW_K_MAX_PIXELS = 256  # ... and N*Ho*Wo at most this -> direct_oc
DIRECT_OC_FEW_C = 32  # 3x3 layers Winograd would take with at most this many C/groups ...
DIRECT_OC_FEW_C_MAX_PIXELS = 196  # ... and N*Ho*Wo at most this -> direct_oc ...
DIRECT_OC_FEWER_C = 16  # ... or with at most this many C/groups and DIRECT_OC_FEW_K outputs
DIRECT_OC_MAX_PIXELS = 800  # strided k>1 layers with N*Ho*Wo at most this -> direct_oc ...
DIRECT_OC_STRIDED_MAX_INPUT_BYTES = 2 << 20  # ... or with an image's input at most this (L2)
DIRECT_OC_POINTWISE_MAX_MAP = 64  # unpadded 1x1 layers with outputs of at most this many pixels -> direct_oc


def winograd_applies(shape) -> bool:
    """3x3, stride 1, dilation 1, and planes under 2^31 elements (Winograd's gathers use 32-bit
    offsets within a plane; every other kernel indexes with 64 bits)."""
    return (shape.R == 3 and shape.S == 3 and shape.stride == (1, 1) and shape.dilation == (1, 1)
            and shape.H * shape.W < 2**31 and shape.Ho * shape.Wo < 2**31)


def heuristic(shape) -> str:
    """The documented rule (no timing)."""
    cg = shape.C // shape.groups
    pixels = shape.N * shape.Ho * shape.Wo
    kg = shape.K // shape.groups
    if cg > DIRECT_MAX_CHANNELS and (pixels <= DIRECT_OC_MAX_PIXELS_ANY or (
            kg <= DIRECT_OC_FEW_K and pixels <= DIRECT_OC_FEW_K_MAX_PIXELS and shape.R * shape.S > 1)):
        return "direct_oc"
    if winograd_applies(shape) and cg >= WINOGRAD_MIN_CHANNELS:
        if cg <= DIRECT_OC_FEW_C and (pixels <= DIRECT_OC_FEW_C_MAX_PIXELS or (
                cg <= DIRECT_OC_FEWER_C and kg <= DIRECT_OC_FEW_K)):
            return "direct_oc"
        return winograd_tile(shape)
    if cg <= DIRECT_MAX_CHANNELS and shape.Wo >= DIRECT_MIN_WIDTH:
        return "direct_oc" if kg >= DIRECT_OC_MIN_FIRST_K else "direct"
    if shape.stride != (1, 1) and shape.R * shape.S > 1 and (
            pixels <= DIRECT_OC_MAX_PIXELS or shape.C * shape.H * shape.W * 4 <= DIRECT_OC_STRIDED_MAX_INPUT_BYTES):
        return "direct_oc"
    if cg > DIRECT_MAX_CHANNELS and shape.stride == (1, 1) and shape.R * shape.S > 1:
        return "direct_oc"
    if (cg > DIRECT_MAX_CHANNELS and shape.R == shape.S == 1 and shape.pad == (0, 0, 0, 0)
            and shape.Ho * shape.Wo <= DIRECT_OC_POINTWISE_MAX_MAP):
        return "direct_oc"
    if cg > DIRECT_MAX_CHANNELS and kg <= DIRECT_OC_FEW_K and shape.R * shape.S > 1:
        return "direct_oc"
    return "im2col"


def conv2d_algo(shape) -> str:
    forced = os.environ.get("PYCNN_CONV_ALGO")
    if forced:
        return forced
    from . import tuning

    if tuning.enabled():
        return tuning.choose(shape)
    return heuristic(shape)


def winograd_tile(shape) -> str:
    """Winograd tile for algo='winograd' (see the module docstring for the measurements)."""
    tiles_f4 = shape.N * -(-shape.Ho // 4) * -(-shape.Wo // 4)
    return "winograd_f4" if tiles_f4 >= WINOGRAD_F4_MIN_TILES else "winograd_f2"


def candidates(shape) -> list[str]:
    """Every algorithm that can run shape (what the autotuner times)."""
    out = ["im2col", "direct", "direct_oc"]
    if winograd_applies(shape):
        out += ["winograd_f2", "winograd_f4", "winograd_f6"]
    return out
