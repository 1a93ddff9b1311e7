"""The depthwise convolution kernel (groups == C: MobileNet, EfficientNet, ShuffleNet, ConvNeXt)
on every ISA path against the float64 reference: strides, dilation, asymmetric padding, channel
multipliers, maps narrower and wider than its 32-column register block, bias/residual/ReLU, NaN."""

import numpy as np
import pytest
from test_conv2d import _ref as conv_ref

import pycnn
from conftest import assert_close, blk, conv_data, conv_poisoned, num_threads, unblk
from pycnn import _C, layout
from pycnn._shapes import ConvShape

# N, C, H, W, multiplier, R, S, stride, padding, dilation
CASES = [
    (1, 8, 13, 17, 1, 3, 3, 1, 1, 1),
    (2, 8, 13, 17, 1, 3, 3, 2, 1, 1),  # MobileNet's stride-2 3x3
    (1, 5, 9, 70, 1, 5, 5, 2, 2, 1),  # EfficientNet's 5x5 stride 2; 70 columns: three register blocks
    (1, 4, 20, 21, 1, 7, 7, 1, 3, 1),  # ConvNeXt's 7x7
    (2, 3, 11, 12, 2, 3, 3, 1, 2, 2),  # channel multiplier 2, dilated
    (1, 16, 7, 7, 1, 3, 3, 2, (0, 0, 1, 1), 1),  # TF-style asymmetric padding
    (1, 6, 1, 1, 1, 3, 3, 1, 1, 1),  # 1x1 map: every tap but the centre reads padding
    (3, 7, 33, 5, 1, 3, 5, (2, 3), (1, 2), (1, 2)),  # unequal strides and dilations
    (1, 2, 40, 100, 3, 1, 1, 1, 0, 1),  # 1x1 depthwise (a per-channel scale)
    (1, 4, 9, 9, 1, 3, 3, 3, 0, 1),  # stride 3, no padding
]


def _ref(x, w, b, stride, padding, dilation, groups, act=None, residual=None):
    y = conv_ref(x, w, b, stride, padding, dilation, groups)  # float64
    if residual is not None:
        y = y + residual
    return np.maximum(y, 0) if act == "relu" else y


@pytest.mark.parametrize("case", CASES, ids=lambda c: "x".join(map(str, c[:7])))
def test_depthwise_matches_the_reference_every_isa(case, isa, rng):
    N, C, H, W, m, R, S, stride, padding, dilation = case
    x, w, b = conv_data(rng, N, C, H, W, C * m, 1, R, S)
    for relu in (False, True):
        y = conv_poisoned(x, w, b, stride, padding, dilation, C, "depthwise", relu)  # NaN-filled output
        assert_close(y, _ref(x, w, b, stride, padding, dilation, C, "relu" if relu else None))
    y = pycnn.conv2d(x, w, None, stride, padding, dilation, C, algo="depthwise")
    assert_close(y, _ref(x, w, None, stride, padding, dilation, C))


def test_prepared_with_residual_and_relu(rng):
    x, w, b = conv_data(rng, 2, 12, 10, 9, 12, 1, 3, 3)
    r = rng.standard_normal((2, 12, 10, 9), dtype=np.float32)
    p = pycnn.prepare_conv(w, b, padding=1, groups=12, algo="depthwise", activation="relu")
    assert_close(p(x, residual=r), _ref(x, w, b, 1, 1, 1, 12, "relu", r))


def test_auto_picks_depthwise_and_refuses_dense_shapes():
    s = ConvShape((1, 32, 56, 56), (32, 1, 3, 3), 1, 1, 1, 32)
    assert pycnn.select.heuristic(s, "avx512") == pycnn.select.heuristic(s, "avx2") == "depthwise_c16"
    assert pycnn.select.heuristic(s, "generic") == "depthwise"  # SSE2: per plane on maps over 14 wide
    small = ConvShape((1, 32, 14, 14), (32, 1, 3, 3), 1, 1, 1, 32)
    assert pycnn.select.heuristic(small, "generic") == "depthwise_c16"
    assert pycnn.select.heuristic(ConvShape((1, 32, 56, 56), (64, 1, 3, 3), 2, 1, 1, 32)) == "depthwise"
    dense = ConvShape((1, 32, 56, 56), (32, 8, 3, 3), 1, 1, 1, 4)
    assert pycnn.select.heuristic(dense) != "depthwise"
    assert "one input channel per group" in pycnn.registry.CONV["depthwise"].refuse(dense)
    x = np.zeros((1, 32, 8, 8), np.float32)
    with pytest.raises(ValueError, match="one input channel per group"):
        pycnn.conv2d(x, np.zeros((32, 8, 3, 3), np.float32), groups=4, algo="depthwise")


