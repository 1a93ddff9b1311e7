"""Channel-blocked activations (NCHW16c, pycnn/layout.py): the reorders, the kernels that read and
write the layout (direct_oc, Winograd), their checks, and the Graph plan that uses them."""

import numpy as np
import pytest

import pycnn
from conftest import assert_close, assert_conv_close, blk, conv_data, num_threads, unblk
from pycnn import _C, Graph, Node, layout, reference
from pycnn.graph import pad_channels


def ref_conv(x, w, b, stride=1, padding=0, residual=None, relu=True):
    y = reference.conv2d(
        x.astype(np.float64),
        w.astype(np.float64),
        None if b is None else b.astype(np.float64),
        stride,
        padding,
        1,
        1,
        None,
    )
    if residual is not None:
        y = y + residual
    return np.where(y < 0, 0.0, y) if relu else y  # NaN stays NaN


def bound(algo, w, b, x_shape, stride=1, padding=0, bits=0, relu=True):
    """A bound PreparedConv call with these layout bits (what a Graph step holds)."""
    conv = pycnn.prepare_conv(w, b, stride=stride, padding=padding, activation="relu" if relu else None, algo=algo)
    s = pycnn.ops.ConvShape(x_shape, w.shape, stride, padding, 1, 1)
    return conv.bind([x_shape], None, layout=(bits, algo)), (s.N, s.K, s.Ho, s.Wo)


