"""conv2d: every algorithm and ISA path against the float64 NumPy reference and PyTorch."""

import numpy as np
import pytest

import pycnn
from conftest import (
    DENSE_ALGOS,
    EXACT_ALGOS,
    NATIVE_ALGOS,
    TF,
    assert_close,
    assert_conv_close,
    blk,
    conv_data,
    conv_poisoned,
    needs_torch,
    num_threads,
    runs,
    torch,
    unblk,
)
from pycnn import _C, layout, reference
from pycnn.models import CONV_LAYERS

# Elementwise checks (NaN positions, PyTorch's results) hold for the exact-arithmetic algorithms;
# the tests over shapes run every native algorithm where the registry says it runs.
ALGOS = EXACT_ALGOS

# (N, C, H, W, K, R, S, stride, padding, dilation, groups): odd sizes and channel counts,
# strides, asymmetric and 4-sided padding, dilation, groups, 1-pixel images, kernels as large as
# the padded input, and widths that are not multiples of any vector or panel width.
ODD_CASES = [
    (1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1),
    (1, 3, 7, 7, 1, 3, 3, 1, 1, 1, 1),
    (2, 3, 15, 17, 7, 3, 3, 1, 1, 1, 1),
    (1, 7, 17, 15, 15, 5, 5, 2, 2, 1, 1),
    (3, 15, 9, 11, 17, 3, 1, 1, (1, 0), 1, 1),
    (1, 17, 13, 13, 33, 1, 1, 1, 0, 1, 1),
    (2, 6, 15, 11, 9, 5, 3, 2, (2, 1), 1, 3),
    (1, 4, 9, 9, 4, 3, 3, 1, 2, 2, 4),  # depthwise, dilated
    (1, 8, 12, 10, 8, 3, 3, 3, 1, (2, 1), 2),
    (1, 3, 31, 33, 5, 11, 11, 4, 0, 1, 1),
    (1, 5, 6, 6, 7, 6, 6, 1, 0, 1, 1),  # kernel == input: 1x1 output
    (1, 2, 5, 5, 3, 3, 3, 1, (0, 1, 2, 3), 1, 1),  # asymmetric (top, left, bottom, right)
    (2, 3, 8, 8, 4, 3, 3, 1, "same", 1, 1),
    (1, 1, 50, 37, 13, 3, 37, 1, 0, 1, 1),  # Kim-CNN-like: kernel spans the width
    (1, 33, 7, 7, 70, 3, 3, 1, 1, 1, 1),
    (5, 3, 4, 4, 2, 2, 2, 2, 0, 1, 1),
    (2, 20, 12, 9, 5, 3, 7, 1, (1, 2), (1, 2), 1),  # Wo = 1 column packing, K = 420 > KC, padded
    (1, 6, 11, 40, 8, 3, 3, 3, 1, 1, 1),  # stride-3 gathers with padding
    (1, 3, 9, 30, 4, 2, 3, 2, (0, 4), 1, 1),  # stride 2, padding wider than the kernel reach
    (3, 17, 7, 9, 11, 1, 1, 1, 0, 1, 1),  # batched 1x1 on a small map: images share one GEMM
    (4, 40, 5, 5, 13, 3, 3, 1, 1, 1, 1),  # batched small map, panels straddle images
    (2, 4, 20, 30, 9, 5, 30, 2, 0, 1, 1),  # windows of whole rows (Kim), 4 channels x 150 > KC
    (1, 4, 9, 13, 6, 3, 13, 1, 0, 1, 2),  # whole-row windows, grouped
    (2, 6, 9, 11, 9, 1, 1, 2, 0, 1, 3),  # grouped strided 1x1: im2col subsamples x first
    (1, 5, 8, 7, 7, 1, 1, (3, 2), 0, 1, 1),  # 1x1, unequal strides, last row/column unread
    (1, 4, 6, 6, 5, 1, 1, 2, 1, 1, 1),  # strided 1x1 with padding: not subsampled
    (1, 3, 35, 63, 20, 11, 11, 4, 2, 1, 1),  # stride 4 (compiled in for direct_oc): padded, 2 row tiles
    (1, 10, 9, 70, 12, 5, 5, 4, 2, 1, 1),  # stride 4 through direct_oc's channel loop
]


def _ref(x, w, b, stride, padding, dilation, groups, activation=None):
    return reference.conv2d(
        x.astype(np.float64),
        w.astype(np.float64),
        None if b is None else b.astype(np.float64),
        stride,
        padding,
        dilation,
        groups,
        activation,
    )