def test_nan_and_inf_propagate_only_through_their_windows(rng):
    x, w, b = conv_data(rng, 1, 4, 9, 40, 4, 1, 3, 3)
    x[0, 1, 4, 20] = np.nan
    x[0, 2, 0, 0] = np.inf
    w = np.abs(w)  # Inf * positive weights: +Inf, no Inf - Inf
    y = pycnn.conv2d(x, w, b, padding=1, groups=4, algo="depthwise")
    ref = _ref(x, w, b, 1, 1, 1, 4)
    assert np.isnan(y[0, 1, 3:6, 19:22]).all() and np.isnan(y[0, 1]).sum() == 9
    assert np.isposinf(y[0, 2, :2, :2]).all() and np.isinf(y[0, 2]).sum() == 4
    assert_close(y, ref)


def test_weights_prepared_once():
    w = np.ones((8, 1, 3, 3), np.float32)
    p = pycnn.prepare_conv(w, padding=1, groups=8, algo="depthwise")
    before = _C.weight_transform_count()
    for _ in range(3):
        p(np.ones((1, 8, 5, 5), np.float32))
    assert _C.weight_transform_count() == before


# depthwise_c16 (vectorized over 16-channel blocks): N, C, H, W, R, stride, padding, dilation.
C16_CASES = [
    (2, 32, 13, 17, 3, 1, 1, 1),
    (1, 16, 14, 14, 3, 2, 1, 1),  # MobileNet's stride 2 on an even map
    (1, 48, 9, 30, 5, 2, 2, 1),  # EfficientNet's 5x5 stride 2; pixel blocks and a tail
    (1, 16, 7, 7, 7, 1, 3, 1),  # ConvNeXt's 7x7 on a map as wide as the kernel
    (2, 32, 11, 12, 3, 1, 2, 2),  # dilated
    (1, 16, 1, 1, 3, 1, 1, 1),  # every tap but the centre reads padding
    (1, 16, 5, 40, 3, 3, 0, 1),  # stride 3, no padding
    (1, 16, 300, 9, 3, 1, 1, 1),  # more rows than one band holds
    (1, 16, 6, 40, 3, 1, 1, 1),  # stride 1 on a wide map: a blocked x read in place (row_direct)
    (2, 32, 5, 45, 3, 1, 2, 2),  # the same dilated: edges of two pixels a side, taps skipped
]


