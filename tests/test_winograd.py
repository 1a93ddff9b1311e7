"""Winograd F(2x2,3x3), F(4x4,3x3), F(6x6,3x3), F(2x2,5x5), F(4x4,5x5): matrices, each transform on
its own, whole convolutions at every tile and ISA path, the documented error bounds, and bad use."""

import numpy as np
import pytest

import pycnn
from conftest import assert_close, conv_data
from pycnn import _C, reference, winograd

TILES = winograd.TILES
# (m, r): every tile of every kernel size.
TILE_KERNELS = [(m, 3) for m in TILES] + [(m, 5) for m in winograd.TILES_5X5]
# Documented bounds (the registry's rel_error_bound and rel_error_bound_5x5; README "Winograd
# accuracy"): max |y - y64| / max |y64| over the output; `python -m bench.winograd_error` prints
# the measured values.
REL_BOUND = {
    (m, r): getattr(pycnn.registry.CONV[f"winograd_f{m}"], "rel_error_bound" if r == 3 else "rel_error_bound_5x5")
    for m, r in TILE_KERNELS
}
ids = [f"F{m}_{r}x{r}" for m, r in TILE_KERNELS]


def test_bounds_grow_with_alpha():
    """The 5x5 tiles share their alpha (so their B^T) with a larger 3x3 tile, and its bound."""
    assert REL_BOUND[2, 5] == REL_BOUND[4, 3] and REL_BOUND[4, 5] == REL_BOUND[6, 3]
    assert REL_BOUND[2, 3] < REL_BOUND[4, 3] < REL_BOUND[6, 3]


