"""The channel-blocked grouped convolution grouped_c16 (2, 4 or 8 input and output channels per
group, C == K: ResNeXt's and RegNet's grouped 3x3s) on every ISA path against the float64
reference: each group size, strides, dilation, asymmetric padding, every output width, NCHW and
channel-blocked tensors, partial channel blocks, bias / residual / ReLU, NaN and Inf; the auto rule
and the Graph's layout pass that hand it these convs."""

import numpy as np
import pytest
from test_conv2d import _ref as conv_ref

import pycnn
from conftest import assert_close, blk, conv_data, conv_poisoned, unblk
from pycnn import layout
from pycnn._shapes import ConvShape

GROUP_SIZES = [2, 4, 8]

# N, C, H, W, R, S, stride, padding, dilation
CASES = [
    (1, 32, 13, 17, 3, 3, 1, 1, 1),  # ResNeXt's 3x3
    (2, 32, 14, 14, 3, 3, 2, 1, 1),  # its stride-2 3x3 on an even map
    (1, 48, 9, 30, 5, 5, 2, 2, 1),  # 5x5 stride 2: pixel blocks and a tail
    (1, 16, 7, 7, 7, 7, 1, 3, 1),  # 7x7 on a map as wide as the kernel
    (2, 32, 11, 12, 3, 3, 1, 2, 2),  # dilated
    (1, 16, 1, 1, 3, 3, 1, 1, 1),  # every tap but the centre reads padding
    (1, 16, 5, 40, 3, 3, 3, 0, 1),  # stride 3, no padding
    (3, 16, 9, 11, 3, 5, (2, 1), (1, 2), (1, 2)),  # unequal windows, strides, dilations
    (1, 32, 6, 9, 1, 1, 1, 0, 1),  # 1x1 grouped (ShuffleNet V1's)
    (1, 16, 150, 9, 3, 3, 1, 1, 1),  # more rows than one band holds
]


def _ref(x, w, b, stride, padding, dilation, groups, act=None, residual=None):
    y = conv_ref(x, w, b, stride, padding, dilation, groups)  # float64
    if residual is not None:
        y = y + residual
    return np.maximum(y, 0) if act == "relu" else y


