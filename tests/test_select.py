"""Algorithm choice: the rule, the override, and the autotuner with its JSON cache (the policy of
pycnn/policy.py), all within the registry's algorithms."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import pycnn
from conftest import assert_close, conv_data
from pycnn import policy, registry, select, tuning
from pycnn.ops import ConvShape


def shape(N=1, C=64, H=56, W=56, K=64, R=3, S=3, stride=1, pad=1, groups=1):
    return ConvShape((N, C, H, W), (K, C // groups, R, S), stride, pad, 1, groups)


@pytest.mark.parametrize(
    "s, want",
    [
        (shape(), "winograd_f4"),
        (shape(C=512, H=7, W=7, K=512), "direct_oc"),  # 49 output pixels in the batch
        (shape(C=512, H=8, W=8, K=512, pad=0), "direct_oc"),  # 36
        (shape(C=512, H=9, W=9, K=512), "winograd_f2"),  # 81 pixels, 9 F4 tiles
        (shape(C=2048, H=7, W=7, K=512, R=1, S=1, pad=0), "direct_oc"),  # ResNet-50 layer4 1x1
        (shape(C=16, H=5, W=5, K=120, R=5, S=5, pad=0), "direct_oc"),  # LeNet conv3: 1 pixel
        (shape(C=4, H=7, W=7, K=64), "im2col"),  # few input channels: not direct_oc
        (shape(C=6, H=14, W=14, K=16, R=5, S=5, pad=0), "direct_oc"),  # LeNet conv2: 16 outputs
        (shape(C=16, H=16, W=16, K=20, R=5, S=5, pad=2), "winograd_f2"),  # ConvNetJS conv2: 20 of 32 lanes
        (shape(C=20, H=8, W=8, K=20, R=5, S=5, pad=2), "direct_oc"),  # ConvNetJS conv3: 16 F2 tiles
        (shape(N=8, C=20, H=8, W=8, K=20, R=5, S=5, pad=2), "winograd_f2"),  # ... b8: 32 F4 tiles, 10; 128 F2
        (shape(C=16, H=28, W=28, K=32, R=5, S=5, pad=2), "direct_oc"),  # GoogLeNet 3a's 5x5: whole vectors
        (shape(C=16, H=16, W=16, K=25, R=5, S=5, pad=2), "direct_oc"),  # 25 of 32 lanes: over 75%
        (shape(C=4, H=16, W=16, K=20, R=5, S=5, pad=2), "direct_oc"),  # Cg * Kg / (Cg + Kg) 3.3
        (shape(C=16, H=17, W=16, K=32, R=5, S=5, pad=2), "direct_oc"),  # 272 pixels, 5x5: few outputs
        (shape(N=8, C=6, H=14, W=14, K=16, R=5, S=5, pad=0), "direct_oc"),  # LeNet conv2 at batch 8
        (shape(N=8, C=192, H=28, W=28, K=16, R=1, S=1, pad=0), "im2col"),  # 1x1 on 784 pixels: the SGEMM
        (shape(N=8, C=192, H=14, W=14, K=16, R=1, S=1, pad=0), "direct_oc"),  # 1x1, 16 outputs, 196 pixels
        (shape(N=8, C=16, H=28, W=28, K=32), "direct_oc"),  # 3x3, few channels both ways
        (shape(N=8, C=16, H=28, W=28, K=33), "direct_oc"),  # 16 input channels: at any size
        (shape(N=8, C=16, H=14, W=14, K=48), "direct_oc"),  # GoogLeNet 4a 5x5-branch 3x3 at batch 8
        (shape(N=8, C=17, H=28, W=28, K=32), "direct_oc"),  # C*K/(C+K) = 11: transforms not paid back
        (shape(C=32, H=147, W=147, K=32), "direct_oc"),  # Inception v3's Conv2d_2a: 16, any size
        (shape(C=32, H=147, W=147, K=64), "direct_oc"),  # ... its Conv2d_2b: 21.3 (avx512: <= 26)
        (shape(N=8, C=33, H=28, W=28, K=33), "direct_oc"),  # 16.5
        (shape(N=8, C=128, H=56, W=56, K=32), "direct_oc"),  # DenseNet's 3x3s: 25.6
        (shape(C=256, H=56, W=56, K=32), "winograd_f4"),  # 28.4
        (shape(C=32, H=14, W=14, K=128), "direct_oc"),  # 196 pixels, 32 channels
        (shape(C=33, H=14, W=14, K=128), "direct_oc"),  # 26.2 on 196 pixels (avx512: small_map_direct_oc_max_ck)
        (shape(C=33, H=17, W=17, K=128), "winograd_f4"),  # 25 F4 tiles
        (shape(N=2, C=32, H=14, W=14, K=128), "direct_oc"),  # 392 pixels, but 25.6
        (shape(N=2, C=48, H=14, W=14, K=128), "winograd_f4"),  # 34.9, 32 tiles
        (shape(C=480, H=14, W=14, K=16, R=1, S=1, pad=0), "direct_oc"),  # 1x1, 16 outputs (avx512)
        (shape(C=192, H=19, W=19, K=1, R=1, S=1, pad=0), "im2col"),  # 1x1 to one output (AlphaGo's head)
        (shape(C=16, H=16, W=16, K=33, R=5, S=5, pad=2), "winograd_f2"),  # 33 of 48 lanes: F(2x2,5x5)
        (shape(C=16, H=16, W=16, K=48, R=5, S=5, pad=2), "direct_oc"),  # 48 outputs: stride-1 5x5
        (shape(C=96, H=27, W=27, K=256, R=5, S=5, pad=2), "winograd_f4"),  # AlexNet conv2: F(4x4,5x5)
        (shape(N=8, C=48, H=19, W=19, K=192, R=5, S=5, pad=2), "winograd_f4"),  # AlphaGo conv1
        (shape(C=48, H=35, W=35, K=64, R=5, S=5, pad=2), "winograd_f4"),  # Inception v3's 5x5s: 27.4
        (shape(C=32, H=14, W=14, K=128, R=5, S=5, pad=2), "winograd_f4"),  # 5x5 at 14x14: 16 tiles, 25.6
        (shape(C=16, H=14, W=14, K=48, R=5, S=5, pad=2), "direct_oc"),  # 5x5, 12
        (shape(N=8, C=16, H=14, W=14, K=48, R=5, S=5, pad=2), "winograd_f4"),  # ... at batch 8: 128 tiles
        (shape(C=48, H=7, W=7, K=128, R=5, S=5, pad=2), "direct_oc"),  # 5x5 at 7x7: 4 tiles
        (shape(N=4, C=48, H=7, W=7, K=128, R=5, S=5, pad=2), "winograd_f4"),  # 16 tiles
        (shape(N=8, C=16, H=16, W=16, K=20, R=5, S=5, pad=2), "winograd_f4"),  # ConvNetJS conv2 b8: 8.9
        (shape(N=7, C=16, H=16, W=16, K=32, R=5, S=5, pad=2), "direct_oc"),  # 112 tiles, 10.7
        (shape(N=8, C=16, H=16, W=16, K=32, R=5, S=5, pad=2), "winograd_f4"),  # 128 tiles
        (shape(N=7, C=16, H=16, W=16, K=20, R=5, S=5, pad=2), "winograd_f2"),  # 112 F4 tiles; 20 of 32 lanes
        (shape(C=96, H=27, W=27, K=256, R=5, S=5, stride=2, pad=2), "direct_oc"),  # strided: no Winograd
        (ConvShape((1, 160, 17, 17), (160, 160, 1, 7), 1, (0, 3), 1, 1), "winograd_f4"),  # Inception's 1x7: 80
        (ConvShape((8, 128, 17, 17), (192, 128, 7, 1), 1, (3, 0), 1, 1), "winograd_f4"),  # 7x1: 76.8
        (ConvShape((1, 128, 17, 17), (128, 128, 1, 7), 1, (0, 3), 1, 1), "direct_oc"),  # 64
        (ConvShape((1, 192, 17, 17), (192, 192, 1, 7), 2, (0, 3), 1, 1), "direct_oc"),  # strided
        (ConvShape((8, 384, 8, 8), (384, 384, 1, 3), 1, (0, 1), 1, 1), "winograd_f4"),  # Inception's 1x3 b8: 128 tiles
        (ConvShape((1, 384, 8, 8), (384, 384, 3, 1), 1, (1, 0), 1, 1), "direct_oc"),  # ... b1: 16 tiles
        (ConvShape((4, 300, 50, 1), (100, 300, 4, 1), 1, 0, 1, 1), "winograd_f4"),  # Kim's rows as channels: 40
        (ConvShape((2, 300, 50, 1), (100, 300, 5, 1), 1, 0, 1, 1), "direct_oc"),  # ... at batch 2: 24 tiles
        (ConvShape((1, 96, 27, 27), (256, 96, 5, 5), 1, 4, 2, 1), "direct_oc"),  # dilated: no Winograd
        (shape(C=64, K=64, R=7, S=7, pad=3), "direct_oc"),
        (ConvShape((1, 64, 28, 28), (64, 64, 3, 3), 1, 2, 2, 1), "direct_oc"),  # dilated: no Winograd
        (shape(C=4, H=56, W=56, K=64, R=5, S=5, pad=2), "direct_oc"),  # 4 channels, 56 wide: first layer
        (shape(C=4, H=7, W=7, K=64, R=5, S=5, pad=2), "im2col"),  # ... 7 wide: neither
        (shape(N=2, C=512, H=7, W=7, K=512), "winograd_f2"),  # 98 pixels, 8 F4 tiles
        (shape(N=8, C=512, H=7, W=7, K=512), "winograd_f4"),
        (shape(C=256, H=14, W=14, K=256), "winograd_f2"),  # 16 F4 tiles (batch 1): F2 (avx512)
        (shape(C=48, H=13, W=13, K=192), "direct_oc"),  # SqueezeNet's expand3x3 @13: 38.4 on 169 pixels
        (shape(C=64, H=13, W=13, K=256), "direct_oc"),  # ... 51.2
        (shape(C=96, H=14, W=14, K=208), "winograd_f2"),  # GoogLeNet 4b's 3x3: 65.7, above 56
        (shape(N=2, C=48, H=13, W=13, K=192), "winograd_f4"),  # 338 pixels: Winograd
        (shape(C=256, H=17, W=17, K=256), "winograd_f4"),  # 25
        (shape(C=256, H=11, W=11, K=256), "winograd_f2"),  # 9 F4 tiles
        (shape(N=2, C=256, H=14, W=14, K=256), "winograd_f4"),  # 32
        (shape(C=192, H=19, W=19, K=192), "winograd_f4"),  # AlphaGo: 25
        (shape(C=16), "direct_oc"),  # 16 input channels: ties F4 at batch 1 on 56x56, wins at batch 8
        (shape(C=8), "direct_oc"),  # 3x3 with 8 channels: no Winograd
        (shape(C=3, R=7, S=7, stride=2, pad=3), "direct_oc"),  # ResNet conv1: 64 outputs
        (shape(C=3, K=16, R=5, S=5, pad=2), "direct_oc"),  # ConvNetJS conv1: 16 outputs
        (shape(C=3, K=8, R=3, S=3), "direct"),  # stride 1, 8 outputs
        (shape(C=1, H=32, W=32, K=6, R=5, S=5, pad=0), "direct"),  # LeNet conv1: 6 outputs
        (shape(C=3, H=224, W=224, K=16, stride=2), "direct_oc"),  # MobileNet V3's first layer: strided
        (shape(C=3, H=224, W=224, K=8, stride=2), "direct_oc"),
        (shape(C=1, H=50, W=300, K=100, R=3, S=300, pad=0), "im2col"),
        (shape(C=64, R=1, S=1, pad=0), "im2col"),  # stride-1 1x1 on 56x56: the SGEMM (avx512)
        (shape(C=480, H=14, W=14, K=192, R=1, S=1, pad=0), "direct_oc"),  # 16+ outputs on 14x14 (avx512)
        (shape(C=48, H=14, W=14, K=288, R=1, S=1, pad=0), "direct_oc"),  # few inputs on 14x14
        (shape(C=48, H=28, W=28, K=288, R=1, S=1, pad=0), "im2col"),  # few inputs on 28x28
        (shape(stride=2), "direct_oc"),  # 28x28 output: 784 pixels
        (shape(N=2, stride=2), "direct_oc"),  # 1568 pixels: strided, any size
        (shape(N=8, C=128, H=56, W=56, K=128, stride=2), "direct_oc"),  # ResNet-50 layer2.0.conv2 b8
        (shape(N=8, C=128, H=112, W=112, K=256, stride=2), "im2col"),  # 6.4 MB per image: not in L2
        (shape(C=512, H=14, W=14, K=512, stride=2), "direct_oc"),
        (shape(N=8, C=512, H=14, W=14, K=512, stride=2), "direct_oc"),  # 392 pixels
        (shape(C=1024, H=14, W=14, K=2048, R=1, S=1, stride=2, pad=0), "direct_oc"),  # 49 pixels
        (shape(C=512, H=28, W=28, K=1024, R=1, S=1, stride=2, pad=0), "im2col"),  # 196 pixels
        (shape(N=8, C=2048, H=7, W=7, K=512, R=1, S=1, pad=0), "direct_oc"),  # 1x1 on a 49-pixel map
        (shape(N=8, C=832, H=8, W=8, K=48, R=1, S=1, pad=0), "direct_oc"),  # 64 pixels per image
        (shape(N=8, C=832, H=9, W=8, K=48, R=1, S=1, pad=0), "direct_oc"),  # 72 pixels, 48 outputs
        (shape(N=8, C=1024, H=14, W=14, K=2048, R=1, S=1, stride=2, pad=0), "direct_oc"),  # strided 1x1
        (shape(N=8, C=512, H=28, W=28, K=1024, R=1, S=1, stride=2, pad=0), "im2col"),  # to 14x14
        (shape(N=8, C=512, H=7, W=7, K=2048, R=1, S=1, pad=1), "im2col"),  # padded 1x1
        (shape(N=8, C=4, H=7, W=7, K=64, R=1, S=1, pad=0), "im2col"),  # few input channels
        (shape(N=8, C=64, H=56, W=56, K=128, R=1, S=1, stride=2, pad=0), "im2col"),  # 0.8 MB, but 56x56 in
        (shape(N=8, C=256, H=14, W=14, K=512, R=1, S=1, stride=2, pad=0), "direct_oc"),  # 14x14 in
        (shape(N=8, C=256, H=56, W=56, K=512, R=1, S=1, stride=2, pad=0), "im2col"),  # 3.2 MB per image
        (shape(N=8, C=64, H=56, W=56, K=256, R=1, S=1, pad=0), "im2col"),  # ResNet-50's expand 1x1
    ],
)
def test_heuristic(s, want):
    assert select.heuristic(s, "avx512") == want
    assert registry.CONV[want].supports(s), "the rule picked an algorithm that cannot run the shape"


@pytest.mark.parametrize(
    "s, want",
    [
        (shape(C=512, H=7, W=7, K=512), "winograd_f2"),  # ResNet's 3x3 512@7 at batch 1
        (shape(C=192, H=7, W=7, K=384), "winograd_f2"),  # GoogLeNet 5b's 3x3
        (shape(C=32, H=7, W=7, K=128), "direct_oc"),  # few channels: the transforms are not paid back
        (shape(C=2048, H=7, W=7, K=512, R=1, S=1, pad=0), "im2col"),  # 1M weights, 51M MACs: the SGEMM
        (shape(N=8, C=512, H=7, W=7, K=2048, R=1, S=1, pad=0), "im2col"),
        (shape(N=8, C=832, H=7, W=7, K=256, R=1, S=1, pad=0), "im2col"),  # 213K weights, 83M MACs
        (shape(N=8, C=832, H=7, W=7, K=160, R=1, S=1, pad=0), "im2col"),  # 133K weights, 52M MACs
        (shape(C=832, H=7, W=7, K=384, R=1, S=1, pad=0), "direct_oc"),  # b1: 16M MACs
        (shape(N=8, C=832, H=7, W=7, K=128, R=1, S=1, pad=0), "direct_oc"),  # 106K weights
        (shape(C=2048, H=7, W=7, K=512, R=1, S=1, pad=0, groups=2), "direct_oc"),  # grouped: not this rule
        (shape(C=2048, H=9, W=9, K=512, R=1, S=1, stride=2, pad=0), "direct_oc"),  # strided: not this rule
        (shape(C=160, H=7, W=7, K=320), "winograd_f2"),  # 3x3 with as many weights: not this rule
        (shape(N=8, C=64, H=56, W=56, K=256, R=1, S=1, pad=0), "im2col"),  # the SGEMM keeps 56x56 1x1s
        (shape(C=192, H=28, W=28, K=96, R=1, S=1, pad=0), "im2col"),  # and 28x28 ones
        (shape(N=8, C=512, H=7, W=7, K=512), "winograd_f4"),
        (shape(C=256, H=14, W=14, K=256), "winograd_f4"),
        (shape(C=48, H=13, W=13, K=192), "winograd_f4"),  # SqueezeNet's expand3x3: no small-map direct_oc on avx2
        (shape(C=32, H=147, W=147, K=64), "winograd_f4"),  # Cg * Kg / (Cg + Kg) 21.3: above avx2's 16
        (shape(N=8, C=128, H=56, W=56, K=32), "winograd_f4"),  # 25.6 (DenseNet's 3x3s)
        (shape(C=32, H=147, W=147, K=32), "direct_oc"),  # 16
        (shape(C=128, H=7, W=7, K=32), "direct_oc"),  # DenseNet's 3x3 at 7x7: Cg * Kg / (Cg + Kg) 25.6
        (shape(C=48, H=7, W=7, K=128), "direct_oc"),  # GoogLeNet 5b's 5x5 branch: 34.9
        (shape(C=96, H=7, W=7, K=192), "winograd_f2"),  # 64
        (shape(C=16, H=16, W=16, K=20, R=5, S=5, pad=2), "winograd_f2"),  # ConvNetJS conv2: 20 of 24 lanes
        (shape(C=16, H=16, W=16, K=22, R=5, S=5, pad=2), "direct_oc"),  # 22 of 24: over 85%
    ],
)
def test_heuristic_avx2(s, want):
    """Where the AVX2 rule differs from the AVX-512 one (measured on Zen 4 capped to AVX2; the
    pointwise SGEMM rule on the 512-bit Xeon capped to AVX2)."""
    assert select.heuristic(s, "avx2") == want
    assert registry.CONV[want].supports(s)


@pytest.mark.parametrize(
    "s, want",
    [
        (shape(C=512, H=7, W=7, K=512), "winograd_f2"),  # ResNet's 3x3 512@7 at batch 1
        (shape(C=192, H=7, W=7, K=384), "winograd_f2"),  # GoogLeNet 5b's 3x3
        (shape(C=160, H=7, W=7, K=320), "winograd_f2"),  # Cg * Kg / (Cg + Kg) 106.7
        (shape(C=128, H=7, W=7, K=128), "direct_oc"),  # 64
        (shape(C=48, H=7, W=7, K=128), "direct_oc"),  # GoogLeNet 5b's 5x5 branch: 34.9
        (shape(C=128, H=7, W=7, K=32), "direct_oc"),  # DenseNet's 3x3 at 7x7: 25.6
        (shape(C=32, H=7, W=7, K=128), "direct_oc"),  # few inputs
        (shape(C=128, H=56, W=56, K=32), "direct_oc"),  # DenseNet's 3x3s: 25.6, as avx512
        (shape(N=8, C=128, H=56, W=56, K=32), "direct_oc"),  # ... at batch 8
        (shape(C=32, H=27, W=27, K=128), "direct_oc"),  # SqueezeNet's expand3x3: 25.6
        (shape(C=32, H=147, W=147, K=64), "direct_oc"),  # Inception v3's Conv2d_2b: 21.3
        (shape(N=8, C=64, H=56, W=56, K=64), "winograd_f4"),  # ResNet's 3x3s: 32, above 26
        (shape(C=32, H=147, W=147, K=32), "direct_oc"),  # 16
        (shape(C=32, H=14, W=14, K=128), "direct_oc"),  # few inputs on a 196-pixel map
        (shape(C=128, H=14, W=14, K=32), "direct_oc"),  # DenseNet's 3x3 at 14x14: few outputs, 196 pixels
        (shape(N=8, C=512, H=7, W=7, K=512), "winograd_f4"),
        (shape(C=2048, H=7, W=7, K=512, R=1, S=1, pad=0), "direct_oc"),  # 1x1: as avx512
        (shape(N=8, C=64, H=56, W=56, K=256, R=1, S=1, pad=0), "direct_oc"),  # 1x1 on any map
        (shape(C=192, H=28, W=28, K=96, R=1, S=1, pad=0), "direct_oc"),
        (shape(C=24, H=56, W=56, K=144, R=1, S=1, pad=0), "direct_oc"),  # few inputs, any map
        (shape(N=8, C=64, H=56, W=56, K=128, R=1, S=1, stride=2, pad=0), "direct_oc"),  # 0.8 MB per image
    ],
)
def test_heuristic_avx512_256(s, want):
    """The avx512 kernels where AVX-512 FMAs run at the AVX2 rate (measured on Zen 4)."""
    assert select.heuristic(s, "avx512_256") == want
    assert registry.CONV[want].supports(s)
    # the two sets differ in when Winograd runs and in the 1x1s on maps over avx512's limit
    pw_max_map = select.ISA_RULES["avx512"]["pointwise_direct_oc_max_map"]
    if not want.startswith("winograd") and not (s.R == s.S == 1 and s.H * s.W > pw_max_map):
        assert select.heuristic(s, "avx512") == want


def test_f2_5x5_rule_is_off_where_unmeasured():
    # f2_5x5_max_lane_pct was not measured on the generic build (None): ConvNetJS's conv2 stays
    # on direct_oc there; avx512_256 takes avx512's
    s = shape(C=16, H=16, W=16, K=20, R=5, S=5, pad=2)
    assert select.ISA_RULES["generic"]["f2_5x5_max_lane_pct"] is None
    assert select.heuristic(s, "generic") == "direct_oc"
    assert select.heuristic(s, "avx512_256") == select.heuristic(s, "avx512") == "winograd_f2"


@pytest.mark.parametrize(
    "s, tiles",
    [
        (shape(N=2, H=9, W=10), 2 * 3 * 3),  # 3x3: 4x4 tiles
        (shape(H=8, W=8, R=1, S=7, pad=(0, 3)), 8 * 2),  # 1x7: one row per tile
        (shape(H=8, W=8, R=7, S=1, pad=(3, 0)), 2 * 8),  # 7x1: one column per tile
    ],
)
def test_winograd_tile_count_knows_the_one_dimensional_tiles(s, tiles):
    assert select.winograd_tile_count(s, 4) == tiles


def test_winograd_tile_counts_one_dimensional_tiles_for_the_f4_choice():
    # 18 F(1x4,1x7) tiles on a 9x8 map: F4 on every rule set (squares would count 6, under
    # WINOGRAD_F4_MIN_TILES)
    assert select.winograd_tile(shape(H=9, W=8, R=1, S=7, pad=(0, 3))) == "winograd_f4"
    assert select.winograd_tile(shape(H=8, W=8, R=3, S=3)) == "winograd_f2"


def test_avx512_256_differs_from_avx512_in_four_thresholds():
    a, b = select.ISA_RULES["avx512"], select.ISA_RULES["avx512_256"]
    assert {k for k in a if a[k] != b[k]} == {
        "small_map_f2_min_ck",
        "pointwise_direct_oc_max_map",
        "f4_min_tiles",
        "small_map_direct_oc_max_ck",
    }
    assert b["small_map_direct_oc_max_ck"] is None and a["small_map_direct_oc_max_ck"] > a["max_ck_per_tile"]
    assert a["f4_min_tiles"] == b["f4_min_tiles"] + 1 == select.WINOGRAD_F4_MIN_TILES + 1
    assert b["max_ck_per_tile"] == a["max_ck_per_tile"] > select.DIRECT_OC_MAX_CK_PER_TILE


def test_rule_follows_the_active_isa():
    s = shape(C=512, H=7, W=7, K=512)
    try:
        for isa in ("avx2", "avx512"):
            if isa in pycnn._config.ISAS[: pycnn._config.ISAS.index(pycnn._C.cpu_isa()) + 1]:
                pycnn._C.set_isa(isa)
                assert select.rule_set() == select.rule_set(isa)
                assert select.heuristic(s) == select.heuristic(s, select.rule_set(isa))
    finally:
        pycnn._C.set_isa(pycnn._C.cpu_isa())


def test_rule_set_names_the_fma_width():
    """avx512_256 only for the avx512 table on a CPU whose AVX-512 FMAs run at the AVX2 rate; the
    width is measured once and is 0 without AVX-512."""
    width = select.avx512_fma_width()
    assert width in (0, 256, 512)
    assert (width == 0) == (pycnn._C.cpu_isa() != "avx512")
    assert select.avx512_fma_width() == width  # cached
    assert select.rule_set("avx2") == "avx2" and select.rule_set("generic") == "generic"
    assert select.rule_set("avx512") == ("avx512_256" if width == 256 else "avx512")
    assert set(select.ISA_RULES) == {"generic", "avx2", "avx512", "avx512_256"}
    assert all(r.keys() == select.ISA_RULES["avx512"].keys() for r in select.ISA_RULES.values())


def test_override(monkeypatch, rng):
    monkeypatch.setattr(pycnn.config, "conv_algo", "direct")
    assert policy.choose(shape()) == "direct"
    monkeypatch.setattr(pycnn.config, "conv_algo", "winograd")  # a choice: the tile for the shape
    assert policy.choose(shape()) == "winograd_f4"
    monkeypatch.setattr(pycnn.config, "conv_algo", "fft")
    with pytest.raises(ValueError, match="algo"):
        policy.choose(shape())


def test_functional_choice_is_memoized_per_call_geometry(monkeypatch, rng):
    """pycnn.conv2d's validated geometry and choice are kept per (shapes, arguments, algo, the
    conv_algo override, rule set); a change of any of them chooses again, bad arguments still
    raise on every call, and list arguments (unhashable) still run."""
    policy.forget()
    x = rng.standard_normal((1, 16, 14, 14), dtype=np.float32)
    w = rng.standard_normal((48, 16, 3, 3), dtype=np.float32)
    s, algo = policy.conv_call(x.shape, w.shape, 1, 1, 1, 1, "auto")
    assert algo == select.heuristic(s) and policy.conv_call(x.shape, w.shape, 1, 1, 1, 1, "auto")[1] == algo
    assert policy.conv_call(x.shape, w.shape, 1, 1, 1, 1, "auto")[0] is s  # the kept one
    assert policy.conv_call(x.shape, w.shape, 2, 1, 1, 1, "auto")[0].Ho == 7  # another stride: another entry
    monkeypatch.setattr(pycnn.config, "conv_algo", "im2col")
    assert policy.conv_call(x.shape, w.shape, 1, 1, 1, 1, "auto")[1] == "im2col"
    monkeypatch.setattr(pycnn.config, "conv_algo", None)
    assert policy.conv_call(x.shape, w.shape, 1, 1, 1, 1, "winograd")[1] in ("winograd_f2", "winograd_f4")
    assert policy.conv_call((0, 16, 14, 14), w.shape, 1, 1, 1, 1, "auto")[1] is None  # empty batch: no choice
    for _ in range(2):
        with pytest.raises(ValueError, match="groups"):
            pycnn.conv2d(x, w, groups=3)
        with pytest.raises(ValueError, match="algo"):
            policy.conv_call(x.shape, w.shape, 1, 1, 1, 1, "fft")
    pycnn.conv2d(x, w, None, 1, 1)
    for bad in (True, 1.0):  # equal to 1 as keys; refused on every call all the same
        with pytest.raises(TypeError, match="stride"):
            pycnn.conv2d(x, w, None, bad, 1)
    ref = pycnn.conv2d(x, w, None, 1, 1, algo="reference")
    np.testing.assert_allclose(pycnn.conv2d(x, w, None, [1, 1], [1, 1]), ref, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(pycnn.conv2d(x, w, None, (1, 1), (1, 1)), ref, rtol=1e-4, atol=1e-4)
    # another rule set (the kernel table capped) chooses by its own rule: a depthwise conv on a
    # 56-wide map runs depthwise_c16 on avx2 and avx512, the per-plane kernel on generic
    dw = ((1, 32, 56, 56), (32, 1, 3, 3), 1, 1, 1, 32, "auto")
    here, active = policy.conv_call(*dw)[1], pycnn._C.get_isa()
    try:
        pycnn._C.set_isa("generic")
        s, algo = policy.conv_call(*dw)
        assert algo == select.heuristic(s, "generic") == "depthwise"
        assert (here == "depthwise") == (active == "generic")
        np.testing.assert_allclose(pycnn.conv2d(x, w, None, 1, 1), ref, rtol=1e-4, atol=1e-4)
    finally:
        pycnn._C.set_isa(active)
    assert policy.conv_call(*dw)[1] == here
    # a threshold edited at run time counts once forget() is called: 32 -> 32 @147 (Cg * Kg /
    # (Cg + Kg) 16) runs Winograd when max_ck_per_tile is under 16, direct_oc at 16 and above
    call = ((1, 32, 149, 149), (32, 32, 3, 3), 1, 0, 1, 1, "auto")
    before = policy.conv_call(*call)[1]
    assert before == "direct_oc"
    monkeypatch.setitem(select.ISA_RULES[select.rule_set()], "max_ck_per_tile", 8)
    assert policy.conv_call(*call)[1] == before  # memoized
    policy.forget()
    assert policy.conv_call(*call)[1] == "winograd_f4"
    policy.forget()


def test_environment_is_read_once_into_config(monkeypatch):
    c = pycnn.config.from_env(
        {
            "PYCNN_CONV_ALGO": "im2col",
            "PYCNN_AUTOTUNE": "1",
            "PYCNN_CACHE_DIR": "/tmp/x",
            "PYCNN_ISA": "avx2",
            "PYCNN_WORKSPACE_LIMIT": "1000",
        }
    )
    assert (c.conv_algo, c.autotune, str(c.cache_dir), c.isa, c.workspace_limit) == (
        "im2col",
        True,
        "/tmp/x",
        "avx2",
        1000,
    )
    with pytest.warns(UserWarning, match="PYCNN_ISA"):
        assert pycnn.config.from_env({"PYCNN_ISA": "avx1024"}).isa is None
    with pytest.warns(UserWarning, match="PYCNN_WORKSPACE_LIMIT"):
        assert pycnn.config.from_env({"PYCNN_WORKSPACE_LIMIT": "-3"}).workspace_limit is None
    assert pycnn.config.from_env({"XDG_CACHE_HOME": "/c"}).cache_dir.as_posix() == "/c/pycnn"


@pytest.mark.parametrize(
    "s",
    [
        shape(),
        shape(C=512, H=7, W=7, K=512),
        shape(C=3, H=224, W=224, K=64, R=7, S=7),
        shape(C=16, H=2**16, W=2**15 + 2),
        shape(R=1, S=1, pad=0, stride=2),
    ],
)
def test_rule_and_candidates_stay_in_the_registry(s):
    cands = registry.candidates(s)
    assert set(cands) <= set(registry.names(kind=registry.NATIVE)) and "im2col" in cands
    assert select.heuristic(s) in cands
    assert ("winograd_f4" in cands) == registry.CONV["winograd"].supports(s)


@pytest.fixture
def tuned(tmp_path, monkeypatch):
    monkeypatch.setattr(pycnn.config, "cache_dir", tmp_path)
    tuning.clear(memory_only=True)
    pycnn.autotune(True)
    yield tmp_path
    pycnn.autotune(False)
    tuning.clear(memory_only=True)


def test_autotune_picks_and_caches(tuned, rng, monkeypatch):
    x, w, b = conv_data(rng, 1, 32, 12, 12, 16, 32, 3, 3)
    ref = pycnn.conv2d(x, w, b, padding=1, algo="reference")
    y = pycnn.conv2d(x, w, b, padding=1)  # times the candidates
    assert_close(y, ref, atol=1e-4, rtol=1e-3)
    data = json.loads((tuned / "autotune.json").read_text())
    assert len(data) == 1
    (choice,) = data.values()
    assert choice in registry.candidates(shape(C=32, H=12, W=12, K=16))
    # a fresh process state reads the file instead of timing again
    tuning.clear(memory_only=True)
    calls = []
    monkeypatch.setattr(tuning, "time_candidates", lambda s, reps=5: calls.append(s) or {"im2col": 1.0})
    assert policy.choose(shape(C=32, H=12, W=12, K=16)) == choice
    assert calls == []
    # a new shape is timed
    policy.choose(shape(C=32, H=13, W=12, K=16))
    assert len(calls) == 1


def test_autotune_bad_argument():
    with pytest.raises(TypeError, match="enable"):
        pycnn.autotune("yes")


def test_autotune_unwritable_cache_still_works(tmp_path, monkeypatch, rng):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    monkeypatch.setattr(pycnn.config, "cache_dir", blocker / "sub")
    tuning.clear(memory_only=True)
    pycnn.autotune(True)
    try:
        x, w, b = conv_data(rng, 1, 8, 9, 9, 4, 8, 3, 3)
        assert pycnn.conv2d(x, w, b, padding=1).shape == (1, 4, 9, 9)
    finally:
        pycnn.autotune(False)
        tuning.clear(memory_only=True)


def test_huge_planes_never_choose_winograd():
    """A plane of 2^31+ elements is refused by Winograd (32-bit gather offsets), so auto uses
    direct_oc (64-bit indexing); the shape alone is checked here (allocating it would need 8 GiB)."""
    s = shape(C=16, H=2**16, W=2**15 + 2)
    assert not registry.CONV["winograd_f4"].supports(s)
    assert select.heuristic(s) == "direct_oc"
    with pytest.raises(ValueError, match="algo: 'winograd_f4' cannot run planes of 2"):
        policy.resolve("winograd_f4", s)


def test_environment_applied_at_import():
    """PYCNN_ISA and PYCNN_WORKSPACE_LIMIT reach the kernels through pycnn.config, once, at import."""
    env = dict(os.environ, PYCNN_ISA="generic", PYCNN_WORKSPACE_LIMIT="12345")
    r = subprocess.run(
        [sys.executable, "-c", "import pycnn; print(pycnn._C.get_isa(), pycnn.get_workspace_limit())"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.stdout.split() == ["generic", "12345"], r.stderr