@pytest.mark.parametrize("shape", [(1, 16, 1, 1), (2, 32, 5, 7), (3, 48, 13, 3), (1, 64, 17, 17)])
def test_reorders_match_numpy_and_round_trip(isa, rng, shape):
    x = rng.standard_normal(shape, dtype=np.float32)
    x[0, 0, 0, 0] = np.nan
    b = _C.to_blocked16(x)
    assert b.shape == (shape[0], shape[1] // 16, shape[2], shape[3], 16)
    np.testing.assert_array_equal(b, blk(x))
    np.testing.assert_array_equal(_C.from_blocked16(b), x)


def test_reorder_checks():
    with pytest.raises(ValueError, match="x: the channel count must be a multiple of 16"):
        _C.to_blocked16(np.zeros((1, 12, 2, 2), np.float32))
    with pytest.raises(ValueError, match="x: expected 4 dimensions"):
        _C.to_blocked16(np.zeros((12, 2, 2), np.float32))
    with pytest.raises(ValueError, match="y: expected a channel-blocked"):
        _C.from_blocked16(np.zeros((1, 1, 2, 2, 8), np.float32))


# (N, C, K, H, W): pixel counts that leave partial tiles, one and several channel chunks (528 >
# 256 channels per chunk on avx512), 16..96 outputs (one, two and three 16-channel blocks); an odd
# number of blocks (48, 80, 240) on avx512 merges the last block into the kblock before it (x and
# y blocked), its rows of 14, 23 (tiles of 12 and 11) and 1 pixels cut into register blocks <= 9.
POINTWISE = [
    (1, 16, 16, 1, 3),
    (2, 32, 48, 5, 7),
    (1, 64, 32, 14, 14),
    (3, 48, 96, 3, 50),
    (2, 528, 48, 5, 5),
    (1, 16, 80, 3, 14),
    (2, 16, 240, 2, 23),
    (1, 16, 48, 1, 1),
]


@pytest.mark.parametrize("N,C,K,H,W", POINTWISE)
@pytest.mark.parametrize("bits", [1, 2, 3])
def test_direct_oc_pointwise_layouts(isa, rng, N, C, K, H, W, bits):
    """1x1 convs with x and/or y blocked, without and with a residual in either layout, every
    output written (out pre-filled with NaN)."""
    x, w, b = conv_data(rng, N, C, H, W, K, C, 1, 1)
    r = rng.standard_normal((N, K, H, W), dtype=np.float32)
    call, yshape = bound("direct_oc", w, b, x.shape, bits=bits)
    xin = blk(x) if bits & 1 else x
    for res in (None, r, blk(r)):
        want = ref_conv(x, w, b, residual=None if res is None else r)
        out = np.full(blk(want).shape if bits & 2 else want.shape, np.nan, np.float32)
        y = call(xin, res, out)
        assert y is out or np.shares_memory(y, out)
        assert_close(
            unblk(y) if bits & 2 else y, want, what=f"{isa} bits {bits} res {None if res is None else res.ndim}"
        )


# (C, K, H, W): pixel runs that the blocked pointwise path cuts into near-equal register blocks
# (up to 14 pixels, or 9 where a last 16-channel block is merged: K = 48, 80 on avx512): 19 pixels
# as 7 + 6 + 6, 29 as 10 + 10 + 9, one pixel, and runs split between two threads' bands; 528
# channels run as several channel chunks (sums in the band buffer, the last chunk's tiles storing
# y) over 7-wide rows cut across (21 pixels as 11 + 10).
POINTWISE_BANDS = [(16, 48, 1, 19), (32, 32, 1, 29), (16, 80, 1, 1), (48, 48, 9, 13), (16, 16, 23, 5), (528, 48, 3, 7)]


@pytest.mark.parametrize("C,K,H,W", POINTWISE_BANDS)
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("bias", [True, False])
def test_direct_oc_pointwise_blocked_bands(isa, rng, C, K, H, W, threads, bias):
    """x and y blocked: the tiles start from the bias (or zero) or the band buffer's sums, add a residual,
    apply ReLU as one max and store; NaN and Inf in x propagate as IEEE says (an Inf times a zero
    weight is NaN), every output written (out pre-filled with NaN)."""
    x, w, b = conv_data(rng, 2, C, H, W, K, C, 1, 1, bias=bias)
    x[0, 3, 0, 0] = np.nan
    x[1, 5, H - 1, W - 1] = np.inf
    w[:, 5] = np.abs(w[:, 5])  # the Inf reaches every output as +Inf ...
    w[K - 1, 5] = 0.0  # ... except the last channel's: Inf * 0 = NaN
    r = rng.standard_normal((2, K, H, W), dtype=np.float32)
    call, _ = bound("direct_oc", w, b, x.shape, bits=3)
    with num_threads(threads):
        for res in (None, r):
            with np.errstate(invalid="ignore"):
                want = ref_conv(x, w, b, residual=res)
            out = np.full(blk(want).shape, np.nan, np.float32)
            y = call(blk(x), None if res is None else blk(res), out)
            assert_close(unblk(y), want, what=f"{isa} threads {threads} res {res is not None}")


@pytest.mark.parametrize("bits", [1, 3])
def test_direct_oc_strided_pointwise_reads_blocked_x(isa, rng, bits):
    """ResNet's downsample (1x1 stride 2) on a blocked x: subsampled in the blocked layout."""
    x, w, b = conv_data(rng, 3, 32, 9, 11, 48, 32, 1, 1)
    r = rng.standard_normal((3, 48, 5, 6), dtype=np.float32)
    call, _ = bound("direct_oc", w, b, x.shape, stride=2, bits=bits)
    y = call(blk(x), blk(r))
    assert_close(unblk(y) if bits & 2 else y, ref_conv(x, w, b, 2, residual=r))


@pytest.mark.parametrize("R,stride,pad", [(3, 1, 1), (3, 2, 1), (7, 2, 3), (1, 2, 0), (5, 1, 2)])
@pytest.mark.parametrize("C", [24, 80])
def test_direct_oc_writes_blocked_y_for_any_window(isa, rng, R, stride, pad, C):
    """A blocked y (and residual in either layout) from windows whose border tiles skip the
    padding: with one channel chunk the tiles store y themselves (a border tile after its last
    range of taps), with several (C = 80) the band's sums go through the epilogue."""
    x, w, b = conv_data(rng, 2, C, 13, 12, 32, C, R, R)
    call, (N, K, Ho, Wo) = bound("direct_oc", w, b, x.shape, stride=stride, padding=pad, bits=2)
    r = rng.standard_normal((N, K, Ho, Wo), dtype=np.float32)
    assert_close(unblk(call(x)), ref_conv(x, w, b, stride, pad))
    call, _ = bound("direct_oc", w, b, x.shape, stride=stride, padding=pad, bits=6)
    for res in (blk(r), r):
        if res is r:
            call, _ = bound("direct_oc", w, b, x.shape, stride=stride, padding=pad, bits=2)
        out = np.full((N, K // 16, Ho, Wo, 16), np.nan, np.float32)
        assert_close(unblk(call(x, res, out)), ref_conv(x, w, b, stride, pad, residual=r), what=f"res {res.ndim}")


# (C, K, R, stride, pad, dilation): windows read from a blocked x (DenseNet's 1x1 -> 3x3): border
# tiles, strides 1, 2 and 3 (compiled in, run time), 4-sided padding, dilation, several channel
# chunks (C = 272 on a 3x3: 8192 / (9 * 32) = 28 channels per chunk, rounded up to 32), a last
# output block of 16 (K = 48: no merging, that is for 1x1s only) and K = 24 (NCHW y only).
WINDOWED_X = [
    (32, 32, 3, 1, 1, 1),
    (16, 48, 3, 2, 1, 1),
    (48, 24, 5, 1, 2, 1),
    (16, 32, 7, 3, 3, 1),
    (32, 16, 3, 1, (0, 2, 1, 3), 1),
    (16, 32, 3, 1, 2, 2),
    (272, 32, 3, 1, 1, 1),
]


@pytest.mark.parametrize("C,K,R,stride,pad,dil", WINDOWED_X)
@pytest.mark.parametrize("threads", [1, 2])
def test_direct_oc_reads_blocked_x_for_any_window(isa, rng, C, K, R, stride, pad, dil, threads):
    """A blocked x under a window with padding, strides and dilation, y in either layout and a
    residual in y's, every output written (out pre-filled with NaN)."""
    with num_threads(threads):
        x, w, b = conv_data(rng, 2, C, 11, 10, K, C, R, R)
        conv = pycnn.prepare_conv(w, b, stride=stride, padding=pad, dilation=dil, activation="relu", algo="direct_oc")
        s = pycnn.ops.ConvShape(x.shape, w.shape, stride, pad, dil, 1)
        r = rng.standard_normal((s.N, s.K, s.Ho, s.Wo), dtype=np.float32)
        want = np.maximum(reference.conv2d(x, w, b, stride, pad, dil, 1, None) + r, 0)
        for bits in (1, 3, 7) if K % 16 == 0 else (1,):
            call = conv.bind([x.shape], None, layout=(bits, "direct_oc"))
            res = blk(r) if bits & 4 else r
            out = np.full(blk(want).shape if bits & 2 else want.shape, np.nan, np.float32)
            y = call(blk(x), res, out)
            assert_conv_close(unblk(y) if bits & 2 else y, want, "direct_oc", what=f"{isa} bits {bits}")


@pytest.mark.parametrize("algo", ["winograd_f2", "winograd_f4", "winograd_f6"])
@pytest.mark.parametrize("N,C,K,H,W", [(1, 16, 16, 7, 7), (3, 8, 48, 13, 10), (2, 32, 160, 9, 17)])
def test_winograd_writes_blocked_y(isa, rng, algo, N, C, K, H, W):
    """Partial tiles, tile groups across images, 1..10 channel blocks, group blocks of 8 and a
    remainder (2 x 9 x 17 maps: 2 x 5 x 9 F2 tiles = 90 = 5 full groups of 16 + 10)."""
    x, w, b = conv_data(rng, N, C, H, W, K, C, 3, 3)
    call, yshape = bound(algo, w, b, x.shape, padding=1, bits=2)
    out = np.full((N, K // 16, H, W, 16), np.nan, np.float32)
    call(x, None, out)
    assert_conv_close(unblk(out), ref_conv(x, w, b, 1, 1), algo, what=f"{isa} {algo}")


@pytest.mark.parametrize(
    "algo,R,stride,pad,C,xbits",
    [
        ("direct_oc", 3, 1, 1, 24, 0),
        ("direct_oc", 3, 2, 1, 80, 0),  # several channel chunks: the band's sums through the epilogue
        ("direct_oc", 1, 1, 0, 32, 1),  # blocked x, 1x1
        ("direct_oc", 1, 2, 0, 32, 1),  # strided 1x1: chunks of subsampled images
        ("winograd_f2", 3, 1, 1, 16, 0),
        ("winograd_f4", 3, 1, 1, 8, 0),
    ],
)
@pytest.mark.parametrize("N", [1, 2, 3])
def test_blocked_y_into_a_slice_of_a_wider_array(isa, rng, algo, R, stride, pad, C, xbits, N):
    """out= a channel slice of a wider blocked array (a Graph's concat at batch > 1: its images
    apart by the wide array's image): the slice gets y, nothing else is written."""
    x, w, b = conv_data(rng, N, C, 9, 11, 32, C, R, R)
    call, (N, K, Ho, Wo) = bound(algo, w, b, x.shape, stride=stride, padding=pad, bits=2 | xbits)
    assert call.writes_strided_out
    wide = np.full((N, 5, Ho, Wo, 16), np.nan, np.float32)
    out = wide[:, 1:3]
    assert out.flags.c_contiguous == (N == 1)
    got = call(blk(x) if xbits else x, None, out)
    assert np.shares_memory(got, wide)
    want = ref_conv(x, w, b, stride, pad)
    if algo.startswith("winograd"):
        assert_conv_close(unblk(wide[:, 1:3]), want, algo, what=f"{isa} {algo}")
    else:
        assert_close(unblk(wide[:, 1:3]), want)
    assert np.isnan(wide[:, 0]).all() and np.isnan(wide[:, 3:]).all()


def test_strided_out_checks(rng):
    x, w, b = conv_data(rng, 2, 32, 6, 6, 32, 32, 3, 3)
    wide = np.zeros((2, 4, 6, 6, 16), np.float32)
    call, _ = bound("direct_oc", w, b, x.shape, padding=1, bits=2)
    with pytest.raises(ValueError, match="out: images further apart than an image need"):
        call(x, np.zeros((2, 32, 6, 6), np.float32), wide[:, :2])  # with a residual
    with pytest.raises(ValueError, match="out: expected a C-contiguous array, or one whose images alone"):
        call(x, None, np.zeros((2, 2, 6, 12, 16), np.float32)[:, :, :, ::2])
    dw = pycnn.prepare_conv(rng.standard_normal((32, 1, 3, 3), dtype=np.float32), padding=1, groups=32)
    dcall = dw.bind([x.shape], None, layout=(2, "depthwise_c16"))
    assert not dcall.writes_strided_out
    with pytest.raises(ValueError, match="out: images further apart than an image need"):
        dcall(x, None, wide[:, :2])
    ncall, _ = bound("im2col", w, b, x.shape, padding=1)
    assert not getattr(ncall, "writes_strided_out", False)
    with pytest.raises(ValueError, match="out: expected a C-contiguous float32 array"):
        ncall(x, None, np.zeros((2, 64, 6, 6), np.float32)[:, :32])


def test_blocked_paths_propagate_nan(rng):
    """A NaN in x reaches exactly the outputs of its pixel (1x1) through blocked x, y and
    residual; ReLU keeps it."""
    x, w, b = conv_data(rng, 1, 32, 6, 6, 32, 32, 1, 1)
    x[0, 5, 2, 3] = np.nan
    r = rng.standard_normal((1, 32, 6, 6), dtype=np.float32)
    r[0, 7, 0, 0] = np.inf
    call, _ = bound("direct_oc", w, b, x.shape, bits=3)
    y = unblk(call(blk(x), blk(r)))
    assert_close(y, ref_conv(x, w, b, residual=r))
    assert np.isnan(y[0, :, 2, 3]).all() and np.isnan(y).sum() == 32 and y[0, 7, 0, 0] == np.inf


def test_bind_and_call_check_layouts(rng):
    x, w, b = conv_data(rng, 1, 32, 6, 6, 32, 32, 1, 1)
    w3 = conv_data(rng, 1, 32, 6, 6, 32, 32, 3, 3)[1]
    with pytest.raises(ValueError, match="layout: channel-blocked tensors need direct_oc"):
        bound("im2col", w, b, x.shape, bits=1)
    x24, w24 = conv_data(rng, 1, 24, 6, 6, 32, 24, 3, 3)[:2]
    with pytest.raises(ValueError, match="layout"):  # a blocked x of 24 channels
        bound("direct_oc", w24, b, x24.shape, padding=1, bits=1)
    with pytest.raises(ValueError, match="layout"):  # a blocked y with 24 outputs
        bound("direct_oc", w[:24], b[:24], x.shape, bits=2)
    with pytest.raises(ValueError, match="layout"):  # Winograd reads NCHW only
        bound("winograd_f2", w3, b, x.shape, padding=1, bits=3)
    with pytest.raises(ValueError, match="layout"):
        pycnn.prepare_conv(w, b, algo="direct_oc")._handle("direct_oc").bind(
            b, [1, 32, 6, 6], 1, 1, 0, 0, 1, 1, 6, 6, True, 0, 8
        )
    call, _ = bound("direct_oc", w, b, x.shape, bits=1)
    with pytest.raises(ValueError, match=r"x: expected shape \(1, 2, 6, 6, 16\)"):
        call(x)  # NCHW given where the call was bound to a blocked x
    with pytest.raises(ValueError, match="residual: expected the output's shape"):
        call(blk(x), np.zeros((1, 32, 6, 5), np.float32))
    with pytest.raises(ValueError, match=r"out: expected shape \(1, 32, 6, 6\)"):
        call(blk(x), None, np.zeros((1, 2, 6, 6, 16), np.float32))
    wcall, _ = bound("winograd_f4", w3, b, x.shape, padding=1, bits=2)
    with pytest.raises(ValueError, match="residual: not supported with a blocked Winograd output"):
        wcall(x, np.zeros((1, 2, 6, 6, 16), np.float32))
    assert wcall.writes_out and wcall.layout == 2 and call.layout == 1


@pytest.mark.parametrize(
    "N,C,H,W,k,s,p,ceil",
    [
        (1, 64, 28, 28, 3, 1, 1, False),
        (2, 32, 15, 13, 3, 2, 0, True),
        (1, 16, 7, 7, 2, 2, 0, True),
        (3, 48, 9, 11, 3, 2, 1, False),
        (2, 16, 5, 150, 3, 1, 1, False),  # 3 column passes
        (1, 32, 9, 70, 5, 1, 2, True),  # 2 passes, padded ends
        (1, 16, 68, 70, 66, 1, 0, False),  # window wider than a pass
        (1, 16, 6, 6, 1, 1, 0, False),
        (2, 16, 7, 41, 3, 2, 1, True),  # strided: blocks of outputs inside the columns, borders
        (1, 32, 5, 39, 3, 2, 0, False),
    ],
)
def test_max_pool_on_blocked_tensors(isa, rng, N, C, H, W, k, s, p, ceil):
    """GoogLeNet's pools (3x3/1 pad 1, 3x3/2 ceil, 2x2/2 ceil) on blocked x and y, and stride-1
    pools over several 64-column passes of the separable path, or too wide for it; NaN wins, a
    row of -inf stays -inf."""
    x = rng.standard_normal((N, C, H, W), dtype=np.float32)
    x[0, 3, 2, 2] = np.nan
    x[N - 1, 5, :, W - 1] = -np.inf
    x[N - 1, 6, H - 1, :] = np.inf
    want = reference.max_pool2d(x, (k, k), (s, s), (p, p), ceil).astype(np.float32)
    call = _C.bind_pool2d([N, C, H, W], list(want.shape), k, k, s, s, p, p, True, False, True)
    np.testing.assert_array_equal(call(blk(x)), blk(want))
    with pytest.raises(ValueError, match="channel-blocked shape"):
        call(x)


@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("N", [1, 3])
@pytest.mark.parametrize("H", [23, 30])
def test_blocked_pools_split_over_threads(rng, threads, N, H):
    """The (channel block, output row) items shared over 1-3 threads, 3 or 9 planes (not a
    multiple of the threads), in either order (channel blocks inner from 28 rows up): every output
    written once, each from its own window."""
    C, W = 48, 25
    x = rng.standard_normal((N, C, H, W), dtype=np.float32)
    x[N - 1, 40, H - 1, 24] = np.nan
    want_max = reference.max_pool2d(x, (3, 3), (2, 2), (1, 1), True).astype(np.float32)
    want_avg = reference.avg_pool2d(x, (3, 3), (2, 2), (1, 1), True, False).astype(np.float32)
    mp = _C.bind_pool2d([N, C, H, W], list(want_max.shape), 3, 3, 2, 2, 1, 1, True, False, True)
    ap = _C.bind_pool2d([N, C, H, W], list(want_avg.shape), 3, 3, 2, 2, 1, 1, False, False, True)
    with num_threads(threads):
        np.testing.assert_array_equal(mp(blk(x)), blk(want_max))
        assert_close(unblk(ap(blk(x))), want_avg, atol=1e-6)


def test_blocked_pool_checks():
    with pytest.raises(ValueError, match="layout: channel-blocked pooling needs a multiple of 16 channels"):
        _C.bind_pool2d([1, 24, 4, 4], [1, 24, 2, 2], 2, 2, 2, 2, 0, 0, True, False, True)


@pytest.mark.parametrize(
    "N,C,H,W,k,s,p,ceil",
    [
        (1, 16, 8, 8, 2, 2, 0, False),  # DenseNet's transitions
        (2, 48, 9, 11, 3, 1, 1, False),  # Inception's branch pools
        (1, 32, 5, 7, 3, 2, 1, True),  # padding and ceil_mode's partial last window
        (1, 16, 7, 7, 7, 1, 0, False),
        (2, 16, 6, 37, 3, 1, 1, False),  # blocks of outputs inside the columns, a border each side
        (1, 16, 5, 41, 3, 2, 1, True),  # ... strided, the last window partial
        (1, 16, 4, 30, 2, 2, 0, False),
    ],
)
@pytest.mark.parametrize("cip", [True, False])
def test_avg_pool_on_blocked_tensors(isa, rng, N, C, H, W, k, s, p, ceil, cip):
    """Average pools on blocked x and y with the NCHW kernel's divisors (count_include_pad or
    not); NaN and Inf stay in their windows."""
    x = rng.standard_normal((N, C, H, W), dtype=np.float32)
    x[0, 3, 1, 1], x[N - 1, 17 % C, H - 1, W - 1] = np.nan, np.inf
    want = reference.avg_pool2d(x, (k, k), (s, s), (p, p), ceil, cip).astype(np.float32)
    call = _C.bind_pool2d([N, C, H, W], list(want.shape), k, k, s, s, p, p, False, cip, True)
    assert_close(unblk(call(blk(x))), want, atol=1e-6)
    nchw = _C.bind_pool2d([N, C, H, W], list(want.shape), k, k, s, s, p, p, False, cip)
    assert_close(unblk(call(blk(x))), nchw(x), atol=1e-6)


def test_blocked_batch_norm_kernel(rng):
    x = rng.standard_normal((2, 32, 5, 7), dtype=np.float32)
    x[1, 20, 2, 2] = np.nan
    sc, sh = rng.standard_normal(32, dtype=np.float32), rng.standard_normal(32, dtype=np.float32)
    for relu in (False, True):
        out = np.full(layout.blocked_shape(x.shape), np.nan, np.float32)
        _C.channel_affine_blocked16(blk(x), sc, sh, out, relu)
        want = x * sc[:, None, None] + sh[:, None, None]
        assert_close(unblk(out), np.maximum(want, 0) if relu else want)  # NaN kept (np.maximum keeps it too)
    with pytest.raises(ValueError, match="scale/shift"):
        _C.channel_affine_blocked16(blk(x), sc[:16], sh, out, False)
    # x a channel slice of a wider blocked array (a Graph's concat at batch > 1): strided images
    wide = np.full((2, 5, 5, 7, 16), np.nan, np.float32)
    wide[:, 1:3] = blk(x)
    out = np.full(layout.blocked_shape(x.shape), np.nan, np.float32)
    _C.channel_affine_blocked16(wide[:, 1:3], sc, sh, out, True)
    assert_close(unblk(out), np.maximum(x * sc[:, None, None] + sh[:, None, None], 0))
    with pytest.raises(ValueError, match="x: expected a C-contiguous array, or one whose images alone"):
        _C.channel_affine_blocked16(np.zeros((2, 2, 5, 14, 16), np.float32)[:, :, :, ::2], sc, sh, out, True)
    with pytest.raises(ValueError, match="out: expected x's shape"):
        _C.channel_affine_blocked16(blk(x), sc, sh, out[:1], True)


def inception_graph(C=32, H=8, pool="max_pool2d"):
    """Two Inception-style blocks (1x1 | 1x1 -> 3x3 | 1x1 -> 3x3 | 3x3/1 max pool -> 1x1,
    concatenated) between a stem and global pooling: blocked concats and pools."""
    rng = np.random.default_rng(3)

    def conv(name, src, cin, cout, k):
        return [
            Node(
                name,
                "conv2d",
                [src],
                attrs=dict(padding=k // 2),
                params={
                    "weight": rng.standard_normal((cout, cin, k, k)) / np.sqrt(cin * k * k),
                    "bias": rng.standard_normal(cout) * 0.1,
                },
            ),
            Node(name + ".r", "relu", [name]),
        ]

    nodes = conv("stem", "x", 3, C, 3)
    src, cin = "stem.r", C
    for i, widths in enumerate(((16, 32, 16, 16), (32, 16, 32, 16))):
        p = f"i{i}"
        nodes += conv(f"{p}.b1", src, cin, widths[0], 1)
        nodes += conv(f"{p}.b2a", src, cin, 16, 1) + conv(f"{p}.b2", f"{p}.b2a.r", 16, widths[1], 3)
        nodes += conv(f"{p}.b3a", src, cin, 16, 1) + conv(f"{p}.b3", f"{p}.b3a.r", 16, widths[2], 3)
        nodes += [Node(f"{p}.pool", pool, [src], attrs=dict(kernel=3, stride=1, padding=1))]
        nodes += conv(f"{p}.b4", f"{p}.pool", cin, widths[3], 1)
        nodes += [Node(f"{p}.cat", "concat", [f"{p}.b1.r", f"{p}.b2.r", f"{p}.b3.r", f"{p}.b4.r"], attrs=dict(axis=1))]
        src, cin = f"{p}.cat", sum(widths)
    nodes += [Node("gap", "global_avg_pool2d", [src]), Node("flat", "flatten", ["gap"])]
    return Graph({"x": (None, 3, H, H)}, nodes, ["flat"], name="inception")


@pytest.mark.parametrize("N", [1, 3])
@pytest.mark.parametrize("pool", ["max_pool2d", "avg_pool2d"])
def test_graph_blocks_inception_concats_and_pools(rng, N, pool):
    """The first block's concat (read by the second block's 1x1 convs and pool: GoogLeNet's max,
    Inception v3's padded average) is blocked, its branches writing their channel blocks
    (straight into the concat at batch 1); the second's, read by global pooling, is not. The
    1x1s reading it blocked write their outputs blocked for the 3x3s after them."""
    x = rng.standard_normal((N, 3, 8, 8), dtype=np.float32)
    g = inception_graph(pool=pool).set_algo("direct_oc")  # every conv can write the layout (not im2col)
    lay = bound_layouts(g, x)
    X, Y = layout.X_BLOCKED, layout.Y_BLOCKED
    assert lay["i0.cat"] == (X | Y, "concat") and lay["i1.pool"] == (X | Y, pool)
    assert "i1.cat" not in lay
    assert all(lay[f"i0.{b}"][0] & Y for b in ("b1", "b2", "b3", "b4"))
    for i in ("i0", "i1"):  # each 1x1 -> 3x3 branch: the 3x3 reads the 1x1's blocked output
        assert lay[f"{i}.b2a"][0] == X | Y and lay[f"{i}.b2"][0] & X and lay[f"{i}.b3"][0] & X
    assert lay["i1.b2"][0] == X  # into the NCHW concat
    y = g(x)
    np.testing.assert_allclose(y, g.run_reference(x), rtol=1e-4, atol=1e-4)
    layout.ENABLED = False
    try:
        g2 = inception_graph(pool=pool).set_algo("direct_oc")
        np.testing.assert_allclose(g2(x), y, rtol=1e-5, atol=1e-5)
    finally:
        layout.ENABLED = True


def bottleneck_graph(C=64, mid=16, H=10, blocks=2, head=True):
    """ResNet-style bottlenecks (1x1 -> 3x3 -> 1x1 + shortcut, ReLU; the first block's shortcut a
    1x1 projection, as ResNet's downsample) after a 3x3 stem and a max pool, then global pooling:
    the chain pycnn.layout blocks."""
    rng = np.random.default_rng(7)

    def conv(name, src, cin, cout, k, **attrs):
        return Node(
            name,
            "conv2d",
            [src],
            attrs=dict(padding=k // 2, **attrs),
            params={
                "weight": rng.standard_normal((cout, cin, k, k)) / np.sqrt(cin * k * k),
                "bias": rng.standard_normal(cout) * 0.1,
            },
        )

    nodes = [
        conv("stem", "x", 3, C, 3),
        Node("stem_relu", "relu", ["stem"]),
        Node("pool", "max_pool2d", ["stem_relu"], attrs=dict(kernel=2)),
    ]
    src = "pool"
    for i in range(blocks):
        p = f"b{i}"
        nodes += [
            conv(f"{p}.c1", src, C, mid, 1),
            Node(f"{p}.r1", "relu", [f"{p}.c1"]),
            conv(f"{p}.c2", f"{p}.r1", mid, mid, 3),
            Node(f"{p}.r2", "relu", [f"{p}.c2"]),
            conv(f"{p}.c3", f"{p}.r2", mid, C, 1),
        ]
        short = src
        if i == 0:
            nodes.append(conv(f"{p}.proj", src, C, C, 1))
            short = f"{p}.proj"
        nodes += [Node(f"{p}.add", "add", [f"{p}.c3", short]), Node(f"{p}.out", "relu", [f"{p}.add"])]
        src = f"{p}.out"
    outputs = [src]
    if head:
        nodes += [Node("gap", "global_avg_pool2d", [src]), Node("flat", "flatten", ["gap"])]
        outputs = ["flat"]
    return Graph({"x": (None, 3, 2 * H, 2 * H)}, nodes, outputs, name="bottlenecks")


def bound_layouts(g, x):
    plan = g.bound_plan(g.feed(x))
    return {g.plan_steps[i].names[0]: v for i, v in plan.layouts.items()}


def test_graph_blocks_the_bottleneck_chain_and_matches_nchw(rng):
    x = rng.standard_normal((2, 3, 20, 20), dtype=np.float32)
    g = bottleneck_graph()
    lay = bound_layouts(g, x)
    X, Y, R = layout.X_BLOCKED, layout.Y_BLOCKED, layout.RES_BLOCKED
    # The stem conv writes its output blocked for the pool, which writes the blocked stream.
    assert lay["stem"] == (Y, "direct_oc") and lay["pool"] == (X | Y, "max_pool2d")
    # The 3x3 (16 -> 16: direct_oc by the ck_per_tile rule, as DenseNet's) reads the 1x1's output
    # blocked; a Winograd 3x3 (ResNet-50's) reads NCHW. Either writes blocked for the 1x1 after it.
    windowed = X if lay["b0.c2"][1] == "direct_oc" else 0
    assert lay["b0.c1"] == (X | (Y if windowed else 0), "direct_oc")
    assert lay["b0.c2"][0] == Y | windowed
    assert lay["b0.c3"] == (X | Y, "direct_oc")  # read as the projection's residual
    assert lay["b0.proj"] == (X | Y | R, "direct_oc")  # the join add fused into it, as in ResNet
    assert lay["b1.c1"] == (X | (Y if windowed else 0), "direct_oc")
    # the last output: blocked at no cost (its conv reads a blocked x), read so by global pooling
    assert lay["b1.c3"] == (X | Y | R, "direct_oc") and lay["gap"] == (X, "global_avg_pool2d")
    y = g(x)
    assert y.shape == (2, 64)
    np.testing.assert_allclose(y, g.run_reference(x), rtol=1e-4, atol=1e-4)
    rows = {r[0]: r for r in g.profile(x, runs=1, warmup=0).rows}
    assert rows["b0.proj+b0.add+b0.out"][5] == "direct_oc [16c: x,y,res]"
    assert rows["pool"][5] == "max_pool2d [16c: x,y]"
    g2 = bottleneck_graph()
    layout.ENABLED = False
    try:
        assert bound_layouts(g2, x) == {}
        np.testing.assert_allclose(g2(x), y, rtol=1e-5, atol=1e-5)
    finally:
        layout.ENABLED = True


def test_graph_blocks_a_stem_chain_of_windowed_convs(rng):
    """Inception's stem: graph input -> 3x3/2 -> 3x3 (valid) -> 3x3 -> max pool -> 1x1, direct_oc.
    The first conv reads the graph's NCHW input and writes its output blocked, since a conv with a
    window reads it; the chain after it goes blocked one conv per round of the plan (each 3x3
    reads x and writes y blocked, the pool both), and the result matches the reference."""

    def conv(name, src, cin, cout, stride=1, padding=0):
        w = rng.standard_normal((cout, cin, 3, 3)) / np.sqrt(cin * 9)
        return Node(name, "conv2d", [src], attrs=dict(stride=stride, padding=padding),
                    params={"weight": w, "bias": rng.standard_normal(cout) * 0.1})  # fmt: skip

    nodes = [
        conv("c1", "x", 3, 32, stride=2),
        Node("r1", "relu", ["c1"]),
        conv("c2", "r1", 32, 32),
        Node("r2", "relu", ["c2"]),
        conv("c3", "r2", 32, 64, padding=1),
        Node("r3", "relu", ["c3"]),
        Node("pool", "max_pool2d", ["r3"], attrs=dict(kernel=3, stride=2)),
        Node("c4", "conv2d", ["pool"], params={"weight": rng.standard_normal((32, 64, 1, 1)) / 8}),
        Node("gap", "global_avg_pool2d", ["c4"]),
        Node("flat", "flatten", ["gap"]),
    ]
    g = Graph({"x": (None, 3, 37, 37)}, nodes, ["flat"], name="stem_chain")
    g.set_algo("direct_oc")
    x = rng.standard_normal((2, 3, 37, 37), dtype=np.float32)
    lay = bound_layouts(g, x)
    X, Y = layout.X_BLOCKED, layout.Y_BLOCKED
    assert lay["c1"] == (Y, "direct_oc")
    assert lay["c2"] == (X | Y, "direct_oc") and lay["c3"] == (X | Y, "direct_oc")
    assert lay["pool"] == (X | Y, "max_pool2d") and lay["c4"] == (X | Y, "direct_oc")
    np.testing.assert_allclose(g(x), g.run_reference(x), rtol=1e-4, atol=1e-4)


def test_graph_blocks_a_concat_that_a_windowed_conv_reads(rng, monkeypatch):
    """Inception's Mixed_5d -> Mixed_6a: two branch convs, their concat, a 3x3/2 conv reading it.
    The concat is blocked (its branches write blocked sums at no cost, the 3x3/2 on direct_oc
    reads them); with WINDOWED_CONCATS off it stays NCHW. Both match the reference."""

    def conv(name, src, cin, cout, stride=1):
        w = rng.standard_normal((cout, cin, 3, 3)) / np.sqrt(cin * 9)
        return Node(name, "conv2d", [src], attrs=dict(stride=stride, padding=1),
                    params={"weight": w, "bias": rng.standard_normal(cout) * 0.1})  # fmt: skip

    nodes = [
        conv("a", "x", 16, 32),
        conv("b", "x", 16, 16),
        Node("cat", "concat", ["a", "b"], attrs=dict(axis=1)),
        conv("c", "cat", 48, 32, stride=2),
        Node("gap", "global_avg_pool2d", ["c"]),
        Node("flat", "flatten", ["gap"]),
    ]
    x = rng.standard_normal((2, 16, 15, 15), dtype=np.float32)
    X, Y = layout.X_BLOCKED, layout.Y_BLOCKED
    for on in (True, False):
        monkeypatch.setattr(layout, "WINDOWED_CONCATS", on)
        g = Graph({"x": (None, 16, 15, 15)}, nodes, ["flat"], name="concat_windowed")
        g.set_algo("direct_oc")
        lay = bound_layouts(g, x)
        if on:
            assert lay["a"] == (Y, "direct_oc") and lay["b"] == (Y, "direct_oc")
            assert lay["c"] == (X | Y, "direct_oc")
        else:
            assert "a" not in lay and "b" not in lay and not lay.get("c", (0,))[0] & X
        np.testing.assert_allclose(g(x), g.run_reference(x), rtol=1e-4, atol=1e-4)


def test_graph_outputs_and_other_readers_stay_nchw(rng, monkeypatch):
    """A tensor that is a graph output, or that an op which cannot read the layout reads, is
    never blocked; nor is anything when the graph runs one named algorithm. 24 channels are
    blocked only padded to 32 (pycnn/graph/pad_channels.py)."""
    x = rng.standard_normal((1, 3, 20, 20), dtype=np.float32)
    g = bottleneck_graph(head=False)  # the last block's output is the graph's output
    lay = bound_layouts(g, x)
    assert not lay["b1.c3"][0] & layout.Y_BLOCKED
    y = g(x)
    assert y.shape == (1, 64, 10, 10) and y.flags.c_contiguous
    np.testing.assert_allclose(y, g.run_reference(x), rtol=1e-4, atol=1e-4)
    g.set_algo("im2col")
    assert bound_layouts(g, x) == {}
    monkeypatch.setattr(pad_channels, "ENABLED", False)
    g = bottleneck_graph(C=24, mid=16)  # 24 channels: no 16-channel blocks for the stream
    lay = bound_layouts(g, x)
    assert "pool" not in lay and "b0.c1" not in lay and "b0.proj" not in lay
    np.testing.assert_allclose(g(x), g.run_reference(x), rtol=1e-4, atol=1e-4)
    monkeypatch.setattr(pad_channels, "ENABLED", True)
    g = bottleneck_graph(C=24, mid=16)  # the stream padded to 32: blocked from the pool on
    lay = bound_layouts(g, x)
    assert lay["pool"] == (layout.X_BLOCKED | layout.Y_BLOCKED, "max_pool2d") and lay["b0.c1"][0] & layout.X_BLOCKED
    assert g._padded["pool"] == 32
    np.testing.assert_allclose(g(x), g.run_reference(x), rtol=1e-4, atol=1e-4)


def test_zoo_plans():
    """ResNet-50 keeps its whole residual stream blocked (every 1x1 conv reads a blocked x, from
    the stem conv on); GoogLeNet blocks its Inception concats and pools where every
    branch can write the layout; ResNet-18 (no 1x1 chains) keeps NCHW everywhere."""
    for name, shape in (("resnet50", (1, 3, 224, 224)), ("googlenet", (1, 3, 224, 224)), ("resnet18", (1, 3, 64, 64))):
        g = pycnn.models.get(name)
        lay = bound_layouts(g, np.zeros(shape, np.float32))
        if name == "resnet18":
            assert lay == {}, name
            continue
        if name == "googlenet":
            assert lay["inception3a.concat"] == (layout.X_BLOCKED | layout.Y_BLOCKED, "concat")
            assert lay["inception3b.branch1.conv"][0] & layout.X_BLOCKED
            assert "inception5b.concat" not in lay and "fc" not in lay
            continue
        ones = [s.names[0] for s in g.plan_steps if s.op == "conv2d" and s.fn.weight.shape[2:] == (1, 1)]
        assert len(ones) == 36
        assert [n for n in ones if not lay.get(n, (0,))[0] & layout.X_BLOCKED] == []
        assert lay["maxpool"] == (layout.X_BLOCKED | layout.Y_BLOCKED, "max_pool2d") and "fc" not in lay


def test_graph_reorders_after_an_op_that_cannot_write_blocked(rng):
    """A pool on the graph's input (NCHW) feeding a 1x1 chain: its output is reordered in its
    step; without a chain after the first 1x1 conv it is not."""
    w = [rng.standard_normal((32, 32, 1, 1)) / 6 for _ in range(2)]
    for chain in (True, False):
        nodes = [
            Node("pool", "max_pool2d", ["x"], attrs=dict(kernel=2)),
            Node("a", "conv2d", ["pool"], params={"weight": w[0]}),
            Node("ra", "relu", ["a"]),
            Node(
                "b",
                "conv2d",
                ["ra"],
                attrs=dict(padding=0 if chain else 1),
                params={"weight": w[1] if chain else np.repeat(np.repeat(w[1], 3, 2), 3, 3)},
            ),
            Node("gap", "global_avg_pool2d", ["b"]),
            Node("flat", "flatten", ["gap"]),
        ]
        g = Graph({"x": (None, 32, 12, 12)}, nodes, ["flat"])
        x = rng.standard_normal((2, 32, 12, 12), dtype=np.float32)
        lay = bound_layouts(g, x)
        if chain:
            assert (
                lay["pool"] == (layout.Y_BLOCKED, layout.REORDER) and lay["a"][0] == layout.X_BLOCKED | layout.Y_BLOCKED
            )
            assert {r[0]: r[5] for r in g.profile(x, runs=1, warmup=0).rows}["pool"] == "max_pool2d [16c: y, reordered]"
        else:
            assert lay == {}
        np.testing.assert_allclose(g(x), g.run_reference(x), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("N", [1, 2])
def test_graph_concat_with_a_branch_that_cannot_write_blocked(rng, N):
    """A concat whose inputs are not all blocked (a sigmoid branch) is made in NCHW and
    reordered after; its other branch must then stay NCHW too (a mixed concat would be a copy
    of wrongly laid out data)."""

    def conv(name, src, cin, cout, k=1):
        return [
            Node(
                name,
                "conv2d",
                [src],
                attrs=dict(padding=k // 2),
                params={"weight": rng.standard_normal((cout, cin, k, k)) / np.sqrt(cin * k * k)},
            ),
            Node(name + ".r", "relu", [name]),
        ]

    nodes = (
        conv("stem", "x", 3, 16, 3)
        + conv("a", "stem.r", 16, 16)
        + [
            Node("b", "unary", ["stem.r"], attrs=dict(fn="sigmoid")),
            Node("cat", "concat", ["a.r", "b"], attrs=dict(axis=1)),
        ]
        + conv("c1", "cat", 32, 32)
        + conv("c2", "c1.r", 32, 32)
        + [Node("gap", "global_avg_pool2d", ["c2.r"]), Node("flat", "flatten", ["gap"])]
    )
    g = Graph({"x": (None, 3, 6, 6)}, nodes, ["flat"]).set_algo("direct_oc")
    x = rng.standard_normal((N, 3, 6, 6), dtype=np.float32)
    lay = bound_layouts(g, x)
    assert lay["cat"] == (layout.Y_BLOCKED, layout.REORDER)
    assert "a" not in lay and lay["c1"][0] == layout.X_BLOCKED | layout.Y_BLOCKED
    np.testing.assert_allclose(g(x), g.run_reference(x), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("N", [1, 2])
def test_graph_reordered_concat_of_convs(rng, N):
    """A concat of two convs, one of which cannot write blocked (a grouped 5x5 conv, 4 channels
    per group, on the direct kernel): the concat is made in NCHW (its inputs written straight
    into it at batch 1) and reordered."""

    def conv(name, src, cin, cout, k=1, groups=1):
        return [
            Node(
                name,
                "conv2d",
                [src],
                attrs=dict(padding=k // 2, groups=groups),
                params={"weight": rng.standard_normal((cout, cin // groups, k, k)) / np.sqrt(cin * k * k)},
            ),
            Node(name + ".r", "relu", [name]),
        ]

    nodes = (
        conv("a", "x", 16, 16)
        + conv("b", "x", 16, 48, 5, groups=4)
        + [Node("cat", "concat", ["a.r", "b.r"], attrs=dict(axis=1))]
        + conv("c1", "cat", 64, 32)
        + conv("c2", "c1.r", 32, 32)
        + [Node("gap", "global_avg_pool2d", ["c2.r"]), Node("flat", "flatten", ["gap"])]
    )
    g = Graph({"x": (None, 16, 32, 32)}, nodes, ["flat"])
    x = rng.standard_normal((N, 16, 32, 32), dtype=np.float32)
    assert g.steps[1][0][0] == "b" and g.plan_steps[1].fn.algo_for((N, 16, 32, 32)) == "direct"
    lay = bound_layouts(g, x)
    assert lay["cat"] == (layout.Y_BLOCKED, layout.REORDER) and "a" not in lay and "b" not in lay
    np.testing.assert_allclose(g(x), g.run_reference(x), rtol=1e-4, atol=1e-4)


def random_graph(seed):
    """A random DAG on 8x8 maps of 1x1, 3x3 and depthwise 3x3 convs (some with a fused residual
    add), max and average pools, concats and ReLUs over 16..48 channels, with one or two outputs:
    whatever the plan blocks, the values must not change."""
    rng = np.random.default_rng(seed)
    tensors = [("x", 32)]
    nodes = []
    kinds = ("conv1",) * 7 + ("conv3", "dw3") * 3 + ("maxpool",) * 3 + ("concat",) * 3
    kinds += ("add",) * 2 + ("avgpool", "relu")
    for k in range(14):
        # Mostly chains (the newest tensor), sometimes branches from an older one.
        src, c = tensors[-1] if rng.random() < 0.6 else tensors[rng.integers(len(tensors))]
        kind = kinds[rng.integers(len(kinds))]
        name = f"n{k}"
        if kind in ("conv1", "conv3"):
            K = int(rng.choice([16, 24, 32, 48]))
            r = 1 if kind == "conv1" else 3
            nodes.append(
                Node(
                    name,
                    "conv2d",
                    [src],
                    attrs=dict(padding=r // 2),
                    params={
                        "weight": rng.standard_normal((K, c, r, r)) / np.sqrt(c * r * r),
                        "bias": rng.standard_normal(K) * 0.1,
                    },
                )
            )
            c = K
        elif kind == "dw3":  # depthwise 3x3
            nodes.append(
                Node(
                    name,
                    "conv2d",
                    [src],
                    attrs=dict(padding=1, groups=c),
                    params={"weight": rng.standard_normal((c, 1, 3, 3)) / 3.0, "bias": rng.standard_normal(c) * 0.1},
                )
            )
        elif kind in ("maxpool", "avgpool"):
            nodes.append(
                Node(
                    name,
                    "max_pool2d" if kind == "maxpool" else "avg_pool2d",
                    [src],
                    attrs=dict(kernel=3, stride=1, padding=1),
                )
            )
        elif kind == "concat":
            other, c2 = tensors[rng.integers(len(tensors))]
            if other == src:
                continue
            nodes.append(Node(name, "concat", [src, other], attrs=dict(axis=1)))
            c += c2
        elif kind == "add":
            same = [t for t, cc in tensors if cc == c and t != src]
            if not same:
                continue
            nodes.append(Node(name, "add", [src, same[rng.integers(len(same))]]))
        else:
            nodes.append(Node(name, "relu", [src]))
        tensors.append((name, c))
    names = [t for t, _ in tensors[1:]]
    outputs = [names[-1]] + ([names[rng.integers(len(names) - 1)]] if len(names) > 2 and rng.integers(2) else [])
    return Graph({"x": (None, 32, 8, 8)}, nodes, list(dict.fromkeys(outputs)))


@pytest.mark.parametrize("seed", range(24))
def test_random_graphs_match_the_reference(seed):
    for N in (1, 2):
        g = random_graph(seed)
        x = np.random.default_rng(seed).standard_normal((N, 32, 8, 8), dtype=np.float32)
        ys, refs = g(x), g.run_reference(x)
        if not isinstance(ys, dict):
            ys, refs = {0: ys}, {0: refs}
        for k in ys:
            assert ys[k].shape == refs[k].shape and ys[k].flags.c_contiguous
            scale = max(1.0, float(np.abs(refs[k]).max()))
            np.testing.assert_allclose(ys[k], refs[k], rtol=1e-4, atol=1e-4 * scale, err_msg=f"seed {seed} N {N} {k}")


def test_random_graphs_exercise_the_layouts():
    """The random graphs above do block tensors (else they would test nothing here)."""
    kinds, depthwise = set(), set()
    for seed in range(24):
        g = random_graph(seed)
        for bits, algo in bound_layouts(g, np.zeros((1, 32, 8, 8), np.float32)).values():
            kinds.add(algo if algo in (layout.REORDER, "concat", "max_pool2d") else bits)
            if algo == "depthwise_c16":
                depthwise.add(bits)
    assert {layout.REORDER, "concat", "max_pool2d"} <= kinds and len(kinds) >= 6, kinds
    assert len(depthwise) >= 3, depthwise  # blocked x, y and residual in several combinations


def inverted_residual_graph(C=32, E=96, H=12, blocks=2):
    """MobileNet V2's blocks: 1x1 expand + ReLU -> depthwise 3x3 + ReLU -> 1x1 project, + x."""
    rng = np.random.default_rng(7)
    nodes = [
        Node("stem", "conv2d", ["x"], attrs=dict(padding=1), params={"weight": rng.standard_normal((C, 3, 3, 3)) / 5}),
    ]
    src = "stem"
    for i in range(blocks):
        p = f"b{i}"
        nodes += [
            Node(f"{p}.expand", "conv2d", [src], params={"weight": rng.standard_normal((E, C, 1, 1)) / np.sqrt(C)}),
            Node(f"{p}.relu1", "relu", [f"{p}.expand"]),
            Node(
                f"{p}.dw",
                "conv2d",
                [f"{p}.relu1"],
                attrs=dict(padding=1, groups=E),
                params={"weight": rng.standard_normal((E, 1, 3, 3)) / 3, "bias": rng.standard_normal(E) * 0.1},
            ),
            Node(f"{p}.relu2", "relu", [f"{p}.dw"]),
            Node(f"{p}.project", "conv2d", [f"{p}.relu2"], params={"weight": rng.standard_normal((C, E, 1, 1)) / 10}),
            Node(f"{p}.add", "add", [f"{p}.project", src]),
        ]
        src = f"{p}.add"
    nodes += [Node("gap", "global_avg_pool2d", [src]), Node("flat", "flatten", ["gap"])]
    return Graph({"x": (None, 3, H, H)}, nodes, ["flat"], name="inverted_residuals")


def test_graph_blocks_depthwise_between_pointwise_convs(rng):
    """The expand -> depthwise -> project chain stays channel-blocked: the depthwise conv reads
    and writes NCHW16c itself, so the 1x1 convs on both sides read a blocked x."""
    x = rng.standard_normal((2, 3, 12, 12), dtype=np.float32)
    g = inverted_residual_graph()
    lay = bound_layouts(g, x)
    X, Y, R = layout.X_BLOCKED, layout.Y_BLOCKED, layout.RES_BLOCKED
    assert lay["stem"] == (Y, "direct_oc")
    assert lay["b0.expand"] == (X | Y, "direct_oc")
    assert lay["b0.dw"] == (X | Y, "depthwise_c16")
    assert lay["b0.project"] == (X | Y | R, "direct_oc")
    assert lay["b1.dw"] == (X | Y, "depthwise_c16")
    assert lay["b1.project"] == (X | Y | R, "direct_oc") and lay["gap"] == (X, "global_avg_pool2d")
    np.testing.assert_allclose(g(x), g.run_reference(x), rtol=1e-4, atol=1e-4)
    rows = {r[0]: r for r in g.profile(x, runs=1, warmup=0).rows}
    assert rows["b0.dw+b0.relu2"][5] == "depthwise_c16 [16c: x,y]"


def squeeze_excite_graph(C=32, H=10, gate_first=False):
    """EfficientNet's block: 1x1 expand -> depthwise 3x3 -> squeeze-and-excitation (global average
    pool -> 1x1 + ReLU -> 1x1 -> sigmoid -> x * gate) -> 1x1 project."""
    rng = np.random.default_rng(11)

    def conv(name, src, cin, cout, k=1, groups=1):
        w = rng.standard_normal((cout, cin // groups, k, k)) / np.sqrt(cin // groups * k * k)
        return Node(name, "conv2d", [src], attrs=dict(padding=k // 2, groups=groups), params={"weight": w})

    E = 2 * C
    nodes = [
        conv("stem", "x", 3, C, 3),
        conv("expand", "stem", C, E),
        conv("dw", "expand", E, E, 3, groups=E),
        Node("gap", "global_avg_pool2d", ["dw"]),
        conv("se1", "gap", E, 8),
        Node("se1r", "relu", ["se1"]),
        conv("se2", "se1r", 8, E),
        Node("sig", "unary", ["se2"], attrs=dict(fn="sigmoid")),
        Node("gate", "binary", ["sig", "dw"] if gate_first else ["dw", "sig"], attrs=dict(fn="mul")),
        conv("project", "gate", E, C),
        Node("pool", "global_avg_pool2d", ["project"]),
        Node("flat", "flatten", ["pool"]),
    ]
    return Graph({"x": (None, 3, H, H)}, nodes, ["flat"], name="squeeze_excite")


@pytest.mark.parametrize("gate_first", [False, True])
def test_graph_blocks_squeeze_and_excitation(rng, gate_first):
    """The depthwise output stays blocked through the squeeze (a global average pool reading it
    blocked, NCHW out) and the gate product (blocked in and out), so the project 1x1 reads it
    blocked; the values are the reference's."""
    x = rng.standard_normal((2, 3, 10, 10), dtype=np.float32)
    g = squeeze_excite_graph(gate_first=gate_first)
    lay = bound_layouts(g, x)
    X, Y = layout.X_BLOCKED, layout.Y_BLOCKED
    assert lay["dw"] == (X | Y, "depthwise_c16")
    assert lay["gap"] == (X, "global_avg_pool2d")
    assert lay["gate"] == (X | Y, "binary")
    assert lay["project"][0] & X
    assert "se1" not in lay and "se2" not in lay  # the (N, C, 1, 1) squeeze stays NCHW
    np.testing.assert_allclose(g(x), g.run_reference(x), rtol=1e-4, atol=1e-5)
    x[0, 1, 2, 3] = np.nan  # NaN through the blocked pool and gate, as through NCHW ones
    np.testing.assert_array_equal(np.isnan(g(x)), np.isnan(g.run_reference(x)))


def test_blocked_affine_and_gate_on_two_threads(rng):
    """Large enough for two threads, 3 images (one thread's share of channel blocks crosses an
    image): the batch norm (strided images of a concat slice) and the per-image gate."""
    x = rng.standard_normal((3, 32, 37, 41), dtype=np.float32)
    x[1, 20, 36, 40], x[2, 0, 0, 0] = np.nan, -np.inf
    sc, sh = rng.standard_normal(32, dtype=np.float32), rng.standard_normal(32, dtype=np.float32)
    g = rng.standard_normal(96, dtype=np.float32)
    wide = np.full((3, 4, 37, 41, 16), np.nan, np.float32)
    wide[:, 1:3] = blk(x)
    with num_threads(2):
        out = np.full(layout.blocked_shape(x.shape), np.nan, np.float32)
        _C.channel_affine_blocked16(wide[:, 1:3], sc, sh, out, True)
        assert_close(unblk(out), np.maximum(x * sc[:, None, None] + sh[:, None, None], 0))
        out[:] = np.nan
        _C.channel_scale_blocked16(blk(x), g, out)
        np.testing.assert_array_equal(unblk(out), x * g.reshape(3, 32, 1, 1))


def test_blocked_pool_and_gate_kernels(rng):
    x = rng.standard_normal((2, 32, 5, 7), dtype=np.float32)
    xb = blk(x)
    y = np.full(64, np.nan, np.float32)
    _C.global_avg_pool2d_blocked16(xb, y)
    np.testing.assert_allclose(y, x.mean(axis=(2, 3), dtype=np.float64).reshape(-1), rtol=1e-5, atol=1e-6)
    g = rng.standard_normal(64, dtype=np.float32)
    out = np.full_like(xb, np.nan)
    _C.channel_scale_blocked16(xb, g, out)
    np.testing.assert_array_equal(unblk(out), x * g.reshape(2, 32, 1, 1))
    blocked_msg = r"x: expected a channel-blocked \(N, C/16, H, W, 16\) array, got shape \(2, 32, 5, 7\)"
    with pytest.raises(ValueError, match=blocked_msg):
        _C.global_avg_pool2d_blocked16(x, y)
    with pytest.raises(ValueError, match=r"x: expected a channel-blocked .* got shape \(2, 32, 5, 7\)"):
        _C.channel_scale_blocked16(x, g, out)
    # the gate and a batch norm are one blocked kernel: scale per image and channel, or per channel + shift
    sc, sh = rng.standard_normal(32, dtype=np.float32), rng.standard_normal(32, dtype=np.float32)
    _C.channel_affine_blocked16(xb, sc, sh, out, True)
    want = np.maximum(x * sc.reshape(1, 32, 1, 1) + sh.reshape(1, 32, 1, 1), 0)
    np.testing.assert_allclose(unblk(out), want, rtol=1e-6)
    with pytest.raises(ValueError, match="out: expected"):
        _C.global_avg_pool2d_blocked16(xb, y[:10])
    with pytest.raises(ValueError, match="scale: expected"):
        _C.channel_scale_blocked16(xb, g[:32], out)


def convnext_graph(C=32, H=9, blocks=2):
    """ConvNeXt's blocks on NCHW (as pycnn/io/onnx_fuse.py rewrites them): depthwise 7x7 ->
    LayerNorm over channels -> 1x1 + GELU -> 1x1, + x."""
    rng = np.random.default_rng(13)
    nodes = [Node("stem", "conv2d", ["x"], attrs=dict(padding=1), params={"weight": rng.standard_normal((C, 3, 3, 3))})]
    src = "stem"
    for i in range(blocks):
        p = f"b{i}"
        dw = rng.random((C, 1, 7, 7))
        nodes += [
            Node(f"{p}.dw", "conv2d", [src], attrs=dict(padding=3, groups=C), params={"weight": dw}),
            Node(f"{p}.norm", "channel_norm", [f"{p}.dw"], params={"weight": rng.random(C) + 1, "bias": rng.random(C)}),
            Node(f"{p}.fc1", "conv2d", [f"{p}.norm"], params={"weight": rng.standard_normal((4 * C, C, 1, 1)) / 6}),
            Node(f"{p}.gelu", "unary", [f"{p}.fc1"], attrs=dict(fn="gelu")),
            Node(f"{p}.fc2", "conv2d", [f"{p}.gelu"], params={"weight": rng.standard_normal((C, 4 * C, 1, 1)) / 11}),
            Node(f"{p}.add", "add", [f"{p}.fc2", src]),
        ]
        src = f"{p}.add"
    nodes += [Node("gap", "global_avg_pool2d", [src]), Node("flat", "flatten", ["gap"])]
    return Graph({"x": (None, 3, H, H)}, nodes, ["flat"], name="convnext_blocks")


def test_graph_blocks_layer_norm_over_channels(rng):
    """The LayerNorm over channels reads and writes NCHW16c, so the depthwise conv before it and
    the 1x1 after it stay blocked; the values (and a NaN's reach) are the reference's."""
    x = rng.standard_normal((2, 3, 9, 9), dtype=np.float32)
    g = convnext_graph()
    lay = bound_layouts(g, x)
    X, Y, R = layout.X_BLOCKED, layout.Y_BLOCKED, layout.RES_BLOCKED
    assert lay["b0.dw"] == (X | Y, "depthwise_c16")
    assert lay["b0.norm"] == (X | Y, "channel_norm")
    assert lay["b0.fc1"] == (X | Y, "direct_oc") and lay["b1.fc2"] == (X | Y | R, "direct_oc")
    np.testing.assert_allclose(g(x), g.run_reference(x), rtol=1e-4, atol=1e-4)
    x[1, 0, 4, 4] = np.nan
    np.testing.assert_array_equal(np.isnan(g(x)), np.isnan(g.run_reference(x)))


@pytest.mark.parametrize("shape", [(1, 16, 1, 1), (2, 48, 5, 7), (1, 32, 9, 40)])
def test_blocked_channel_norm_kernel(rng, shape):
    x = (rng.standard_normal(shape) * 2 + 1).astype(np.float32)
    C = shape[1]
    w, b = rng.random(C, dtype=np.float32) + 0.5, rng.standard_normal(C, dtype=np.float32)
    out = np.full(layout.blocked_shape(shape), np.nan, np.float32)
    _C.layer_norm_channels_blocked16(blk(x), w, b, 1e-6, out)
    want = np.moveaxis(reference.layer_norm(np.moveaxis(x, 1, -1).astype(np.float64), -1, 1e-6, w, b), -1, 1)
    assert_close(unblk(out), want, atol=1e-4)
    with pytest.raises(ValueError, match="channel-blocked"):
        _C.layer_norm_channels_blocked16(x, w, b, 1e-6, x.copy())
    with pytest.raises(ValueError, match="weight/bias"):
        _C.layer_norm_channels_blocked16(blk(x), w[:-1], b, 1e-6, out)


def dense_graph(C0=32, growth=16, layers=3, H=8):
    """DenseNet's blocks: each layer concat(all before) -> BN + ReLU -> 1x1 -> BN + ReLU (folded)
    -> 3x3 growth; a transition (BN + ReLU -> 1x1 -> 2x2/2 average pool) between two blocks."""
    rng = np.random.default_rng(17)

    def bn(name, src, c):
        p = {"running_mean": rng.standard_normal(c), "running_var": rng.random(c) + 0.5, "weight": rng.random(c) + 0.5}
        return [Node(name, "batch_norm", [src], params=p), Node(name + ".r", "relu", [name])]

    def conv(name, src, cin, cout, k):
        w = rng.standard_normal((cout, cin, k, k)) / np.sqrt(cin * k * k)
        return Node(name, "conv2d", [src], attrs=dict(padding=k // 2), params={"weight": w})

    nodes = [conv("stem", "x", 3, C0, 3), Node("pool", "max_pool2d", ["stem"], attrs=dict(kernel=2))]
    feats, c = ["pool"], C0
    for blk_i in range(2):
        for i in range(layers):
            p = f"d{blk_i}.{i}"
            src = feats[0]
            if len(feats) > 1:
                nodes.append(Node(p + ".cat", "concat", list(feats)))
                src = p + ".cat"
            nodes += bn(p + ".bn1", src, c) + [conv(p + ".c1", p + ".bn1.r", c, 32, 1)]
            nodes += bn(p + ".bn2", p + ".c1", 32) + [conv(p + ".c2", p + ".bn2.r", 32, growth, 3)]
            feats.append(p + ".c2")
            c += growth
        nodes.append(Node(f"t{blk_i}.cat", "concat", list(feats)))
        nodes += bn(f"t{blk_i}.bn", f"t{blk_i}.cat", c) + [conv(f"t{blk_i}.c", f"t{blk_i}.bn.r", c, 32, 1)]
        nodes.append(Node(f"t{blk_i}.pool", "avg_pool2d", [f"t{blk_i}.c"], attrs=dict(kernel=2)))
        feats, c = [f"t{blk_i}.pool"], 32
    nodes += [Node("gap", "global_avg_pool2d", [feats[0]]), Node("flat", "flatten", ["gap"])]
    return Graph({"x": (None, 3, H * 2, H * 2)}, nodes, ["flat"], name="dense_blocks")


@pytest.mark.parametrize("N", [1, 3])
def test_graph_blocks_dense_blocks(rng, N):
    """DenseNet's concats stay blocked: the batch norms before each 1x1 and the transition's
    average pool read and write NCHW16c, and each 1x1 -> 3x3 pair passes its tensor blocked;
    values and NaN reach as the reference's."""
    x = rng.standard_normal((N, 3, 16, 16), dtype=np.float32)
    g = dense_graph()
    lay = bound_layouts(g, x)
    X, Y = layout.X_BLOCKED, layout.Y_BLOCKED
    assert lay["d0.1.cat"] == (X | Y, "concat")
    assert lay["d0.1.bn1"] == (X | Y, "batch_norm")
    # the 1x1 writes its output blocked for the 3x3 after it, which runs direct_oc (as DenseNet's)
    assert lay["d0.1.c1"] == (X | Y, "direct_oc") and lay["d0.1.c2"][0] & X
    assert lay["t0.pool"] == (X | Y, "avg_pool2d") and lay["d1.1.cat"] == (X | Y, "concat")
    np.testing.assert_allclose(g(x), g.run_reference(x), rtol=1e-4, atol=1e-4)
    x[0, 1, 5, 5] = np.nan
    np.testing.assert_array_equal(np.isnan(g(x)), np.isnan(g.run_reference(x)))


@pytest.mark.parametrize("keepdims", [0, 1])
@pytest.mark.parametrize("axes", [(2, 3), (-1, -2)])
@pytest.mark.parametrize("N", [1, 3])
def test_graph_mean_over_hw_reads_blocked(rng, N, axes, keepdims):
    """ONNX ReduceMean over H and W (MNASNet's pool) reads the blocked output of the 1x1 before
    it as a global average pool does (NCHW (N, C) or (N, C, 1, 1) out), NaN as the reference; a
    mean over other axes keeps its input NCHW."""

    def pw(name, src, cin, cout):
        w = rng.standard_normal((cout, cin, 1, 1)) / np.sqrt(cin)
        return Node(name, "conv2d", [src], attrs=dict(activation="relu"), params={"weight": w})

    nodes = [
        pw("a", "x", 16, 32),
        pw("b", "a", 32, 48),
        pw("c", "b", 48, 64),
        Node("m", "reduce_mean", ["c"], attrs=dict(axes=list(axes), keepdims=keepdims)),
        Node("m1", "reduce_mean", ["a"], attrs=dict(axes=[1], keepdims=1)),
    ]
    g = Graph({"x": (None, 16, 9, 7)}, nodes, ["m", "m1"])
    x = rng.standard_normal((N, 16, 9, 7), dtype=np.float32)
    x[0, 3, 4, 4] = np.nan
    lay = bound_layouts(g, x)
    assert lay["m"] == (layout.X_BLOCKED, "reduce_mean") and lay["c"][0] == layout.X_BLOCKED | layout.Y_BLOCKED
    assert "m1" not in lay and "a" not in lay  # a is read by the mean over C too: NCHW
    y, ref = g(x), g.run_reference(x)
    for k in ("m", "m1"):
        assert y[k].shape == ref[k].shape
        np.testing.assert_array_equal(np.isnan(y[k]), np.isnan(ref[k]))
        np.testing.assert_allclose(np.nan_to_num(y[k]), np.nan_to_num(ref[k]), rtol=1e-4, atol=1e-5)