@pytest.mark.parametrize("G", GROUP_SIZES)
@pytest.mark.parametrize("case", CASES, ids=lambda c: "x".join(map(str, c[:6])))
def test_grouped_c16_matches_the_reference_every_isa(case, G, isa, rng):
    """NCHW in and out, the output poisoned with NaN (an element the kernel skips fails)."""
    N, C, H, W, R, S, stride, pad, dil = case
    x, w, b = conv_data(rng, N, C, H, W, C, G, R, S)
    for relu in (False, True):
        y = conv_poisoned(x, w, b, stride, pad, dil, C // G, "grouped_c16", relu)
        assert_close(y, _ref(x, w, b, stride, pad, dil, C // G, "relu" if relu else None), what=f"{isa} relu={relu}")
    y = pycnn.conv2d(x, w, None, stride, pad, dil, C // G, algo="grouped_c16")
    assert_close(y, _ref(x, w, None, stride, pad, dil, C // G), what=f"{isa} no bias")


@pytest.mark.parametrize("G", GROUP_SIZES)
@pytest.mark.parametrize("bits", range(8))
def test_grouped_c16_layouts_every_isa(bits, G, isa, rng):
    """x, y and the residual each NCHW16c or NCHW (layout bits 1, 2, 4), with and without ReLU
    and residual, at stride 1 and 2; the output poisoned with NaN."""
    for N, C, H, W, R, stride, pad in ((2, 32, 13, 17, 3, 1, 1), (1, 48, 14, 30, 3, 2, 1), (1, 16, 9, 9, 5, 1, 2)):
        x, w, b = conv_data(rng, N, C, H, W, C, G, R, R)
        s = ConvShape(x.shape, w.shape, stride, pad, 1, C // G)
        res = rng.standard_normal((N, C, s.Ho, s.Wo), dtype=np.float32)
        for relu, with_res in ((False, False), (True, True), (True, False)):
            act = "relu" if relu else None
            conv = pycnn.prepare_conv(
                w, b, stride=stride, padding=pad, groups=C // G, algo="grouped_c16", activation=act
            )
            call = conv.bind([x.shape], None, layout=(bits, "grouped_c16"))
            out = np.full((N, C // 16, s.Ho, s.Wo, 16) if bits & 2 else (N, C, s.Ho, s.Wo), np.nan, np.float32)
            r = (blk(res) if bits & 4 else res) if with_res else None
            call(blk(x) if bits & 1 else x, r, out)
            got = unblk(out) if bits & 2 else out
            want = _ref(x, w, b, stride, pad, 1, C // G, act, res if with_res else None)
            assert_close(got, want, what=f"{isa} {(N, C, H, W, R, stride)} relu={relu} res={with_res}")


@pytest.mark.parametrize("G", GROUP_SIZES)
@pytest.mark.parametrize("R, stride", [(3, 1), (3, 2), (5, 2)])
def test_grouped_c16_every_output_width_every_isa(R, stride, G, isa, rng):
    """Output widths 1 to 17 (full register blocks, then every tail size), on the input-reusing
    stride-1 and stride-2 paths and the general one (dilated), strided rows wide enough to be read
    in place; blocked tensors in and out, the output poisoned with NaN."""
    for Wo in range(1, 18):
        for dil in (1, 2):
            W = (Wo - 1) * stride + 1  # padding R // 2 * dil keeps Wo columns
            x, w, b = conv_data(rng, 1, 32, 4, W, 32, G, R, R)
            pad = R // 2 * dil
            conv = pycnn.prepare_conv(
                w, b, stride=stride, padding=pad, dilation=dil, groups=32 // G, algo="grouped_c16"
            )
            s = ConvShape(x.shape, w.shape, stride, pad, dil, 32 // G)
            assert s.Wo == Wo
            out = np.full((1, 2, s.Ho, Wo, 16), np.nan, np.float32)
            conv.bind([x.shape], None, layout=(3, "grouped_c16"))(blk(x), None, out)
            assert_close(unblk(out), _ref(x, w, b, stride, pad, dil, 32 // G), what=f"{isa} Wo={Wo} dil={dil}")


@pytest.mark.parametrize("C, G", [(8, 4), (24, 8), (40, 8), (12, 4), (20, 2), (104, 8)])
def test_grouped_c16_channels_not_a_multiple_of_16_every_isa(C, G, isa, rng):
    """NCHW tensors with a partial last block (RegNetY's 104 channels in groups of 8): its extra
    lanes are whole groups of zeros, computed and never stored."""
    for H, W, stride in ((7, 7, 1), (14, 13, 2)):
        x, w, b = conv_data(rng, 2, C, H, W, C, G, 3, 3)
        s = ConvShape(x.shape, w.shape, stride, 1, 1, C // G)
        r = rng.standard_normal((2, C, s.Ho, s.Wo), dtype=np.float32)
        y = conv_poisoned(x, w, b, stride, 1, 1, C // G, "grouped_c16", True)
        assert_close(y, _ref(x, w, b, stride, 1, 1, C // G, "relu"), what=isa)
        p = pycnn.prepare_conv(w, b, stride=stride, padding=1, groups=C // G, algo="grouped_c16")
        assert_close(p(x, residual=r), _ref(x, w, b, stride, 1, 1, C // G, None, r), what=isa)


def test_grouped_c16_weights_pair_each_lane_with_its_own_group():
    """One nonzero weight per output channel, each reading a different input channel of its group
    (w[k][(k + 1) % G]): the result is that input channel shifted, so a weight stored for the wrong
    rotation or lane shows up as a wrong channel."""
    rng = np.random.default_rng(1)
    for G in GROUP_SIZES:
        C = 32
        x = rng.standard_normal((1, C, 5, 6), dtype=np.float32)
        w = np.zeros((C, G, 1, 1), np.float32)
        for k in range(C):
            w[k, (k + 1) % G, 0, 0] = k + 1.0
        y = pycnn.conv2d(x, w, groups=C // G, algo="grouped_c16")
        for k in range(C):
            src = k // G * G + (k + 1) % G
            np.testing.assert_array_equal(y[0, k], (k + 1.0) * x[0, src])


def test_grouped_c16_refuses_what_it_cannot_run():
    x = np.zeros((1, 32, 8, 8), np.float32)
    for w, groups in (
        (np.ones((32, 16, 3, 3), np.float32), 2),  # 16 channels per group
        (np.ones((32, 1, 3, 3), np.float32), 32),  # depthwise
        (np.ones((64, 4, 3, 3), np.float32), 8),  # K != C
        (np.ones((32, 32, 3, 3), np.float32), 1),  # dense
    ):
        with pytest.raises(ValueError, match="algo: 'grouped_c16' needs in_channels == out_channels with 2, 4 or 8"):
            pycnn.conv2d(x, w, padding=1, groups=groups, algo="grouped_c16")
    w = np.ones((24, 8, 3, 3), np.float32)
    with pytest.raises(ValueError, match="layout"):  # 24 channels: no whole 16-channel blocks
        pycnn.prepare_conv(w, padding=1, groups=3, algo="grouped_c16").bind(
            [(1, 24, 8, 8)], None, layout=(layout.X_BLOCKED, "grouped_c16")
        )
    w = np.ones((32, 4, 3, 3), np.float32)
    call = pycnn.prepare_conv(w, padding=1, groups=8, algo="grouped_c16").bind(
        [(1, 32, 8, 8)], None, layout=(layout.X_BLOCKED | layout.Y_BLOCKED, "grouped_c16")
    )
    with pytest.raises(ValueError, match="x: expected shape"):
        call(np.zeros((1, 32, 8, 8), np.float32))


def test_grouped_c16_nan_and_inf_propagate_only_through_their_groups(rng):
    """A NaN in one input channel reaches the G output channels of its group over its 3x3
    neighbourhood, nothing else; likewise an Inf (weights positive, so no Inf - Inf)."""
    G = 4
    x, w, b = conv_data(rng, 1, 16, 9, 12, 16, G, 3, 3)
    x[0, 5, 4, 5] = np.nan  # group 1 (channels 4..7)
    x[0, 8, 0, 0] = np.inf  # group 2 (channels 8..11)
    w = np.abs(w)
    call = pycnn.prepare_conv(w, b, padding=1, groups=16 // G, algo="grouped_c16").bind(
        [x.shape], None, layout=(layout.X_BLOCKED | layout.Y_BLOCKED, "grouped_c16")
    )
    y = unblk(call(blk(x)))
    assert np.isnan(y[0, 4:8, 3:6, 4:7]).all() and np.isnan(y).sum() == 4 * 9
    assert np.isposinf(y[0, 8:12, :2, :2]).all() and np.isinf(y).sum() == 4 * 4


def test_auto_picks_grouped_c16_for_small_groups():
    """ResNeXt-50's grouped 3x3s with 4 and 8 channels per group and RegNetY's groups of 8 run
    grouped_c16 on AVX-512 and AVX2, groups of 4 on the generic build too (its rotations lose to
    direct_oc at 8); 16 or more channels per group stay with the dense kernels."""
    g4 = ConvShape((1, 128, 56, 56), (128, 4, 3, 3), 1, 1, 1, 32)
    g8 = (
        ConvShape((8, 256, 56, 56), (256, 8, 3, 3), 2, 1, 1, 32),
        ConvShape((1, 104, 28, 28), (104, 8, 3, 3), 1, 1, 1, 13),
    )
    g16 = ConvShape((1, 512, 14, 14), (512, 16, 3, 3), 1, 1, 1, 32)
    for isa in ("avx512", "avx2", "generic"):
        assert pycnn.select.heuristic(g4, isa) == "grouped_c16"
        for shape in g8:
            assert (pycnn.select.heuristic(shape, isa) == "grouped_c16") == (isa != "generic")
        assert pycnn.select.heuristic(g16, isa) != "grouped_c16"


def test_graph_keeps_a_grouped_bottleneck_blocked(rng):
    """1x1 -> grouped 3x3 -> 1x1 with the residual (ResNeXt's bottleneck): the grouped conv reads
    and writes the blocked layout, and the graph matches the reference."""
    from pycnn.graph import Graph, Node

    C, M = 32, 64
    x = rng.standard_normal((2, C, 10, 10), dtype=np.float32)
    w1 = (rng.standard_normal((M, C, 1, 1)) / np.sqrt(C)).astype(np.float32)
    w2 = (rng.standard_normal((M, 4, 3, 3)) / 6).astype(np.float32)
    w3 = (rng.standard_normal((C, M, 1, 1)) / 8).astype(np.float32)
    g = Graph(
        {"x": (None, C, 10, 10)},
        [
            Node("a", "conv2d", ["x"], params={"weight": w1}),
            Node("a.r", "relu", ["a"]),
            Node("b", "conv2d", ["a.r"], attrs=dict(padding=1, groups=M // 4), params={"weight": w2}),
            Node("b.r", "relu", ["b"]),
            Node("c", "conv2d", ["b.r"], params={"weight": w3}),
            Node("sum", "add", ["c", "x"]),
            Node("out", "relu", ["sum"]),
        ],
        ["out"],
    )
    a = np.maximum(_ref(x, w1, None, 1, 0, 1, 1), 0)
    bb = np.maximum(_ref(a.astype(np.float32), w2, None, 1, 1, 1, M // 4), 0)
    want = np.maximum(_ref(bb.astype(np.float32), w3, None, 1, 0, 1, 1) + x, 0)
    assert_close(g(x), want, atol=1e-4)
    prof = str(g.profile(x, runs=1, warmup=0))
    assert "grouped_c16 [16c: x,y]" in prof, prof