@pytest.mark.parametrize("case", C16_CASES, ids=lambda c: "x".join(map(str, c[:6])))
@pytest.mark.parametrize("bits", range(8))
def test_c16_layouts_match_the_reference_every_isa(case, bits, isa, rng):
    """x, y and the residual each NCHW16c or NCHW (layout bits 1, 2, 4), with and without ReLU:
    the output poisoned with NaN, so an element the kernel skips fails."""
    N, C, H, W, R, stride, pad, dil = case
    x, w, b = conv_data(rng, N, C, H, W, C, 1, R, R)
    s = ConvShape(x.shape, w.shape, stride, pad, dil, C)
    res = rng.standard_normal((N, C, s.Ho, s.Wo), dtype=np.float32)
    for relu, with_res in ((False, False), (True, True), (True, False)):
        act = "relu" if relu else None
        conv = pycnn.prepare_conv(
            w, b, stride=stride, padding=pad, dilation=dil, groups=C, algo="depthwise_c16", activation=act
        )
        call = conv.bind([x.shape], None, layout=(bits, "depthwise_c16"))
        y_shape = (N, C // 16, s.Ho, s.Wo, 16) if bits & 2 else (N, C, s.Ho, s.Wo)
        out = np.full(y_shape, np.nan, np.float32)
        r = (blk(res) if bits & 4 else res) if with_res else None
        call(blk(x) if bits & 1 else x, r, out)
        got = unblk(out) if bits & 2 else out
        assert_close(got, _ref(x, w, b, stride, pad, dil, C, "relu" if relu else None, res if with_res else None))


@pytest.mark.parametrize("R, stride", [(3, 1), (3, 2), (5, 1), (5, 2), (7, 1)])
def test_c16_every_output_width_every_isa(R, stride, isa, rng):
    """Output widths 1 to 17: full register blocks of pixels, then every tail size (one block of
    that many pixels), on the input-reusing stride-1 and stride-2 paths and the general one
    (dilated), blocked tensors in and out; the output poisoned with NaN."""
    for Wo in range(1, 18):
        for dil in (1, 2):
            W = (Wo - 1) * stride + 1  # padding R // 2 * dil keeps Wo columns
            x, w, b = conv_data(rng, 1, 32, 3, W, 32, 1, R, R)
            pad = R // 2 * dil
            conv = pycnn.prepare_conv(w, b, stride=stride, padding=pad, dilation=dil, groups=32, algo="depthwise_c16")
            s = ConvShape(x.shape, w.shape, stride, pad, dil, 32)
            assert s.Wo == Wo
            out = np.full((1, 2, s.Ho, Wo, 16), np.nan, np.float32)
            conv.bind([x.shape], None, layout=(3, "depthwise_c16"))(blk(x), None, out)
            assert_close(unblk(out), _ref(x, w, b, stride, pad, dil, 32), what=f"Wo={Wo} dil={dil}")


@pytest.mark.parametrize("R", [3, 5, 7])
def test_c16_strided_wide_rows_read_x_in_place_every_isa(R, isa, rng):
    """Stride-2 rows wide enough that a blocked x is read where it lies (the middle columns) and
    only the edge columns' taps are copied with their padding: every split of a row into edge,
    middle and edge spans (widths 12 to 40, symmetric, none, one-sided and wide padding, rows
    above and below the map), y blocked and NCHW, with a residual; the output poisoned with NaN."""
    for Wo in range(12, 41):
        for pt, pl in ((R // 2, R // 2), (0, 0), (R - 1, 1), (1, R - 1)):
            W = (Wo - 1) * 2 + R - 2 * pl  # pl columns of padding on each side keep Wo
            x, w, b = conv_data(rng, 1, 32, R + 2, W, 32, 1, R, R)
            conv = pycnn.prepare_conv(w, b, stride=2, padding=(pt, pl), groups=32, algo="depthwise_c16")
            s = ConvShape(x.shape, w.shape, 2, (pt, pl), 1, 32)
            assert s.Wo == Wo
            res = rng.standard_normal((1, 32, s.Ho, s.Wo), dtype=np.float32)
            want = _ref(x, w, b, 2, (pt, pl), 1, 32, None, res)
            for bits in (1 | 2 | 4, 1):
                out = np.full((1, 2, s.Ho, Wo, 16) if bits & 2 else (1, 32, s.Ho, Wo), np.nan, np.float32)
                call = conv.bind([x.shape], None, layout=(bits, "depthwise_c16"))
                call(blk(x), blk(res) if bits & 4 else res, out)
                got = unblk(out) if bits & 2 else out
                assert_close(got, want, what=f"{isa} Wo={Wo} pad=({pt}, {pl}) bits={bits}")


@pytest.mark.parametrize("R", [3, 5, 7])
def test_c16_edge_pixels_propagate_nan_and_inf_every_isa(R, isa, rng):
    """A blocked x read in place at stride 2: NaN and +-Inf in the first and last input columns
    (read only by the edge pixels' unrolled taps) and in the middle reach exactly the outputs
    whose windows hold them (Inf * a weight of the other sign is -Inf, Inf - Inf is NaN)."""
    Wo = 14
    W = (Wo - 1) * 2 + 1
    x, w, b = conv_data(rng, 1, 32, 9, W, 32, 1, R, R)
    x[0, 3, 4, 0] = np.nan
    x[0, 7, 2, W - 1] = np.inf
    x[0, 7, 6, W - 1] = -np.inf  # both Infs in some windows of channel 7: NaN there
    x[0, 20, 0, W // 2] = np.inf
    pad = R // 2
    conv = pycnn.prepare_conv(w, b, stride=2, padding=pad, groups=32, algo="depthwise_c16", activation="relu")
    s = ConvShape(x.shape, w.shape, 2, pad, 1, 32)
    out = np.full((1, 2, s.Ho, Wo, 16), np.nan, np.float32)
    conv.bind([x.shape], None, layout=(3, "depthwise_c16"))(blk(x), None, out)
    with np.errstate(invalid="ignore"):
        want = _ref(x, w, b, 2, pad, 1, 32, "relu")
    assert np.isnan(want).any() and np.isinf(want).any()
    assert_close(unblk(out), want, what=f"{isa} R={R}")


@pytest.mark.parametrize("C", [5, 20, 35])
def test_c16_channels_not_a_multiple_of_16_every_isa(C, isa, rng):
    """NCHW tensors with a partial last block: its extra lanes are computed and never stored."""
    for H, W, stride in ((7, 7, 1), (14, 13, 2), (5, 37, 1)):
        x, w, b = conv_data(rng, 2, C, H, W, C, 1, 3, 3)
        s = ConvShape(x.shape, w.shape, stride, 1, 1, C)
        r = rng.standard_normal((2, C, s.Ho, s.Wo), dtype=np.float32)
        for relu in (False, True):
            y = conv_poisoned(x, w, b, stride, 1, 1, C, "depthwise_c16", relu)
            assert_close(y, _ref(x, w, b, stride, 1, 1, C, "relu" if relu else None))
        p = pycnn.prepare_conv(w, b, stride=stride, padding=1, groups=C, algo="depthwise_c16")
        assert_close(p(x, residual=r), _ref(x, w, b, stride, 1, 1, C, None, r))


def test_c16_checks():
    w = np.ones((24, 1, 3, 3), np.float32)
    with pytest.raises(ValueError, match="layout"):  # 24 channels: no 16-channel blocks
        pycnn.prepare_conv(w, padding=1, groups=24, algo="depthwise_c16").bind(
            [(1, 24, 8, 8)], None, layout=(layout.X_BLOCKED, "depthwise_c16")
        )
    w = np.ones((32, 1, 3, 3), np.float32)
    with pytest.raises(ValueError, match="groups == in_channels == out_channels"):  # a channel multiplier
        pycnn.conv2d(np.zeros((1, 16, 8, 8), np.float32), w, padding=1, groups=16, algo="depthwise_c16")
    call = pycnn.prepare_conv(w, padding=1, groups=32, algo="depthwise_c16").bind(
        [(1, 32, 8, 8)], None, layout=(layout.X_BLOCKED | layout.Y_BLOCKED, "depthwise_c16")
    )
    with pytest.raises(ValueError, match="x: expected shape"):
        call(np.zeros((1, 32, 8, 8), np.float32))
    with pytest.raises(ValueError, match="residual"):
        call(np.zeros((1, 2, 8, 8, 16), np.float32), np.zeros((1, 32, 4, 4), np.float32))


def test_c16_nan_and_inf_propagate_only_through_their_windows(rng):
    x, w, b = conv_data(rng, 1, 16, 9, 12, 16, 1, 3, 3)
    x[0, 3, 4, 5] = np.nan
    x[0, 7, 0, 0] = np.inf
    w = np.abs(w)
    call = pycnn.prepare_conv(w, b, padding=1, groups=16, algo="depthwise_c16").bind(
        [x.shape], None, layout=(layout.X_BLOCKED | layout.Y_BLOCKED, "depthwise_c16")
    )
    y = unblk(call(blk(x)))
    assert np.isnan(y[0, 3, 3:6, 4:7]).all() and np.isnan(y).sum() == 9
    assert np.isposinf(y[0, 7, :2, :2]).all() and np.isinf(y).sum() == 4


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")  # the reference's inf - inf
@pytest.mark.parametrize("R", [3, 5, 7])
@pytest.mark.parametrize("H,W", [(7, 7), (40, 50)])
@pytest.mark.parametrize("bits", [layout.X_BLOCKED | layout.Y_BLOCKED, layout.Y_BLOCKED])
def test_c16_padded_copy_reused_across_blocks_and_bands_every_isa(R, H, W, bits, isa, rng):
    """One thread runs every (block, band) item through the same padded buffer (stride-1 rows
    copied, 4 channel blocks, several bands on the 40-row map): its padding columns stay zero
    whatever rows went through it, so Inf and NaN on the input's border reach exactly the outputs
    whose windows hold them."""
    C = 64
    x, w, b = conv_data(rng, 1, C, H, W, C, 1, R, R)
    x[0, :, :, 0] = np.inf
    x[0, 5, :, W - 1] = np.nan
    x[0, 9, 0, :] = -np.inf
    w = np.abs(w)
    want = _ref(x, w, b, 1, R // 2, 1, C)
    xin = blk(x) if bits & layout.X_BLOCKED else x
    with num_threads(1):
        call = pycnn.prepare_conv(w, b, padding=R // 2, groups=C, algo="depthwise_c16").bind(
            [x.shape], None, layout=(bits, "depthwise_c16")
        )
        y = unblk(call(xin))
    np.testing.assert_array_equal(np.isnan(y), np.isnan(want))
    np.testing.assert_array_equal(np.isinf(y), np.isinf(want))
    finite = np.isfinite(want)
    assert_close(y[finite], want[finite])
