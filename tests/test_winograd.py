"""Winograd F(2x2,3x3), F(4x4,3x3), F(6x6,3x3), F(2x2,5x5), F(4x4,5x5) and the one-dimensional
F(1xm,1xr), F(mx1,rx1) (r = 3, 4, 5, 7; m = 2, 4, one more for r = 4): matrices, each transform
on its own, whole convolutions at every tile and ISA path, the documented error bounds, and bad use."""

import numpy as np
import pytest

import pycnn
from conftest import assert_close, conv_data, num_threads, unblk
from pycnn import _C, layout, reference, registry, winograd

TILES = winograd.TILES
# (m, R, S): every tile of every kernel (m along the kernel's long axis).
TILE_KERNELS = (
    [(m, 3, 3) for m in TILES]
    + [(m, 5, 5) for m in winograd.TILES_5X5]
    + [(m, 1, r) for r, ms in winograd.TILES_1D.items() for m in ms]
    + [(m, r, 1) for r, ms in winograd.TILES_1D.items() for m in ms]
)
# Documented bounds (the registry's rel_error_bound for 3x3, rel_error_bound_other for the
# others; README "Winograd accuracy"): max |y - y64| / max |y64| over the output; `python -m
# bench.winograd_error` prints the measured values.
REL_BOUND = {
    (m, R, S): getattr(
        pycnn.registry.CONV[f"winograd_f{m}"], "rel_error_bound" if (R, S) == (3, 3) else "rel_error_bound_other"
    )
    for m, R, S in TILE_KERNELS
}
ids = [f"F{m}_{R}x{S}" for m, R, S in TILE_KERNELS]


def _tile(m, R, S):
    """(mh, mw, ah, aw) of tile m on an R x S kernel."""
    mh, mw = winograd.tile(m, R, S)
    return mh, mw, mh + R - 1, mw + S - 1


def test_bounds_grow_with_alpha():
    """The 5x5 tiles share their alpha (so their B^T) with a larger 3x3 tile, and its bound."""
    assert REL_BOUND[2, 5, 5] == REL_BOUND[4, 3, 3] and REL_BOUND[4, 5, 5] == REL_BOUND[6, 3, 3]
    assert REL_BOUND[2, 3, 3] < REL_BOUND[4, 3, 3] < REL_BOUND[6, 3, 3]