def _case_runs(case, algo):
    N, C, H, W, K, R, S, stride, padding, dilation, groups = case
    return runs(algo, (N, C, H, W), (K, C // groups, R, S), stride, padding, dilation, groups)


def _cases_by_algo(cases, algos):
    return [
        pytest.param(c, a, id=f"{'x'.join(map(str, c[:7]))}-{a}")
        for c in cases
        for a in algos
        if a == "auto" or _case_runs(c, a)
    ]


@pytest.mark.parametrize("case, algo", _cases_by_algo(ODD_CASES, NATIVE_ALGOS))
def test_odd_shapes_every_isa(case, algo, isa, rng):
    N, C, H, W, K, R, S, stride, padding, dilation, groups = case
    x, w, b = conv_data(rng, N, C, H, W, K, C // groups, R, S)
    ref = _ref(x, w, b, stride, padding, dilation, groups)
    y = conv_poisoned(x, w, b, stride, padding, dilation, groups, algo)
    assert_conv_close(y, ref, algo, what=f"{algo}/{isa}", r=R, s=S)


@pytest.mark.parametrize("algo", ALGOS)
@pytest.mark.parametrize("relu", [False, True])
def test_fused_bias_relu(algo, relu, rng):
    x, w, b = conv_data(rng, 2, 5, 11, 9, 13, 5, 3, 3)
    ref = _ref(x, w, b, 1, 1, 1, 1, "relu" if relu else None)
    y = conv_poisoned(x, w, b, 1, 1, 1, 1, algo, relu)
    assert_close(y, ref)
    if relu:
        assert (y >= 0).all()
    # without bias
    y = pycnn.conv2d(x, w, None, padding=1, algo=algo, activation="relu" if relu else None)
    assert_close(y, _ref(x, w, None, 1, 1, 1, 1, "relu" if relu else None))


@pytest.mark.parametrize("layer", CONV_LAYERS, ids=lambda l: l.id)
def test_lecture_layers(layer, rng):
    """Every conv layer of the lecture's networks, each algorithm, batch 1."""
    x, w, b = conv_data(rng, 1, layer.C, layer.H, layer.W, layer.K, layer.C // layer.groups, layer.R, layer.S)
    ref = _ref(x, w, b, layer.stride, layer.pad, 1, layer.groups)
    shape = pycnn.ops.ConvShape(x.shape, w.shape, layer.stride, layer.pad, 1, layer.groups)
    for algo in pycnn.registry.candidates(shape) + ["auto"]:
        y = pycnn.conv2d(x, w, b, layer.stride, layer.pad, groups=layer.groups, algo=algo)
        ran = pycnn.policy.resolve(algo, shape)
        assert_conv_close(y, ref, ran, what=f"{layer.id}/{algo}", r=layer.R, s=layer.S)


@pytest.mark.parametrize("algo", ALGOS)
def test_batch_and_large_k(algo, rng):
    """Batch > 1 with K > KC (several packed depth blocks) and many column blocks."""
    x, w, b = conv_data(rng, 3, 64, 20, 21, 50, 64, 3, 3)
    assert_close(conv_poisoned(x, w, b, 1, 1, algo=algo), _ref(x, w, b, 1, 1, 1, 1))


def test_reference_algo_matches(rng):
    x, w, b = conv_data(rng, 1, 3, 9, 9, 4, 3, 3, 3)
    y = pycnn.conv2d(x, w, b, padding=1, algo="reference")
    assert y.dtype == np.float32
    assert_close(y, _ref(x, w, b, 1, 1, 1, 1))


@needs_torch
@pytest.mark.parametrize("case", ODD_CASES[:12], ids=lambda c: "x".join(map(str, c[:7])))
@pytest.mark.parametrize("algo", ALGOS)
def test_against_torch(case, algo, rng):
    N, C, H, W, K, R, S, stride, padding, dilation, groups = case
    if isinstance(padding, tuple) and len(padding) == 4:
        pytest.skip("torch.nn.functional.conv2d has no 4-sided padding")
    x, w, b = conv_data(rng, N, C, H, W, K, C // groups, R, S)
    want = TF.conv2d(
        torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(b), stride, padding, dilation, groups
    ).numpy()
    y = pycnn.conv2d(x, w, b, stride, padding, dilation, groups, algo=algo)
    assert_close(y, want, atol=5e-5, rtol=2e-4)


@pytest.mark.parametrize("algo", ALGOS)
def test_nan_inf_propagate(algo, rng):
    """A NaN (Inf) input reaches exactly the outputs whose window covers it, as the reference."""
    x, w, b = conv_data(rng, 1, 3, 10, 10, 4, 3, 3, 3)
    x[0, 1, 4, 5] = np.nan
    x[0, 2, 0, 0] = np.inf
    ref = _ref(x, w, b, 1, 1, 1, 1)
    y = conv_poisoned(x, w, b, 1, 1, algo=algo)
    assert np.isnan(ref).any() and np.isinf(ref).any()
    assert_close(y, ref)
    assert np.array_equal(np.isinf(y), np.isinf(ref))
    # ReLU keeps NaN (IEEE max semantics), as torch.relu does
    y = conv_poisoned(x, w, b, 1, 1, algo=algo, relu=True)
    assert np.array_equal(np.isnan(y), np.isnan(ref))


def test_input_rule_float64_and_noncontiguous(rng):
    x, w, b = conv_data(rng, 2, 4, 9, 9, 3, 4, 3, 3)
    ref = pycnn.conv2d(x, w, b, padding=1)
    y64 = pycnn.conv2d(x.astype(np.float64), w.astype(np.float64), b.astype(np.float64), padding=1)
    assert y64.dtype == np.float32
    np.testing.assert_array_equal(y64, ref)
    xt = np.ascontiguousarray(x.transpose(0, 1, 3, 2)).transpose(0, 1, 3, 2)  # same values, F-order planes
    assert not xt.flags.c_contiguous
    np.testing.assert_array_equal(pycnn.conv2d(xt, w, b, padding=1), ref)
    xs = np.zeros((2, 8, 9, 9), np.float32)
    xs[:, ::2] = x
    np.testing.assert_array_equal(pycnn.conv2d(xs[:, ::2], w, b, padding=1), ref)


def test_algorithms_lists_usable_names():
    names = pycnn.algorithms("conv2d")
    assert {"auto", "direct", "im2col", "reference"} <= set(names)


@pytest.mark.parametrize("case, algo", _cases_by_algo(ODD_CASES, NATIVE_ALGOS + ["auto"]))
def test_prepared_conv_matches(case, algo, rng):
    N, C, H, W, K, R, S, stride, padding, dilation, groups = case
    x, w, b = conv_data(rng, N, C, H, W, K, C // groups, R, S)
    conv = pycnn.prepare_conv(w, b, stride, padding, dilation, groups, algo=algo, activation="relu")
    ref = _ref(x, w, b, stride, padding, dilation, groups, "relu")
    ran = conv.algo_for(x.shape)
    assert_conv_close(conv(x), ref, ran, what=f"prepared {algo}", r=R, s=S)
    assert_conv_close(conv(x), ref, ran, what=f"prepared {algo}, second call", r=R, s=S)  # weights reused
    # another input size through the same prepared weights
    x2, _, _ = conv_data(rng, N + 1, C, H + 3, W + 2, K, C // groups, R, S)
    want2 = _ref(x2, w, b, stride, padding, dilation, groups, "relu")
    assert_conv_close(conv(x2), want2, conv.algo_for(x2.shape), r=R, s=S)


def test_prepared_conv_rejects_wrong_input(rng):
    x, w, b = conv_data(rng, 1, 4, 8, 8, 5, 4, 3, 3)
    conv = pycnn.prepare_conv(w, b, padding=1)
    with pytest.raises(ValueError, match="weight"):
        conv(np.zeros((1, 3, 8, 8), np.float32))
    with pytest.raises(ValueError, match="x"):
        conv(np.zeros((4, 8, 8), np.float32))
    with pytest.raises(ValueError, match="algo"):
        pycnn.prepare_conv(w, algo="fft")


def test_prepared_conv_survives_isa_change(rng):
    """Weights packed for one ISA keep running that ISA's kernel after the active ISA changes."""
    x, w, b = conv_data(rng, 1, 5, 9, 9, 7, 5, 3, 3)
    ref = _ref(x, w, b, 1, 1, 1, 1)
    convs = [pycnn.prepare_conv(w, b, padding=1, algo=a) for a in ALGOS]
    pycnn._C.set_isa("generic")
    try:
        for c in convs:
            assert_close(c(x), ref)
    finally:
        pycnn._C.set_isa(pycnn._C.cpu_isa())


@pytest.mark.parametrize("algo", DENSE_ALGOS + ["reference"])
@pytest.mark.parametrize("relu", [False, True])
def test_prepared_residual_every_isa(algo, relu, isa, rng):
    """conv(x, residual=r) = act(conv(x) + b + r), r added in the kernel's epilogue (the fused
    ResNet join); strided, padded, batched and 1x1 cases; NaN in r propagates."""
    cases = [
        (2, 16, 9, 11, 20, 3, 1, 1),
        (1, 24, 7, 7, 40, 3, 1, 1),
        (2, 8, 12, 12, 40, 1, 2, 0),
        (1, 20, 14, 14, 24, 3, 2, 1),
        (1, 300, 5, 5, 33, 3, 1, 1),
    ]
    for N, C, H, W, K, R, st, pad in cases:
        if not runs(algo, (N, C, H, W), (K, C, R, R), st, pad):
            continue
        x, w, b = conv_data(rng, N, C, H, W, K, C, R, R)
        Ho, Wo = (H + 2 * pad - R) // st + 1, (W + 2 * pad - R) // st + 1
        r = rng.standard_normal((N, K, Ho, Wo), dtype=np.float32)
        r[0, -1, -1, -1] = np.nan
        want = _ref(x, w, b, st, pad, 1, 1) + r
        if relu:
            want = np.where(want < 0, 0, want)
        conv = pycnn.prepare_conv(w, b, st, pad, algo=algo, activation="relu" if relu else None)
        y = conv(x, residual=r)
        assert np.isnan(y[0, -1, -1, -1]) and np.isnan(y).sum() == 1
        y[0, -1, -1, -1] = want[0, -1, -1, -1] = 0.0
        assert_conv_close(y, want, algo, what=f"{algo}/{isa} {(N, C, H, W, K, R, st, pad)}", r=R)
    with pytest.raises(ValueError, match="residual"):
        conv(x, residual=r[:, :-1])


def test_direct_oc_image_chunks_and_bands(rng):
    """direct_oc pads images in chunks of ~32 MiB and runs output rows in bands: 3 images of
    1702x1702 padded floats take two chunks (2 + 1) and 1700 one-row bands each; the result
    equals im2col's."""
    x, w, b = conv_data(rng, 3, 1, 1700, 1700, 8, 1, 3, 3)
    y = pycnn.conv2d(x, w, b, padding=1, algo="direct_oc", activation="relu")
    assert_close(y, pycnn.conv2d(x, w, b, padding=1, algo="im2col", activation="relu"))


@pytest.mark.parametrize("algo", ["im2col", "direct_oc"])
def test_strided_1x1_subsample_chunks(algo, rng):
    """im2col and direct_oc run a strided 1x1 convolution on a subsampled copy of x made in chunks
    of images of <= 32 MiB: 2 images whose subsampled planes take 35 MB each go in two chunks;
    the output and the residual of the second image are offset right."""
    x = rng.standard_normal((2, 1, 4200, 4200), dtype=np.float32)
    w = np.array([[[[1.5]]], [[[-0.5]]]], dtype=np.float32)
    b = np.array([0.25, -1.0], dtype=np.float32)
    r = rng.standard_normal((2, 2, 4200, 2100), dtype=np.float32)
    conv = pycnn.prepare_conv(w, b, stride=(1, 2), algo=algo, activation="relu")
    y = conv(x, residual=r)
    xs = x[:, :, :, ::2]
    want = np.maximum(np.concatenate([1.5 * xs + 0.25, -0.5 * xs - 1.0], axis=1) + r, 0)
    assert_close(y, want)


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_im2col_1x1_small_map_in_place_b(threads, isa, rng):
    """A 1x1 conv with few outputs on a small map splits its rows across threads, and then the
    SGEMM reads the input in place as B (whole panels; the last partial panel packed), over
    several depth blocks (C > KC = 256); batch, residual and bias as usual."""
    with num_threads(threads):
        for N, C, H, W, K in [(1, 300, 13, 13, 33), (2, 520, 14, 14, 64), (1, 40, 9, 7, 16)]:
            x, w, b = conv_data(rng, N, C, H, W, K, C, 1, 1)
            r = rng.standard_normal((N, K, H, W), dtype=np.float32)
            conv = pycnn.prepare_conv(w, b, algo="im2col", activation="relu")
            want = np.maximum(_ref(x, w, b, 1, 0, 1, 1) + r, 0)
            assert_conv_close(conv(x, residual=r), want, "im2col", what=f"{(N, C, H, W, K)} threads {threads}")


# (N, C, H, W, K, R, S, stride, padding, dilation): direct_oc reads x in place and skips the taps
# that fall in the padding (a border tile runs as one call per range of window columns).
BORDER_CASES = [
    (1, 80, 9, 30, 40, 3, 3, 1, 1, 1),  # 3 channel chunks, 3 row tiles, 2 output blocks
    (2, 5, 7, 7, 33, 5, 5, 1, 2, 1),  # few channels: the flat loop inside, Segs at borders
    (1, 3, 23, 23, 64, 7, 7, 2, 3, 1),  # the stem's geometry
    (1, 3, 30, 27, 40, 11, 11, 4, 2, 1),  # AlexNet's conv1: one channel chunk, flat loop per window row
    (1, 8, 14, 14, 20, 11, 11, 1, 5, 1),  # few channels, weights past one chunk: the channel loop inside
    (1, 16, 4, 5, 16, 3, 3, 1, (4, 4, 1, 1), 1),  # padding past the window: rows with no tap at all
    (1, 8, 10, 12, 20, 3, 3, 2, 2, 2),  # dilated and strided
    (3, 24, 6, 3, 16, 3, 3, 1, (0, 2, 1, 3), 1),  # 4-sided padding, columns with no tap
]


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_direct_oc_skips_padding_taps(threads, isa, rng):
    """Every output of direct_oc next to the padding against the reference, with bias, residual
    and ReLU, 1-3 threads, on every ISA."""
    with num_threads(threads):
        for N, C, H, W, K, R, S, st, pad, dil in BORDER_CASES:
            x, w, b = conv_data(rng, N, C, H, W, K, C, R, S)
            conv = pycnn.prepare_conv(w, b, stride=st, padding=pad, dilation=dil, algo="direct_oc", activation="relu")
            y0 = _ref(x, w, b, st, pad, dil, 1)
            r = rng.standard_normal(y0.shape, dtype=np.float32)
            want = np.maximum(y0 + r, 0)
            what = f"{(N, C, H, W, K, R, S, st, pad, dil)} threads {threads}"
            assert_conv_close(conv(x, residual=r), want, "direct_oc", what=what)


# (N, C, H, W, K, R, S, stride, padding): output rows of one or two pixels, so direct_oc's tiles
# hold fewer than 4 accumulator vectors and split their inner steps over several sets of them.
FEW_VECTOR_CASES = [
    (1, 16, 5, 5, 120, 5, 5, 1, 0),  # LeNet-5's conv3: one pixel, the channel loop (two vectors, 24 in the last)
    (1, 3, 5, 5, 10, 5, 5, 1, 0),  # the flat (tap, channel) loop, one vector of 10 channels
    (2, 13, 6, 1, 40, 3, 1, 1, 1),  # one-column maps, border rows, 13 channels (a remainder step)
    (1, 20, 3, 3, 33, 3, 3, 2, 1),  # two pixels: 2 x 2 vectors, then the 33rd channel's 2 x 1 (split)
    (3, 16, 4, 4, 48, 4, 4, 1, 0),  # whole-input windows at batch 3: the images as one row of 3 pixels
]


@pytest.mark.parametrize("threads", [1, 2])
def test_direct_oc_few_vector_tiles(threads, isa, rng):
    """direct_oc tiles of under 4 vectors (one- and two-pixel rows) against the reference, with
    bias, residual and ReLU, NCHW and with a channel-blocked x and y, on every ISA."""
    with num_threads(threads):
        for N, C, H, W, K, R, S, st, pad in FEW_VECTOR_CASES:
            x, w, b = conv_data(rng, N, C, H, W, K, C, R, S)
            conv = pycnn.prepare_conv(w, b, stride=st, padding=pad, algo="direct_oc", activation="relu")
            y0 = _ref(x, w, b, st, pad, 1, 1)
            r = rng.standard_normal(y0.shape, dtype=np.float32)
            what = f"{(N, C, H, W, K, R, S, st, pad)} threads {threads}"
            assert_conv_close(conv(x, residual=r), np.maximum(y0 + r, 0), "direct_oc", what=what)
            if C % 16 == 0 and K % 16 == 0:  # x and y channel-blocked (NCHW16c)
                call = conv.bind([x.shape], None, layout=(layout.X_BLOCKED | layout.Y_BLOCKED, "direct_oc"))
                assert_conv_close(unblk(call(blk(x))), np.maximum(y0, 0), "direct_oc", what=what + " blocked")


@pytest.mark.parametrize("threads", [1, 2])
def test_narrow_gemms_with_weights_over_1mib(threads, isa, rng):
    """GEMMs of few columns whose weights exceed 1 MiB take the narrow order, which fetches
    the A panel two ahead from inside the micro-kernel's k loop (sgemm.h, Epilogue::prefetch):
    Winograd F2 256 -> 256 on 14x14 (49 tile columns = a 48-wide panel + a column kernel, 4 MiB
    of U) and im2col 3x3 512 -> 296 on 2x2 outputs (4 columns: only the column kernel). The
    prefetches cannot change a result; this runs that path on every ISA against the reference."""
    with num_threads(threads):
        for algo, C, H, K, pad in [("winograd_f2", 256, 14, 256, 1), ("im2col", 512, 4, 296, 0)]:
            x, w, b = conv_data(rng, 1, C, H, H, K, C, 3, 3)
            conv = pycnn.prepare_conv(w, b, padding=pad, algo=algo, activation="relu")
            want = np.maximum(_ref(x, w, b, 1, pad, 1, 1), 0)
            assert_conv_close(conv(x), want, algo, what=f"{algo} {C}->{K} @{H} threads {threads}")


@pytest.mark.parametrize("threads", [1, 2])
def test_direct_oc_strided_1x1_on_subsampled_planes(threads, isa, rng):
    """direct_oc runs unpadded strided 1x1 convolutions (ResNet's downsamples) as pointwise ones
    on a subsampled copy of x: strides 2, (1, 2), (3, 2) on even and odd sizes, batch, groups,
    residual with a NaN, ReLU; equal to the reference. A padded strided 1x1 reads x directly."""
    with num_threads(threads):
        for N, C, H, W, K, G, st, pad in [
            (2, 40, 14, 14, 48, 1, 2, 0),
            (1, 24, 9, 11, 20, 2, (1, 2), 0),
            (3, 9, 13, 8, 33, 1, (3, 2), 0),
            (2, 16, 10, 10, 32, 1, 2, 1),
        ]:
            x, w, b = conv_data(rng, N, C, H, W, K, C // G, 1, 1)
            want = _ref(x, w, b, st, pad, 1, G)
            r = rng.standard_normal(want.shape, dtype=np.float32)
            r[-1, -1, 0, 0] = np.nan
            conv = pycnn.prepare_conv(w, b, stride=st, padding=pad, groups=G, algo="direct_oc", activation="relu")
            y = conv(x, residual=r)
            assert np.isnan(y[-1, -1, 0, 0]) and np.isnan(y).sum() == 1
            y[-1, -1, 0, 0] = 0.0
            want = np.maximum(want + r, 0)
            want[-1, -1, 0, 0] = 0.0
            assert_conv_close(y, want, "direct_oc", what=f"{(N, C, H, W, K, G, st, pad)} threads {threads}")


@pytest.mark.parametrize("threads", [1, 2])
def test_direct_oc_pointwise_runs_pixels_as_rows(threads, isa, rng):
    """direct_oc runs a 1x1 stride-1 convolution's H*W pixels as the fewest rows of <= 512:
    28x28 as 2 rows of 392, 23x29 (667) as 23 rows of 29 (as is), 3x521 as is (no row count
    below 3 divides it into rows of <= 512), 7x7 as one row of 49; with batch, groups, a residual
    and ReLU every pixel lands in place."""
    _check_direct_oc_residual_relu(
        rng,
        threads,
        [
            (2, 40, 28, 28, 48, 1, 1, 1, 1, 0),
            (1, 24, 23, 29, 20, 2, 1, 1, 1, 0),
            (2, 9, 3, 521, 33, 1, 1, 1, 1, 0),
            (1, 300, 7, 7, 70, 1, 1, 1, 1, 0),
        ],
    )


def _check_direct_oc_residual_relu(rng, threads, cases):
    """direct_oc with `threads` threads on each (N, C, H, W, K, groups, R, S, stride, pad): relu(conv
    + b + r) with a random residual r equals the reference."""
    with num_threads(threads):
        for N, C, H, W, K, G, R, S, stride, pad in cases:
            x, w, b = conv_data(rng, N, C, H, W, K, C // G, R, S)
            want = _ref(x, w, b, stride, pad, 1, G)
            r = rng.standard_normal(want.shape, dtype=np.float32)
            conv = pycnn.prepare_conv(w, b, stride=stride, padding=pad, groups=G, algo="direct_oc", activation="relu")
            assert_conv_close(
                conv(x, residual=r),
                np.maximum(want + r, 0),
                "direct_oc",
                what=f"{(N, C, H, W, K, G, R, S, stride, pad)} threads {threads}",
            )


@pytest.mark.parametrize("threads", [1, 2])
def test_direct_oc_whole_row_windows_as_one_row(threads, isa, rng):
    """direct_oc runs windows that span whole input rows (Kim's CNN: h x 300 over 50 x 300,
    Wo = 1) as one row of Ho pixels over the flattened planes (column stride sh*W, a 1 x R*W
    window): row strides 1 and 2, a last window ending above the bottom row, several channels
    and groups, batch, residual and ReLU. Padded rows and windows narrower than the input take
    the ordinary path and must agree as well."""
    _check_direct_oc_residual_relu(
        rng,
        threads,
        [
            (2, 1, 50, 300, 100, 1, 5, 300, (1, 1), 0),
            (1, 3, 17, 40, 36, 1, 3, 40, (2, 1), 0),
            (3, 4, 12, 9, 20, 2, 4, 9, (3, 1), 0),
            (1, 2, 10, 30, 33, 1, 3, 30, (1, 1), 1),
            (1, 2, 10, 30, 33, 1, 3, 29, (1, 1), 0),
        ],
    )


@pytest.mark.parametrize("threads", [2, 3])
def test_direct_oc_narrow_last_kblock_and_cost_balanced_bands(threads, isa, rng):
    """A last block of at most one vector of output channels (K = 4, 6, 16, 20, 36, 48, 100 with
    32-channel blocks) computes one vector; the threads' shares of (kblock, band) units are
    balanced by cost, cutting bands inside an output row where a few units of unequal cost
    would leave a thread waiting (Kim's 100 maps over one 48-pixel row; two kblocks over a 7x7
    map). Groups, batch, residual and ReLU; every case equal to the reference."""
    _check_direct_oc_residual_relu(
        rng,
        threads,
        [
            (1, 1, 50, 300, 100, 1, 3, 300, 1, 0),
            (1, 16, 7, 7, 48, 1, 3, 3, 1, 1),
            (2, 8, 9, 11, 36, 1, 3, 3, 1, 1),
            (1, 6, 14, 14, 16, 1, 5, 5, 1, 0),
            (3, 12, 6, 5, 40, 2, 1, 1, 1, 0),
            (1, 3, 12, 12, 6, 1, 5, 5, 1, 2),
            (1, 20, 16, 16, 20, 1, 5, 5, 1, 2),
            (2, 64, 7, 7, 4, 1, 3, 3, 1, 1),
        ],
    )


@pytest.mark.parametrize("threads", [1, 2])
def test_direct_oc_whole_input_windows_run_images_as_a_row(threads, isa, rng):
    """direct_oc runs a window that covers the whole input (LeNet-5's conv3: one output pixel per
    image) over a batch as one row whose pixels are the images, written pixel-major: 8 and 17
    images (one and two row tiles), few channels (the flat tap loop) and many, two groups, a
    stride that changes nothing, residual with a NaN and ReLU; batch 1 takes the ordinary path."""
    with num_threads(threads):
        for N, C, H, W, K, G, stride in [
            (8, 16, 5, 5, 120, 1, 1),
            (17, 5, 2, 2, 40, 1, 1),
            (3, 4, 3, 7, 33, 1, 2),
            (5, 6, 4, 4, 10, 2, 1),
            (1, 16, 5, 5, 120, 1, 1),
        ]:
            x, w, b = conv_data(rng, N, C, H, W, K, C // G, H, W)
            r = rng.standard_normal((N, K, 1, 1), dtype=np.float32)
            r[N - 1, K // 2] = np.nan
            conv = pycnn.prepare_conv(w, b, stride=stride, groups=G, algo="direct_oc", activation="relu")
            want = np.maximum(_ref(x, w, b, stride, 0, 1, G) + r, 0)
            want[N - 1, K // 2] = np.nan
            assert_conv_close(conv(x, residual=r), want, "direct_oc", what=f"{(N, C, H, W, K, G)} threads {threads}")


@pytest.mark.parametrize("threads", [1, 2])
def test_direct_oc_unit_order_kblock_groups(threads, isa, rng):
    """direct_oc orders its work as (group, kblock group, image, kblock, band), a kblock group's
    weights <= one core's L2 (_C.l2_cache_bytes): input channels per group sized so a 32-channel
    kblock is ~0.4 of L2 make 6 kblocks per group run as 3 groups of 2 over 3 images (AVX2's
    16-channel kblocks, ~0.2 of L2: 12 in groups of 4) whatever this machine's L2; a 3x3 layer
    with 64 channels takes all its kblocks in one group. Every output must land in its own
    (image, channel)."""
    cg = int(0.4 * _C.l2_cache_bytes() / (32 * 4)) // 16 * 16
    _check_direct_oc_residual_relu(
        rng, threads, [(3, 2 * cg, 4, 4, 384, 2, 1, 1, 1, 0), (3, 64, 5, 5, 96, 1, 3, 3, 1, 1)]
    )


def test_prepared_conv_bind_call_and_errors(rng):
    """PreparedConv.bind(in_shapes, out_shape) gives a C++ call fixed to one input shape:
    call(x) allocates y, call(x, r) adds a residual, call(x, out=...) writes into out; another
    input shape, a wrong out or residual shape raise ValueError naming the argument."""
    x, w, b = conv_data(rng, 2, 5, 9, 8, 6, 5, 3, 3)
    conv = pycnn.prepare_conv(w, b, padding=1, algo="im2col", activation="relu")
    call = conv.bind([x.shape], (2, 6, 9, 8))
    assert call.writes_out
    want = _ref(x, w, b, 1, 1, 1, 1, "relu")
    assert_close(call(x), want)
    r = rng.standard_normal((2, 6, 9, 8), dtype=np.float32)
    assert_close(call(x, r), np.maximum(_ref(x, w, b, 1, 1, 1, 1) + r, 0))
    out = np.empty((2, 6, 9, 8), np.float32)
    assert call(x, out=out) is out
    assert_close(out, want)
    with pytest.raises(ValueError, match="x: not the shape"):
        call(x[:1])
    with pytest.raises(ValueError, match="out"):
        call(x, out=np.empty((2, 6, 9, 7), np.float32))
    with pytest.raises(ValueError, match="out"):
        call(x, out=np.empty((2, 5, 9, 8), np.float32))
    with pytest.raises(ValueError, match="residual"):
        call(x, r[:, :5])
    with pytest.raises(ValueError, match="out: expected a C-contiguous float32"):
        call(x, out=np.empty((2, 12, 9, 8), np.float32)[:, ::2])  # would be written through a copy
    with pytest.raises(ValueError, match="out: expected a C-contiguous float32"):
        call(x, out=np.empty((2, 6, 9, 8), np.float64))
    with pytest.raises(ValueError, match="out: expected a NumPy array"):
        call(x, out=[0.0])
    one = np.full((1, 10, 9, 8), np.nan, np.float32)  # batch 1: a channel slice is contiguous
    call1 = conv.bind([(1, 5, 9, 8)], (1, 6, 9, 8))
    assert call1(x[:1], out=one[:, 2:8]).base is one
    assert_close(one[:, 2:8], want[:1])
    assert np.isnan(one[:, :2]).all() and np.isnan(one[:, 8:]).all()


def test_prepared_conv_bind_with_the_algorithm_given(rng):
    """bind(..., run_algo=A) runs A whatever the prepared conv's own choice (a chunked chain keeps
    the whole batch's algorithm); one that cannot run the shape is refused at bind, naming why."""
    x, w, b = conv_data(rng, 2, 16, 9, 8, 16, 16, 3, 3)
    conv = pycnn.prepare_conv(w, b, padding=1, activation="relu")
    want = _ref(x, w, b, 1, 1, 1, 1, "relu")
    for algo in ("im2col", "direct_oc", "winograd_f2", "direct"):
        assert_close(conv.bind([x.shape], None, run_algo=algo)(x), want, what=algo)
    strided = pycnn.prepare_conv(w, b, stride=2, padding=1)
    needs = r"winograd_f2' needs a 3x3, 5x5, 1xr or rx1 \(r = 3, 4, 5, 7\) kernel with stride 1"
    with pytest.raises(ValueError, match=needs):
        strided.bind([x.shape], None, run_algo="winograd_f2")


def test_direct_oc_one_block_split_into_bands(rng):
    """One output block, one image (ConvNetJS conv2, 16->20 5x5 @16): direct_oc splits the rows
    into bands so both threads work; every band's rows land right (with a residual)."""
    with num_threads(2):
        x, w, b = conv_data(rng, 1, 16, 16, 16, 20, 16, 5, 5)
        r = rng.standard_normal((1, 20, 16, 16), dtype=np.float32)
        y = pycnn.prepare_conv(w, b, padding=2, algo="direct_oc")(x, residual=r)
        assert_close(y, _ref(x, w, b, 1, 2, 1, 1) + r)


# (w shape, groups): a geometry each C++ algorithm takes, dense or depthwise or grouped.
_EMPTY_GEOMETRY = [((32, 32, 3, 3), 1), ((32, 1, 3, 3), 32), ((32, 4, 3, 3), 8)]


@pytest.mark.parametrize("algo", NATIVE_ALGOS)
def test_empty_batch_every_algorithm(algo, isa):
    """A batch of none gives an empty result, prepared, bound and through _C.conv2d (the kernels'
    work splits divide by the tile and image counts: direct_oc and Winograd once crashed here)."""
    x = np.zeros((0, 32, 9, 9), np.float32)
    ran = 0
    for ws, groups in _EMPTY_GEOMETRY:
        if not runs(algo, x.shape, ws, 1, 1, 1, groups):
            continue
        w = np.ones(ws, np.float32)
        conv = pycnn.prepare_conv(w, None, 1, 1, groups=groups, algo=algo)
        assert conv(x).shape == (0, 32, 9, 9)
        assert conv.bind([x.shape], None)(x).shape == (0, 32, 9, 9)
        assert conv_poisoned(x, w, None, 1, 1, 1, groups, algo).shape == (0, 32, 9, 9)
        ran += 1
    assert ran, f"{algo}: no geometry of the list runs it"
