"""Winograd F(2x2,3x3), F(4x4,3x3), F(6x6,3x3): matrices, each transform on its own, whole
convolutions at every tile and ISA path, the documented error bounds, and bad use."""

import numpy as np
import pytest

import pycnn
from conftest import assert_close, conv_data
from pycnn import _C, reference, winograd

TILES = winograd.TILES
# Documented bounds (the registry's rel_error_bound; README "Winograd accuracy"): max |y - y64| /
# max |y64| over the output; `python -m bench.winograd_error` prints the measured values.
REL_BOUND = {m: pycnn.registry.CONV[f"winograd_f{m}"].rel_error_bound for m in TILES}


@pytest.mark.parametrize("m", TILES)
def test_matrices_compute_correlation(m, rng):
    BT, G, AT = winograd.matrices(m)
    a = m + 2
    g = rng.standard_normal((3, 3))
    d = rng.standard_normal((a, a))
    Y = AT @ ((G @ g @ G.T) * (BT @ d @ BT.T)) @ AT.T
    want = np.array([[np.sum(d[i : i + 3, j : j + 3] * g) for j in range(m)] for i in range(m)])
    np.testing.assert_allclose(Y, want, atol=1e-12 * 10 ** (m // 2))


@pytest.mark.parametrize("m", TILES)
def test_filter_transform(m, rng):
    w = rng.standard_normal((5, 7, 3, 3)).astype(np.float32)
    U = _C.winograd_filter_transform(w, m)
    assert_close(U, winograd.filter_transform(w.astype(np.float64), m), atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("m", TILES)
@pytest.mark.parametrize(
    "shape, pad", [((1, 3, 7, 9), (1, 1)), ((2, 5, 13, 11), (0, 2)), ((1, 17, 4, 31), (2, 0)), ((1, 1, 3, 3), (0, 0))]
)
def test_input_transform(m, shape, pad, isa, rng):
    x = rng.standard_normal(shape).astype(np.float32)
    pt, pl = pad
    Ho, Wo = shape[2] + 2 * pt - 2, shape[3] + 2 * pl - 2
    V = _C.winograd_input_transform(x, m, pt, pl, Ho, Wo)
    assert_close(V, winograd.input_transform(x.astype(np.float64), m, pt, pl, Ho, Wo), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("m", TILES)
@pytest.mark.parametrize("N, K, Ho, Wo", [(1, 3, 5, 9), (2, 4, 13, 13), (1, 1, 1, 1), (1, 2, 7, 33)])
def test_output_transform(m, N, K, Ho, Wo, isa, rng):
    T = N * -(-Ho // m) * -(-Wo // m)
    M = rng.standard_normal(((m + 2) ** 2, K, T)).astype(np.float32)
    y = _C.winograd_output_transform(M, m, N, Ho, Wo)
    assert_close(y, winograd.output_transform(M.astype(np.float64), m, N, Ho, Wo), atol=1e-4, rtol=1e-5)


CASES = [  # N, C, H, W, K, padding, groups
    (1, 1, 3, 3, 1, 0, 1),
    (1, 3, 7, 7, 5, 1, 1),
    (2, 7, 17, 15, 15, 1, 1),
    (1, 16, 13, 13, 33, 1, 1),
    (3, 5, 9, 4, 7, 0, 1),
    (1, 8, 11, 20, 8, 2, 2),
    (1, 6, 10, 10, 6, (0, 1, 2, 1), 3),
    (2, 64, 8, 8, 40, 1, 1),
    (1, 20, 30, 26, 17, 1, 1),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: "x".join(map(str, c[:5])))
@pytest.mark.parametrize("m", TILES)
def test_conv_every_tile_and_isa(case, m, isa, rng):
    N, C, H, W, K, pad, groups = case
    x, w, b = conv_data(rng, N, C, H, W, K, C // groups, 3, 3)
    ref = reference.conv2d(x.astype(np.float64), w.astype(np.float64), b.astype(np.float64), 1, pad, 1, groups)
    s = pycnn.ops.ConvShape(x.shape, w.shape, 1, pad, 1, groups)
    y = np.full((s.N, s.K, s.Ho, s.Wo), np.nan, np.float32)  # poisoned
    _C.conv2d(x, w, b, y, 1, 1, s.pad[0], s.pad[1], 1, 1, groups, f"winograd_f{m}", False)
    err = np.abs(y - ref).max() / np.abs(ref).max()
    assert err <= REL_BOUND[m], f"F{m}: relative error {err:.3g} > {REL_BOUND[m]}"
    yr = pycnn.prepare_conv(w, b, 1, pad, groups=groups, algo=f"winograd_f{m}", activation="relu")(x)
    assert np.abs(yr - np.maximum(ref, 0)).max() / np.abs(ref).max() <= REL_BOUND[m]


@pytest.mark.parametrize("m", TILES)
def test_error_bound_real_scale(m, rng):
    """He-initialized weights on ReLU-like (non-negative, unit-variance) activations, as in a
    trained ResNet layer: the relative error stays within the documented bound."""
    x = np.abs(rng.standard_normal((1, 64, 28, 28))).astype(np.float32)
    w = (rng.standard_normal((64, 64, 3, 3)) * np.sqrt(2.0 / (64 * 9))).astype(np.float32)
    ref = reference.conv2d(x.astype(np.float64), w.astype(np.float64), None, 1, 1)
    y = pycnn.conv2d(x, w, None, 1, 1, algo=f"winograd_f{m}")
    assert np.abs(y - ref).max() / np.abs(ref).max() <= REL_BOUND[m]


def test_winograd_auto_tile_and_names(rng):
    x, w, b = conv_data(rng, 1, 4, 30, 30, 4, 4, 3, 3)
    ref = reference.conv2d(x.astype(np.float64), w.astype(np.float64), b.astype(np.float64), 1, 1)
    y = pycnn.conv2d(x, w, b, padding=1, algo="winograd")
    assert np.abs(y - ref).max() / np.abs(ref).max() <= REL_BOUND[6]
    assert {"winograd", "winograd_f2", "winograd_f4", "winograd_f6"} <= set(pycnn.algorithms())


@pytest.mark.parametrize("kwargs", [dict(stride=2), dict(dilation=2)])
@pytest.mark.parametrize("algo", ["winograd", "winograd_f4"])
def test_winograd_rejects_other_shapes(kwargs, algo, rng):
    x, w, _ = conv_data(rng, 1, 3, 12, 12, 4, 3, 3, 3)
    with pytest.raises(ValueError, match="algo"):
        pycnn.conv2d(x, w, algo=algo, **kwargs)
    w5 = np.zeros((4, 3, 5, 5), np.float32)
    with pytest.raises(ValueError, match="3x3"):
        pycnn.conv2d(x, w5, algo=algo)
    with pytest.raises(ValueError, match="algo"):
        pycnn.prepare_conv(w5, algo=algo)


@pytest.mark.parametrize("m", TILES)
@pytest.mark.parametrize("where", [(6, 7), (0, 0), (13, 2)])
def test_nan_reaches_exactly_the_tiles_that_hold_it(m, where, rng):
    """A NaN input reaches at least every output the reference makes NaN and at most the outputs
    of the tiles whose input patch holds it (zero coefficients are skipped, so not always all of
    them)."""
    x, w, b = conv_data(rng, 1, 3, 14, 14, 4, 3, 3, 3)
    r, c = where
    x[0, 1, r, c] = np.nan
    ref = reference.conv2d(x, w, b, 1, 1)
    y = pycnn.conv2d(x, w, b, 1, 1, algo=f"winograd_f{m}")
    expect = np.zeros(y.shape[2:], bool)
    a, pad = m + 2, 1
    for th in range(-(-14 // m)):
        for tw in range(-(-14 // m)):
            if th * m - pad <= r < th * m - pad + a and tw * m - pad <= c < tw * m - pad + a:
                expect[th * m : (th + 1) * m, tw * m : (tw + 1) * m] = True
    nan_y = np.isnan(y)
    assert nan_y[np.isnan(ref)].all(), "an output the reference makes NaN is not NaN"
    assert not nan_y[~np.broadcast_to(expect, y.shape)].any(), "NaN escaped the tiles that hold it"


@pytest.mark.parametrize("algo", ["im2col", "direct", "winograd_f4", "auto"])
def test_prepared_weights_are_transformed_once(algo, rng):
    x, w, b = conv_data(rng, 1, 8, 20, 20, 8, 8, 3, 3)  # auto: im2col for both shapes below
    conv = pycnn.prepare_conv(w, b, padding=1, algo=algo)
    conv(x)  # auto prepares its choice on first use
    before = _C.weight_transform_count()
    for _ in range(3):
        conv(x)
    conv(np.zeros((2, 8, 20, 16), np.float32))
    assert _C.weight_transform_count() == before
