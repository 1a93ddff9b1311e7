"""The kernels' epilogue: the clamp y = min(max(conv + b + r, lo), hi) (ReLU6 and ONNX's Clip
after a conv) and the element-wise functions after it (hard-swish, SiLU, sigmoid, GELU ...) run
inside every native algorithm's store (no second pass over y), in NCHW and in the channel-blocked
layouts, on every ISA path; NaN survives them; the Python algorithms still apply them after the
convolution."""

import numpy as np
import pytest
from test_conv2d import _ref as conv_ref

import pycnn
from conftest import assert_close, blk, conv_data, unblk
from pycnn import _C, layout, reference, registry
from pycnn._shapes import ConvShape
from pycnn.layers import _C_UNARY, _unary_args
from pycnn.prepared import UNARY_CLIP

# (x shape, w shape, stride, padding, groups): one geometry each algorithm family takes.
SHAPES = [
    ((2, 16, 9, 11), (32, 16, 3, 3), 1, 1, 1),  # Winograd, direct_oc, im2col
    ((1, 3, 17, 19), (8, 3, 5, 5), 2, 2, 1),  # direct (first layers)
    ((2, 32, 7, 7), (48, 32, 1, 1), 1, 0, 1),  # 1x1
    ((1, 32, 13, 13), (40, 32, 1, 1), 1, 0, 1),  # 169 columns: avx2's last panel split 8 + 1
    ((2, 32, 5, 13), (40, 32, 1, 1), 1, 0, 1),  # 65 columns: AVX-512's 8 x 48 split 16 + 1
    ((1, 512, 7, 7), (36, 512, 3, 3), 1, 1, 1),  # deep and few rows: the SGEMM's split depth
    ((2, 32, 10, 9), (32, 1, 3, 3), 1, 1, 32),  # depthwise
    ((1, 20, 12, 12), (20, 1, 3, 3), 2, 1, 20),  # depthwise, a partial channel block
]
BOUNDS = [(0.0, 6.0), (-0.5, 0.25), (-np.inf, 0.1), (0.3, 0.3)]


def _want(x, w, b, stride, pad, groups, relu, lo, hi, res=None):
    y = conv_ref(x, w, b, stride, pad, 1, groups)
    if res is not None:
        y = y + res
    if relu:
        y = np.where(y < 0, 0.0, y)
    return np.minimum(np.maximum(y, lo), hi)  # NaN stays NaN


def _algos(s):
    return [a for a in registry.names(kind=registry.NATIVE) if registry.CONV[a].supports(s)]


def _case_id(c):
    return "x".join(map(str, c[1])) + f"s{c[2]}g{c[4]}"


@pytest.mark.parametrize("case", SHAPES, ids=_case_id)
def test_clip_in_every_algorithm_every_isa(case, isa, rng):
    xs, ws, stride, pad, groups = case
    x, w, b = conv_data(rng, *xs, ws[0], ws[1], ws[2], ws[3])
    x *= 4  # outputs on both sides of the bounds
    s = ConvShape(xs, ws, stride, pad, 1, groups)
    res = rng.standard_normal((s.N, s.K, s.Ho, s.Wo), dtype=np.float32)
    xn = x.copy()
    xn[0, 0, 0, 0] = np.nan  # NaN through the clamp (not for Winograd: a NaN fills its whole tile)
    for algo in _algos(s):
        bound = registry.CONV[algo].rel_error_bound
        xa = x if bound else xn
        for i, (lo, hi) in enumerate(BOUNDS):
            relu, r = bool(i % 2), (res if i >= 2 else None)
            conv = pycnn.prepare_conv(
                w, b, stride=stride, padding=pad, groups=groups, algo=algo, activation="relu" if relu else None
            )
            conv.post = (UNARY_CLIP, lo, hi)
            want = _want(xa, w, b, stride, pad, groups, relu, lo, hi, r)
            # the clamp is 1-Lipschitz: a bounded algorithm's error stays within its bound of the
            # unclamped output's scale
            scale = np.abs(np.nan_to_num(_want(xa, w, b, stride, pad, groups, relu, -np.inf, np.inf, r))).max()
            call = conv.bind([xs], None)
            assert isinstance(call, _C.BoundConv)  # the kernel's own call: no pass after it
            for y in (conv(xa, residual=r), call(xa, r)):
                np.testing.assert_array_equal(np.isnan(y), np.isnan(want), err_msg=algo)
                assert (np.nan_to_num(y) <= hi).all() and (np.nan_to_num(y, nan=lo) >= lo).all(), algo
                if bound:  # Winograd's tiles: a normwise bound
                    err = np.abs(np.nan_to_num(y) - np.nan_to_num(want)).max() / scale
                    assert err <= bound, (algo, err)
                else:
                    assert_close(np.nan_to_num(y), np.nan_to_num(want))