@pytest.mark.parametrize("m, r", TILE_KERNELS, ids=ids)
def test_matrices_compute_correlation(m, r, rng):
    BT, G, AT = winograd.matrices(m, r)
    a = m + r - 1
    assert BT.shape == (a, a) and G.shape == (a, r) and AT.shape == (m, a)
    g = rng.standard_normal((r, r))
    d = rng.standard_normal((a, a))
    Y = AT @ ((G @ g @ G.T) * (BT @ d @ BT.T)) @ AT.T
    want = np.array([[np.sum(d[i : i + r, j : j + r] * g) for j in range(m)] for i in range(m)])
    np.testing.assert_allclose(Y, want, atol=1e-12 * 10 ** (a // 3))


def test_matrices_refuse_other_tiles():
    for m, r in [(6, 5), (3, 3), (2, 7)]:
        with pytest.raises(ValueError, match="m, r"):
            winograd.matrices(m, r)


@pytest.mark.parametrize("m, r", TILE_KERNELS, ids=ids)
def test_filter_transform(m, r, rng):
    w = rng.standard_normal((5, 7, r, r)).astype(np.float32)
    U = _C.winograd_filter_transform(w, m)
    assert U.shape == ((m + r - 1) ** 2, 5, 7)
    assert_close(U, winograd.filter_transform(w.astype(np.float64), m), atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("m, r", TILE_KERNELS, ids=ids)
@pytest.mark.parametrize(
    "shape, pad", [((1, 3, 7, 9), (1, 1)), ((2, 5, 13, 11), (0, 2)), ((1, 17, 5, 31), (2, 0)), ((1, 1, 5, 5), (0, 0))]
)
def test_input_transform(m, r, shape, pad, isa, rng):
    x = rng.standard_normal(shape).astype(np.float32)
    pt, pl = pad
    Ho, Wo = shape[2] + 2 * pt - r + 1, shape[3] + 2 * pl - r + 1
    V = _C.winograd_input_transform(x, m, pt, pl, Ho, Wo, r)
    assert_close(V, winograd.input_transform(x.astype(np.float64), m, pt, pl, Ho, Wo, r), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("m, r", TILE_KERNELS, ids=ids)
@pytest.mark.parametrize("N, K, Ho, Wo", [(1, 3, 5, 9), (2, 4, 13, 13), (1, 1, 1, 1), (1, 2, 7, 33)])
def test_output_transform(m, r, N, K, Ho, Wo, isa, rng):
    T = N * -(-Ho // m) * -(-Wo // m)
    M = rng.standard_normal(((m + r - 1) ** 2, K, T)).astype(np.float32)
    y = _C.winograd_output_transform(M, m, N, Ho, Wo, r)
    assert_close(y, winograd.output_transform(M.astype(np.float64), m, N, Ho, Wo, r), atol=1e-4, rtol=1e-5)


def test_transforms_refuse_other_tiles():
    x = np.zeros((1, 1, 9, 9), np.float32)
    with pytest.raises(ValueError, match="m: expected"):
        _C.winograd_input_transform(x, 6, 0, 0, 5, 5, 5)
    with pytest.raises(ValueError, match="r: expected"):
        _C.winograd_output_transform(np.zeros((36, 1, 1), np.float32), 2, 1, 2, 2, 7)
    with pytest.raises(ValueError, match="m: expected"):
        _C.winograd_filter_transform(np.zeros((1, 1, 5, 5), np.float32), 6)


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
@pytest.mark.parametrize("m, r", TILE_KERNELS, ids=ids)
def test_conv_every_tile_and_isa(case, m, r, isa, rng):
    N, C, H, W, K, pad, groups = case
    if r == 5:  # the same cases with the padding that keeps the map's size
        pad = 2 if pad == 1 else (2, 1, 0, 3) if isinstance(pad, tuple) else pad
        H, W = max(H, 5), max(W, 5)
    x, w, b = conv_data(rng, N, C, H, W, K, C // groups, r, r)
    ref = reference.conv2d(x.astype(np.float64), w.astype(np.float64), b.astype(np.float64), 1, pad, 1, groups)
    s = pycnn.ops.ConvShape(x.shape, w.shape, 1, pad, 1, groups)
    y = np.full((s.N, s.K, s.Ho, s.Wo), np.nan, np.float32)  # poisoned
    _C.conv2d(x, w, b, y, 1, 1, s.pad[0], s.pad[1], 1, 1, groups, f"winograd_f{m}", False)
    err = np.abs(y - ref).max() / np.abs(ref).max()
    bound = REL_BOUND[m, r]
    assert err <= bound, f"F({m},{r}): relative error {err:.3g} > {bound}"
    yr = pycnn.prepare_conv(w, b, 1, pad, groups=groups, algo=f"winograd_f{m}", activation="relu")(x)
    assert np.abs(yr - np.maximum(ref, 0)).max() / np.abs(ref).max() <= bound
    assert pycnn.registry.CONV[f"winograd_f{m}"].error_bound(s) == bound


@pytest.mark.parametrize("m, r", TILE_KERNELS, ids=ids)
def test_error_bound_real_scale(m, r, rng):
    """He-initialized weights on ReLU-like (non-negative, unit-variance) activations, as in a
    trained ResNet layer: the relative error stays within the documented bound."""
    x = np.abs(rng.standard_normal((1, 64, 28, 28))).astype(np.float32)
    w = (rng.standard_normal((64, 64, r, r)) * np.sqrt(2.0 / (64 * r * r))).astype(np.float32)
    ref = reference.conv2d(x.astype(np.float64), w.astype(np.float64), None, 1, r // 2)
    y = pycnn.conv2d(x, w, None, 1, r // 2, algo=f"winograd_f{m}")
    assert np.abs(y - ref).max() / np.abs(ref).max() <= REL_BOUND[m, r]


def test_winograd_auto_tile_and_names(rng):
    x, w, b = conv_data(rng, 1, 4, 30, 30, 4, 4, 3, 3)
    ref = reference.conv2d(x.astype(np.float64), w.astype(np.float64), b.astype(np.float64), 1, 1)
    y = pycnn.conv2d(x, w, b, padding=1, algo="winograd")
    assert np.abs(y - ref).max() / np.abs(ref).max() <= REL_BOUND[6, 3]
    assert {"winograd", "winograd_f2", "winograd_f4", "winograd_f6"} <= set(pycnn.algorithms())
    x, w, b = conv_data(rng, 1, 4, 30, 30, 4, 4, 5, 5)
    ref = reference.conv2d(x.astype(np.float64), w.astype(np.float64), b.astype(np.float64), 1, 2)
    y = pycnn.conv2d(x, w, b, padding=2, algo="winograd")
    assert np.abs(y - ref).max() / np.abs(ref).max() <= REL_BOUND[4, 5]


@pytest.mark.parametrize("kwargs", [dict(stride=2), dict(dilation=2)])
@pytest.mark.parametrize("algo", ["winograd", "winograd_f4"])
def test_winograd_rejects_other_shapes(kwargs, algo, rng):
    x, w, _ = conv_data(rng, 1, 3, 12, 12, 4, 3, 3, 3)
    with pytest.raises(ValueError, match="algo"):
        pycnn.conv2d(x, w, algo=algo, **kwargs)
    for k in [(7, 7), (5, 3), (1, 1)]:
        wk = np.zeros((4, 3, *k), np.float32)
        with pytest.raises(ValueError, match="3x3 or 5x5"):
            pycnn.conv2d(x, wk, algo=algo)
        with pytest.raises(ValueError, match="algo"):
            pycnn.prepare_conv(wk, algo=algo)
    with pytest.raises(ValueError, match="winograd_f6' needs a 3x3 kernel"):
        pycnn.conv2d(x, np.zeros((4, 3, 5, 5), np.float32), algo="winograd_f6")


@pytest.mark.parametrize("m, r", TILE_KERNELS, ids=ids)
@pytest.mark.parametrize("where", [(6, 7), (0, 0), (13, 2)])
def test_nan_reaches_exactly_the_tiles_that_hold_it(m, r, where, rng):
    """A NaN input reaches at least every output the reference makes NaN and at most the outputs
    of the tiles whose input patch holds it (zero coefficients are skipped, so not always all of
    them)."""
    x, w, b = conv_data(rng, 1, 3, 14, 14, 4, 3, r, r)
    row, col = where
    x[0, 1, row, col] = np.nan
    pad = r // 2
    ref = reference.conv2d(x, w, b, 1, pad)
    y = pycnn.conv2d(x, w, b, 1, pad, algo=f"winograd_f{m}")
    expect = np.zeros(y.shape[2:], bool)
    a = m + r - 1
    for th in range(-(-14 // m)):
        for tw in range(-(-14 // m)):
            if th * m - pad <= row < th * m - pad + a and tw * m - pad <= col < tw * m - pad + a:
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
