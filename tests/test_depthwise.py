"""The depthwise convolution kernel (groups == C: MobileNet, EfficientNet, ShuffleNet, ConvNeXt)
on every ISA path against the float64 reference: strides, dilation, asymmetric padding, channel
multipliers, maps narrower and wider than its 32-column register block, bias/residual/ReLU, NaN."""

import numpy as np
import pytest
from test_conv2d import _ref as conv_ref

import pycnn
from conftest import assert_close, conv_data, conv_poisoned
from pycnn import _C
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
    assert pycnn.select.heuristic(s) == "depthwise"
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