@pytest.mark.parametrize(
    "algo, xs, ws, pad, groups, bits",
    [
        ("direct_oc", (2, 32, 8, 8), (32, 32, 1, 1), 0, 1, layout.X_BLOCKED | layout.Y_BLOCKED),
        ("direct_oc", (2, 32, 8, 14), (48, 32, 1, 1), 0, 1, layout.X_BLOCKED | layout.Y_BLOCKED),  # merged last block
        ("direct_oc", (2, 32, 8, 8), (32, 32, 1, 1), 0, 1, layout.X_BLOCKED),
        ("direct_oc", (2, 16, 8, 8), (32, 16, 3, 3), 1, 1, layout.Y_BLOCKED),
        ("winograd_f4", (2, 16, 8, 8), (32, 16, 3, 3), 1, 1, layout.Y_BLOCKED),
        ("depthwise_c16", (2, 32, 8, 8), (32, 1, 3, 3), 1, 32, layout.X_BLOCKED | layout.Y_BLOCKED),
    ],
)
def test_clip_with_blocked_tensors_every_isa(algo, xs, ws, pad, groups, bits, isa, rng):
    x, w, b = conv_data(rng, *xs, ws[0], ws[1], ws[2], ws[3])
    x *= 4
    conv = pycnn.prepare_conv(w, b, padding=pad, groups=groups, algo=algo)
    conv.post = (UNARY_CLIP, -0.5, 0.5)
    y = conv.bind([xs], None, layout=(bits, algo))(blk(x) if bits & layout.X_BLOCKED else x)
    y = unblk(y) if bits & layout.Y_BLOCKED else y
    want = _want(x, w, b, 1, pad, groups, False, -0.5, 0.5)
    if registry.CONV[algo].rel_error_bound:
        scale = np.abs(_want(x, w, b, 1, pad, groups, False, -np.inf, np.inf)).max()
        assert np.abs(y - want).max() <= registry.CONV[algo].rel_error_bound * scale
    else:
        assert_close(y, want)


def test_python_algorithms_still_clip(rng):
    x, w, b = conv_data(rng, 1, 4, 6, 6, 4, 4, 3, 3)
    conv = pycnn.prepare_conv(w * 10, b, padding=1, algo="reference")
    conv.post = (UNARY_CLIP, 0.0, 6.0)
    np.testing.assert_allclose(conv(x), _want(x, w * 10, b, 1, 1, 1, False, 0.0, 6.0), rtol=1e-5, atol=1e-5)


def test_clip_bounds_checked(rng):
    x, w, b = conv_data(rng, 1, 4, 6, 6, 4, 4, 3, 3)
    h = _C.PreparedWeights(w, 1, "im2col")
    y = np.empty((1, 4, 6, 6), np.float32)
    with pytest.raises(ValueError, match="clip_lo: must be <= clip_hi"):
        h.run(x, b, y, 1, 1, 1, 1, 1, 1, False, None, 1.0, 0.0)
    with pytest.raises(ValueError, match="must not be NaN"):
        h.bind(b, [1, 4, 6, 6], 1, 1, 1, 1, 1, 1, 6, 6, False, clip_lo=np.nan)
    with pytest.raises(ValueError, match="post_fn"):
        h.run(x, b, y, 1, 1, 1, 1, 1, 1, False, None, post_fn=99)
    # A clip whose bounds cross is not the clamp: it runs as the unary function (its own rule).
    conv = pycnn.prepare_conv(w, b, padding=1, algo="im2col")
    conv.post = (UNARY_CLIP, 1.0, 0.0)
    assert conv._epilogue() == {"post_fn": UNARY_CLIP, "post_a": 1.0, "post_b": 0.0}


# Every function the Graph fuses after a conv, with the arguments _unary_args gives it.
FNS = sorted(_C_UNARY)


@pytest.mark.parametrize("fn", FNS)
@pytest.mark.parametrize("case", SHAPES, ids=_case_id)
def test_functions_in_every_algorithm_every_isa(fn, case, isa, rng):
    xs, ws, stride, pad, groups = case
    x, w, b = conv_data(rng, *xs, ws[0], ws[1], ws[2], ws[3])
    x *= 3
    x[0, 0, 0, 0] = np.nan
    s = ConvShape(xs, ws, stride, pad, 1, groups)
    res = rng.standard_normal((s.N, s.K, s.Ho, s.Wo), dtype=np.float32)
    post = _unary_args(fn, None, None, -1.0, 2.0)
    for algo in _algos(s):
        if registry.CONV[algo].rel_error_bound:
            continue  # Winograd: the same store path, run by the clamp test above
        for relu, r in ((False, None), (True, res)):
            conv = pycnn.prepare_conv(
                w, b, stride=stride, padding=pad, groups=groups, algo=algo, activation="relu" if relu else None
            )
            conv.post = post
            z = _want(x, w, b, stride, pad, groups, relu, -np.inf, np.inf, r)
            kw = dict(lo=-1.0, hi=2.0) if fn == "clip" else dict(alpha=post[1], beta=post[2])
            with np.errstate(all="ignore"):
                want = reference.unary(z, fn, **kw)
            call = conv.bind([xs], None)
            assert isinstance(call, _C.BoundConv)  # the kernel's own call: no pass after it
            for y in (conv(x, residual=r), call(x, r)):
                np.testing.assert_array_equal(np.isnan(y), np.isnan(want), err_msg=f"{algo} {fn}")
                np.testing.assert_allclose(np.nan_to_num(y), np.nan_to_num(want), rtol=2e-5, atol=2e-5, err_msg=algo)