@pytest.mark.parametrize("m, r", sorted({(winograd.axis_m(m, R), R) for m, R, _ in TILE_KERNELS if R > 1}))
def test_matrices_compute_correlation(m, r, rng):
    """Along one axis: Y = A^T ((G g) * (B^T d)) is the correlation of d with g; square tiles
    apply it on both axes."""
    BT, G, AT = winograd.matrices(m, r)
    a = m + r - 1
    assert BT.shape == (a, a) and G.shape == (a, r) and AT.shape == (m, a)
    g = rng.standard_normal((r, r))
    d = rng.standard_normal((a, a))
    Y = AT @ ((G @ g @ G.T) * (BT @ d @ BT.T)) @ AT.T
    want = np.array([[np.sum(d[i : i + r, j : j + r] * g) for j in range(m)] for i in range(m)])
    np.testing.assert_allclose(Y, want, atol=1e-12 * 10 ** (a // 3))


def test_even_kernels_take_the_tile_one_larger():
    """1x4 and 4x1 run F(3, 4) under winograd_f2 and F(5, 4) under winograd_f4 (alpha 6 and 8)."""
    assert winograd.tile(2, 1, 4) == (1, 3) and winograd.tile(4, 4, 1) == (5, 1)
    assert winograd.tile(4, 1, 3) == (1, 4) and winograd.tile(2, 5, 1) == (2, 1)
    assert _C.winograd_filter_transform(np.zeros((1, 1, 4, 1), np.float32), 4).shape == (8, 1, 1)
    x = np.zeros((2, 1, 11, 1), np.float32)  # Ho 8: F(5, 4) makes 2 tiles per image
    assert _C.winograd_input_transform(x, 4, 0, 0, 8, 1, 4, 1).shape == (8, 1, 4)


def test_matrices_refuse_other_tiles():
    for m, r in [(6, 5), (3, 3), (6, 7), (1, 3)]:
        with pytest.raises(ValueError, match="m, r"):
            winograd.matrices(m, r)
    assert [np.asarray(t).tolist() for t in winograd.matrices(1, 1)] == [[[1.0]]] * 3


@pytest.mark.parametrize("m, R, S", TILE_KERNELS, ids=ids)
def test_filter_transform(m, R, S, rng):
    w = rng.standard_normal((5, 7, R, S)).astype(np.float32)
    U = _C.winograd_filter_transform(w, m)
    _, _, ah, aw = _tile(m, R, S)
    assert U.shape == (ah * aw, 5, 7)
    assert_close(U, winograd.filter_transform(w.astype(np.float64), m), atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("m, R, S", TILE_KERNELS, ids=ids)
@pytest.mark.parametrize(
    "shape, pad", [((1, 3, 7, 9), (1, 1)), ((2, 5, 13, 11), (0, 2)), ((1, 17, 7, 31), (2, 0)), ((1, 1, 7, 7), (0, 0))]
)
def test_input_transform(m, R, S, shape, pad, isa, rng):
    x = rng.standard_normal(shape).astype(np.float32)
    pt, pl = pad
    Ho, Wo = shape[2] + 2 * pt - R + 1, shape[3] + 2 * pl - S + 1
    V = _C.winograd_input_transform(x, m, pt, pl, Ho, Wo, R, S)
    want = winograd.input_transform(x.astype(np.float64), m, pt, pl, Ho, Wo, R, S)
    assert_close(V, want, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("m, R, S", TILE_KERNELS, ids=ids)
@pytest.mark.parametrize("N, K, Ho, Wo", [(1, 3, 5, 9), (2, 4, 13, 13), (1, 1, 1, 1), (1, 2, 7, 33)])
def test_output_transform(m, R, S, N, K, Ho, Wo, isa, rng):
    mh, mw, ah, aw = _tile(m, R, S)
    T = N * -(-Ho // mh) * -(-Wo // mw)
    M = rng.standard_normal((ah * aw, K, T)).astype(np.float32)
    y = _C.winograd_output_transform(M, m, N, Ho, Wo, R, S)
    assert_close(y, winograd.output_transform(M.astype(np.float64), m, N, Ho, Wo, R, S), atol=1e-4, rtol=1e-5)


def test_transforms_refuse_other_tiles():
    x = np.zeros((1, 1, 9, 9), np.float32)
    with pytest.raises(ValueError, match="no tile of output size 6 for a 5x5 kernel"):
        _C.winograd_input_transform(x, 6, 0, 0, 5, 5, 5, 5)
    with pytest.raises(ValueError, match="no tile of output size 2 for a 7x7 kernel"):
        _C.winograd_output_transform(np.zeros((36, 1, 1), np.float32), 2, 1, 2, 2, 7, 7)
    with pytest.raises(ValueError, match="no tile of output size 6 for a 1x7 kernel"):
        _C.winograd_filter_transform(np.zeros((1, 1, 1, 7), np.float32), 6)


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


def _pad_for(pad, R, S):
    """A case's padding scaled to an R x S kernel (1 -> what keeps the map's size)."""
    if (R, S) == (3, 3):
        return pad
    if isinstance(pad, tuple):
        return (R // 2, 1, S // 2, 2)
    return (R // 2, S // 2) if pad == 1 else pad


@pytest.mark.parametrize("case", CASES, ids=lambda c: "x".join(map(str, c[:5])))
@pytest.mark.parametrize("m, R, S", TILE_KERNELS, ids=ids)
def test_conv_every_tile_and_isa(case, m, R, S, isa, rng):
    N, C, H, W, K, pad, groups = case
    pad = _pad_for(pad, R, S)
    H, W = max(H, R), max(W, S)
    x, w, b = conv_data(rng, N, C, H, W, K, C // groups, R, S)
    ref = reference.conv2d(x.astype(np.float64), w.astype(np.float64), b.astype(np.float64), 1, pad, 1, groups)
    s = pycnn.ops.ConvShape(x.shape, w.shape, 1, pad, 1, groups)
    y = np.full((s.N, s.K, s.Ho, s.Wo), np.nan, np.float32)  # poisoned
    _C.conv2d(x, w, b, y, 1, 1, s.pad[0], s.pad[1], 1, 1, groups, f"winograd_f{m}", False)
    err = np.abs(y - ref).max() / np.abs(ref).max()
    bound = REL_BOUND[m, R, S]
    assert err <= bound, f"F{m} on {R}x{S}: relative error {err:.3g} > {bound}"
    yr = pycnn.prepare_conv(w, b, 1, pad, groups=groups, algo=f"winograd_f{m}", activation="relu")(x)
    assert np.abs(yr - np.maximum(ref, 0)).max() / np.abs(ref).max() <= bound
    assert pycnn.registry.CONV[f"winograd_f{m}"].error_bound(s) == bound


@pytest.mark.parametrize("m, R, S", TILE_KERNELS, ids=ids)
def test_error_bound_real_scale(m, R, S, rng):
    """He-initialized weights on ReLU-like (non-negative, unit-variance) activations, as in a
    trained ResNet layer: the relative error stays within the documented bound."""
    x = np.abs(rng.standard_normal((1, 64, 28, 28))).astype(np.float32)
    w = (rng.standard_normal((64, 64, R, S)) * np.sqrt(2.0 / (64 * R * S))).astype(np.float32)
    pad = (R // 2, S // 2)
    ref = reference.conv2d(x.astype(np.float64), w.astype(np.float64), None, 1, pad)
    y = pycnn.conv2d(x, w, None, 1, pad, algo=f"winograd_f{m}")
    assert np.abs(y - ref).max() / np.abs(ref).max() <= REL_BOUND[m, R, S]


def test_winograd_auto_tile_and_names(rng):
    x, w, b = conv_data(rng, 1, 4, 30, 30, 4, 4, 3, 3)
    ref = reference.conv2d(x.astype(np.float64), w.astype(np.float64), b.astype(np.float64), 1, 1)
    y = pycnn.conv2d(x, w, b, padding=1, algo="winograd")
    assert np.abs(y - ref).max() / np.abs(ref).max() <= REL_BOUND[6, 3, 3]
    assert {"winograd", "winograd_f2", "winograd_f4", "winograd_f6"} <= set(pycnn.algorithms())
    x, w, b = conv_data(rng, 1, 4, 30, 30, 4, 4, 5, 5)
    ref = reference.conv2d(x.astype(np.float64), w.astype(np.float64), b.astype(np.float64), 1, 2)
    y = pycnn.conv2d(x, w, b, padding=2, algo="winograd")
    assert np.abs(y - ref).max() / np.abs(ref).max() <= REL_BOUND[4, 5, 5]
    x, w, b = conv_data(rng, 1, 4, 17, 17, 4, 4, 1, 7)  # 1x7: F(1x4,1x7) (17 x 5 tiles)
    ref = reference.conv2d(x.astype(np.float64), w.astype(np.float64), b.astype(np.float64), 1, (0, 3))
    y = pycnn.conv2d(x, w, b, padding=(0, 3), algo="winograd")
    assert np.abs(y - ref).max() / np.abs(ref).max() <= REL_BOUND[4, 1, 7]


@pytest.mark.parametrize("kwargs", [dict(stride=2), dict(dilation=2)])
@pytest.mark.parametrize("algo", ["winograd", "winograd_f4"])
def test_winograd_rejects_other_shapes(kwargs, algo, rng):
    x, w, _ = conv_data(rng, 1, 3, 12, 12, 4, 3, 3, 3)
    with pytest.raises(ValueError, match="algo"):
        pycnn.conv2d(x, w, algo=algo, **kwargs)
    for k in [(7, 7), (5, 3), (1, 1), (1, 6), (2, 1)]:
        wk = np.zeros((4, 3, *k), np.float32)
        with pytest.raises(ValueError, match=r"3x3, 5x5, 1xr or rx1 \(r = 3, 4, 5, 7\)"):
            pycnn.conv2d(x, wk, algo=algo)
        with pytest.raises(ValueError, match="algo"):
            pycnn.prepare_conv(wk, algo=algo)
    with pytest.raises(ValueError, match="winograd_f6' needs a 3x3 kernel"):
        pycnn.conv2d(x, np.zeros((4, 3, 5, 5), np.float32), algo="winograd_f6")
    with pytest.raises(ValueError, match="winograd_f6' needs a 3x3 kernel"):
        pycnn.conv2d(x, np.zeros((4, 3, 1, 7), np.float32), padding=(0, 3), algo="winograd_f6")


@pytest.mark.parametrize("m, R, S", TILE_KERNELS, ids=ids)
@pytest.mark.parametrize("where", [(6, 7), (0, 0), (13, 2)])
def test_nan_reaches_exactly_the_tiles_that_hold_it(m, R, S, where, rng):
    """A NaN input reaches at least every output the reference makes NaN and at most the outputs
    of the tiles whose input patch holds it (zero coefficients are skipped, so not always all of
    them)."""
    x, w, b = conv_data(rng, 1, 3, 14, 14, 4, 3, R, S)
    row, col = where
    x[0, 1, row, col] = np.nan
    ph, pw = R // 2, S // 2
    ref = reference.conv2d(x, w, b, 1, (ph, pw))
    y = pycnn.conv2d(x, w, b, 1, (ph, pw), algo=f"winograd_f{m}")
    expect = np.zeros(y.shape[2:], bool)
    mh, mw, ah, aw = _tile(m, R, S)
    for th in range(-(-14 // mh)):
        for tw in range(-(-14 // mw)):
            if th * mh - ph <= row < th * mh - ph + ah and tw * mw - pw <= col < tw * mw - pw + aw:
                expect[th * mh : (th + 1) * mh, tw * mw : (tw + 1) * mw] = True
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


# (x shape, w shape, padding, groups, m, y blocked, residual): calls whose tiles split into
# per-thread blocks at 2 threads on every ISA (conv2d_winograd.inl's run_blocks): partial vector
# groups and column panels at the ends of the threads' shares, a partial row panel and channel
# pass (K 100), depth in two KC blocks (C 300), a blocked y, groups, a 1-D tile, panels narrowed
# below the micro-kernel's width (avx512: 256 channels).
BLOCK_CASES = [
    ((2, 24, 30, 26), (100, 24, 3, 3), 1, 1, 4, False, True),
    ((2, 300, 20, 20), (32, 300, 3, 3), 1, 1, 2, False, False),
    ((2, 32, 32, 32), (48, 32, 3, 3), 1, 1, 4, True, False),
    ((2, 16, 32, 32), (32, 8, 3, 3), 1, 2, 4, False, True),
    ((2, 16, 17, 40), (16, 16, 1, 7), (0, 3), 1, 4, False, False),
    ((2, 256, 32, 32), (32, 256, 3, 3), 1, 1, 4, False, False),
]


def _plan(xs, ws, pad, groups, m, y_blocked=False):
    s = pycnn.ops.ConvShape(xs, ws, 1, pad, 1, groups)
    return _C.winograd_plan(registry.geometry(s), np.zeros(ws, np.float32), m, y_blocked)


@pytest.mark.parametrize("xs, ws, pad, groups, m, yblk, res", BLOCK_CASES, ids=lambda v: str(v).replace(" ", ""))
def test_per_thread_blocks_every_isa(xs, ws, pad, groups, m, yblk, res, isa, rng):
    """Calls that run as per-thread tile blocks match the float64 reference (with bias, residual
    and ReLU in the epilogue) within the documented bound."""
    x, w, b = conv_data(rng, *xs, ws[0], ws[1], ws[2], ws[3])
    s = pycnn.ops.ConvShape(xs, ws, 1, pad, 1, groups)
    r = rng.standard_normal(s.out_shape, dtype=np.float32) if res else None
    algo = f"winograd_f{m}"
    with num_threads(2):
        plan = _plan(xs, ws, pad, groups, m, yblk)
        assert plan["blocks"] and plan["threads"] == 2, plan
        conv = pycnn.prepare_conv(w, b, 1, pad, groups=groups, algo=algo, activation="relu")
        call = conv.bind([xs], None, layout=(layout.Y_BLOCKED, algo) if yblk else (0, None))
        y = call(x, r) if res else call(x)
    y = unblk(y) if yblk else y
    ref = reference.conv2d(x.astype(np.float64), w.astype(np.float64), b.astype(np.float64), 1, pad, 1, groups)
    if res:
        ref = ref + r
    err = np.abs(y - np.maximum(ref, 0)).max() / np.abs(ref).max()
    assert err <= REL_BOUND[m, ws[2], ws[3]], err


def test_blocks_plan():
    """Where the blocks run and where the chunks shared by all threads do instead: 49 tiles (25
    per thread, under two vector groups of 16 on avx512) and F4's U on 512 channels @7 (36 MiB,
    which every block would read) take the chunks, and so do calls whose blocks would read more
    bytes of U than the chunks move in V and M; panels narrow where a whole one's V would not fit
    in L2; one thread takes blocks where U is read no more often."""
    with num_threads(2):
        if _C.get_isa() == "avx512":
            assert not _plan((1, 32, 28, 28), (32, 32, 3, 3), 1, 1, 4)["blocks"]
            assert _plan((2, 256, 32, 32), (32, 256, 3, 3), 1, 1, 4)["panel"] == 32
            assert _plan((2, 64, 32, 32), (64, 64, 3, 3), 1, 1, 4)["panel"] == 48
            assert _plan((8, 128, 28, 28), (128, 128, 3, 3), 1, 1, 4)["blocks"]  # U read 10 times: 0.82x V and M
            assert not _plan((8, 256, 14, 14), (256, 256, 3, 3), 1, 1, 4)["blocks"]  # U read 4 times: 2.0x V and M
        assert not _plan((8, 512, 7, 7), (512, 512, 3, 3), 1, 1, 4)["blocks"]
        assert not _plan((1, 256, 56, 56), (256, 256, 3, 3), 1, 1, 4)["blocks"]  # U read 8 times: 2.6x V and M
    with num_threads(1):
        assert _plan((1, 32, 28, 28), (32, 32, 3, 3), 1, 1, 4)["blocks"]
    with pytest.raises(ValueError, match="w: expected"):
        _C.winograd_plan(
            registry.geometry(pycnn.ops.ConvShape((1, 3, 8, 8), (4, 3, 3, 3), 1, 1, 1, 1)),
            np.zeros((4, 2, 3, 3), np.float32),
            4,
        )


@pytest.mark.parametrize("m, R, S", [(2, 3, 3), (4, 3, 3), (6, 3, 3), (4, 5, 5), (4, 1, 7)])
def test_empty_batch_every_isa(m, R, S, isa):
    """A batch of none gives an empty result on both schedules' planning (no tiles to cut)."""
    x = np.zeros((0, 4, 9, 9), np.float32)
    w = np.ones((8, 4, R, S), np.float32)
    pad = (R // 2, S // 2)
    y = pycnn.prepare_conv(w, None, 1, pad, algo=f"winograd_f{m}")(x)
    assert y.shape == (0, 8, 9, 9)
    assert pycnn.conv2d(x, w, None, 1, pad, algo=f"winograd_f{m}").shape == (0, 8, 9, 9)
    with num_threads(1):
        assert not _plan(x.shape, w.shape, pad, 1, m)["blocks"]