@pytest.mark.parametrize("fn", ["silu", "hardswish"])
def test_functions_with_blocked_tensors_every_isa(fn, isa, rng):
    for algo, xs, ws, pad, groups, bits in [
        ("direct_oc", (2, 32, 8, 8), (32, 32, 1, 1), 0, 1, layout.X_BLOCKED | layout.Y_BLOCKED),
        ("direct_oc", (2, 32, 8, 14), (80, 32, 1, 1), 0, 1, layout.X_BLOCKED | layout.Y_BLOCKED),  # merged
        ("direct_oc", (2, 16, 8, 8), (32, 16, 3, 3), 1, 1, layout.Y_BLOCKED),
        ("winograd_f4", (2, 16, 8, 8), (32, 16, 3, 3), 1, 1, layout.Y_BLOCKED),
        ("winograd_f2", (2, 16, 8, 8), (32, 16, 3, 3), 1, 1, 0),
        ("depthwise_c16", (2, 32, 8, 8), (32, 1, 3, 3), 1, 32, layout.X_BLOCKED | layout.Y_BLOCKED),
    ]:
        x, w, b = conv_data(rng, *xs, ws[0], ws[1], ws[2], ws[3])
        x *= 3
        conv = pycnn.prepare_conv(w, b, padding=pad, groups=groups, algo=algo)
        conv.post = _unary_args(fn, None, None, None, None)
        y = conv.bind([xs], None, layout=(bits, algo))(blk(x) if bits & layout.X_BLOCKED else x)
        y = unblk(y) if bits & layout.Y_BLOCKED else y
        z = _want(x, w, b, 1, pad, groups, False, -np.inf, np.inf)
        want = reference.unary(z, fn, alpha=None, beta=None)
        tol = 5 * (registry.CONV[algo].rel_error_bound or 1e-6) * np.abs(z).max()
        np.testing.assert_allclose(y, want, rtol=0, atol=tol, err_msg=algo)


@pytest.mark.parametrize("fn", FNS)
def test_functions_at_extreme_inputs_every_isa(fn, isa):
    """The epilogue's vector functions where exp over- and underflows (|v| > 87), at huge and tiny
    values, and at +-inf and NaN: an identity conv (1x1 eye, or a depthwise 3x3 with only its
    centre tap) makes y the finite values themselves, and three channels with zero weights take
    +inf, -inf and NaN from their bias; y must be reference.unary of the conv's exact output."""
    vals = np.array(
        [0.0, -0.0, 1e-30, -1e-30, 0.05, -0.05, 3.0, -3.0, 20.0, -20.0, 87.0, -87.0, 88.0, -88.0, 89.0, -89.0,
         100.0, -100.0, 1e4, -1e4, 3e38, -3e38, 0.5, -0.5, 6.0, -6.0, 7.0, -7.0, 1.0, -1.0, 0.1, -0.1],
        np.float32,
    )  # fmt: skip
    x = np.tile(vals, 16 * 4)[: 16 * 8 * 16].reshape(1, 16, 8, 16)
    bias = np.zeros(16, np.float32)
    bias[13:] = np.inf, -np.inf, np.nan
    z = x.copy()
    z[0, 13:] = bias[13:, None, None]
    post = _unary_args(fn, None, None, -1.0, 2.0)
    kw = dict(lo=-1.0, hi=2.0) if fn == "clip" else dict(alpha=post[1], beta=post[2])
    with np.errstate(all="ignore"):
        want = reference.unary(z, fn, **kw)
    eye = np.eye(16, dtype=np.float32)
    eye[13:] = 0
    centre = np.zeros((16, 1, 3, 3), np.float32)
    centre[:13, 0, 1, 1] = 1
    for algo, w, pad, groups, bits in [
        ("direct_oc", eye[:, :, None, None], 0, 1, 0),
        ("direct_oc", eye[:, :, None, None], 0, 1, layout.X_BLOCKED | layout.Y_BLOCKED),
        ("im2col", eye[:, :, None, None], 0, 1, 0),
        ("depthwise_c16", centre, 1, 16, 0),
        ("depthwise_c16", centre, 1, 16, layout.X_BLOCKED | layout.Y_BLOCKED),
    ]:
        conv = pycnn.prepare_conv(w, bias, padding=pad, groups=groups, algo=algo)
        conv.post = post
        y = conv.bind([x.shape], None, layout=(bits, algo))(blk(x) if bits & layout.X_BLOCKED else x)
        y = unblk(y) if bits & layout.Y_BLOCKED else y
        np.testing.assert_array_equal(np.isnan(y), np.isnan(want), err_msg=f"{algo} {bits}")
        np.testing.assert_array_equal(np.isinf(y), np.isinf(want), err_msg=f"{algo} {bits}")
        fin = np.isfinite(want)
        np.testing.assert_allclose(y[fin], want[fin], rtol=2e-6, atol=1e-6, err_msg=f"{algo} {bits}")
