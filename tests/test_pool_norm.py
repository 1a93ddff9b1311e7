"""Pooling, LRN and global average pooling against the reference and PyTorch."""

import numpy as np
import pytest

import pycnn
from conftest import TF, assert_close, needs_torch, torch
from pycnn import _C, reference
from pycnn.models import POOL_LAYERS

POOL_CASES = [  # (N, C, H, W, kernel, stride, padding, ceil_mode)
    (1, 1, 1, 1, 1, 1, 0, False),
    (2, 3, 7, 7, 2, 2, 0, False),
    (2, 3, 7, 7, 2, 2, 0, True),
    (1, 5, 15, 17, 3, 2, 1, True),
    (1, 7, 13, 13, 3, 2, 0, True),
    (3, 2, 9, 6, (3, 2), (2, 1), (1, 1), False),
    (1, 4, 10, 11, 3, 1, 1, True),
    (1, 3, 6, 6, 6, 6, 0, False),
    (1, 2, 8, 8, 4, 3, 2, True),
    # stride-1 columns on maps up to 4 vectors wide take the separable plane path
    (2, 5, 7, 7, 3, 1, 1, True),  # GoogLeNet's 3x3/1 branch pool
    (1, 330, 7, 7, 3, 1, 1, True),  # the same on two threads (16k input elements)
    (1, 3, 28, 40, 3, 1, 1, False),  # 40 columns: 3 AVX-512 / 5 AVX2 vectors
    (1, 2, 9, 33, (2, 4), (2, 1), (0, 2), True),  # row stride 2, column stride 1
    (1, 2, 5, 3, (3, 7), 1, (1, 3), False),  # window wider than the input
    (1, 2, 9, 70, (3, 5), 1, (1, 2), False),  # 70 columns: the row path again
    # column stride 2, windows up to 3 wide: in registers (even, odd and shifted even lanes)
    (1, 3, 11, 75, 3, 2, 1, True),  # 38 columns: several vectors and a tail
    (2, 4, 14, 14, 3, (1, 2), 1, False),  # row stride 1, 7 columns
    (1, 2, 9, 112, 3, 2, 1, False),  # ResNet's pool: 56 columns, inner blocks unmasked
    (1, 2, 9, 20, (3, 1), 2, 0, False),  # window one column wide
    (1, 3, 150, 151, 3, 2, 1, True),  # two threads, one starting mid-plane (225 rows)
    (2, 3, 10, 33, (1, 2), 2, (0, 1), True),  # window one row high, last column padding only
    # column stride 2 with wider windows: the row path's even lanes of two vectors per column
    (2, 2, 6, 64, (2, 4), 2, (0, 1), False),  # even window, 32 columns
    (1, 3, 9, 30, (3, 4), 2, (1, 2), True),  # 16 columns, padding on both sides, ceil
]


def _poisoned(fn, x, kernel, stride, padding, ceil_mode, *extra):
    kh, kw, sh, sw, ph, pw, Ho, Wo = pycnn.ops._pool_geometry(x, kernel, stride, padding, ceil_mode)
    y = np.full(x.shape[:2] + (Ho, Wo), np.nan, np.float32)
    fn(x, y, kh, kw, sh, sw, ph, pw, *extra)
    return y


@pytest.mark.parametrize("case", POOL_CASES)
def test_max_pool(case, isa, rng):
    N, C, H, W, k, s, p, ceil = case
    x = rng.standard_normal((N, C, H, W), dtype=np.float32)
    ref = reference.max_pool2d(x, k, s, p, ceil)
    assert_close(_poisoned(_C.max_pool2d, x, k, s, p, ceil), ref, atol=0, rtol=0)
    assert_close(pycnn.max_pool2d(x, k, s, p, ceil_mode=ceil), ref, atol=0, rtol=0)


@pytest.mark.parametrize("case", POOL_CASES)
@pytest.mark.parametrize("cip", [True, False])
def test_avg_pool(case, cip, isa, rng):
    N, C, H, W, k, s, p, ceil = case
    x = rng.standard_normal((N, C, H, W), dtype=np.float32)
    ref = reference.avg_pool2d(x.astype(np.float64), k, s, p, ceil, cip)
    assert_close(_poisoned(_C.avg_pool2d, x, k, s, p, ceil, cip), ref, atol=1e-6, rtol=1e-5)


@needs_torch
@pytest.mark.parametrize("case", POOL_CASES)
def test_pools_against_torch(case, rng):
    N, C, H, W, k, s, p, ceil = case
    x = rng.standard_normal((N, C, H, W), dtype=np.float32)
    t = torch.from_numpy(x)
    assert_close(pycnn.max_pool2d(x, k, s, p, ceil_mode=ceil), TF.max_pool2d(t, k, s, p, ceil_mode=ceil).numpy(), 0, 0)
    for cip in (True, False):
        want = TF.avg_pool2d(t, k, s, p, ceil_mode=ceil, count_include_pad=cip).numpy()
        assert_close(pycnn.avg_pool2d(x, k, s, p, ceil, cip), want, 1e-6, 1e-5)


@pytest.mark.parametrize("layer", POOL_LAYERS, ids=lambda l: l.id)
def test_lecture_pool_layers(layer, rng):
    x = rng.standard_normal((2, layer.C, layer.H, layer.W), dtype=np.float32)
    if layer.kind == "max":
        ref = reference.max_pool2d(x, layer.kernel, layer.stride, layer.pad, layer.ceil_mode)
        assert_close(pycnn.max_pool2d(x, layer.kernel, layer.stride, layer.pad, ceil_mode=layer.ceil_mode), ref, 0, 0)
    else:
        ref = reference.avg_pool2d(x.astype(np.float64), layer.kernel, layer.stride, layer.pad, layer.ceil_mode)
        assert_close(pycnn.avg_pool2d(x, layer.kernel, layer.stride, layer.pad, layer.ceil_mode), ref, 1e-6, 1e-5)


@pytest.mark.parametrize("width", [8, 40])
def test_max_pool_nan_inf(isa, rng, width):
    x = rng.standard_normal((1, 2, 8, width), dtype=np.float32)
    x[0, 0, 3, 3] = np.nan
    x[0, 1, 0, 0] = np.inf
    x[0, 1, 7, 7] = -np.inf
    # stride 2: in registers (4 and 20 outputs wide); stride 1: the plane path
    for stride in (2, 1):
        y = pycnn.max_pool2d(x, 3, stride, 1, ceil_mode=True)
        ref = reference.max_pool2d(x, 3, stride, 1, True)
        assert np.isnan(y).sum() == np.isnan(ref).sum() > 0
        assert_close(y, ref, 0, 0)
        assert np.isinf(y[0, 1, 0, 0])


def test_global_avg_pool(rng):
    x = rng.standard_normal((3, 5, 7, 9), dtype=np.float32)
    y = pycnn.global_avg_pool2d(x)
    assert y.shape == (3, 5, 1, 1)
    assert_close(y, reference.global_avg_pool2d(x.astype(np.float64)), 1e-6, 1e-5)


LRN_CASES = [(1, 1, 3, 3, 5), (2, 7, 5, 4, 5), (1, 96, 55, 55, 5), (1, 16, 3, 300, 4), (2, 3, 2, 2, 1), (1, 5, 2, 2, 9)]


@pytest.mark.parametrize("case", LRN_CASES)
@pytest.mark.parametrize("beta", [0.75, 0.5])
def test_lrn(case, beta, rng):
    N, C, H, W, size = case
    x = rng.standard_normal((N, C, H, W), dtype=np.float32) * 3
    ref = reference.local_response_norm(x.astype(np.float64), size, 1e-2, beta, 2.0)
    y = np.full_like(x, np.nan)
    _C.local_response_norm(x, y, size, 1e-2, beta, 2.0)
    assert_close(y, ref, 1e-6, 1e-5)


@needs_torch
def test_lrn_against_torch(rng):
    x = rng.standard_normal((2, 96, 27, 27), dtype=np.float32)
    want = TF.local_response_norm(torch.from_numpy(x), 5, 1e-4, 0.75, 2.0).numpy()
    assert_close(pycnn.local_response_norm(x, 5, 1e-4, 0.75, 2.0), want, 1e-6, 1e-5)


def test_lrn_inf_stays_local():
    """An Inf affects only the channels whose window holds it (no Inf - Inf = NaN leak)."""
    x = np.ones((1, 9, 1, 1), np.float32)
    x[0, 2] = np.inf
    y = pycnn.local_response_norm(x, 3)
    ref = reference.local_response_norm(x.astype(np.float64), 3)
    assert_close(y, ref, 1e-6, 1e-5)
    assert np.isfinite(y[0, 5:]).all()


@pytest.mark.parametrize(
    "shape", [(1, 1, 5, 5), (2, 3, 7, 7), (1, 96, 56, 56), (2, 768, 7, 7), (1, 20, 1, 300), (3, 4)]
)
def test_channel_norm_matches_the_reference(shape, rng):
    """LayerNorm over axis 1 of (N, C, ...) (ConvNeXt's, on NCHW): pixel tiles and their tails,
    one channel (every output is the bias), a 2-D input."""
    x = (rng.standard_normal(shape) * 3 + 2).astype(np.float32)
    C = shape[1]
    w, b = rng.uniform(0.5, 1.5, C).astype(np.float32), rng.standard_normal(C).astype(np.float32)
    y = np.full_like(x, np.nan)
    _C.layer_norm_channels(x, w, b, 1e-6, y)
    want = np.moveaxis(reference.layer_norm(np.moveaxis(x, 1, -1).astype(np.float64), -1, 1e-6, w, b), -1, 1)
    assert_close(y, want, atol=1e-4)
    op = pycnn.layers.OPS["channel_norm"]
    a, p = {"eps": 1e-6}, {"weight": w, "bias": b}
    assert_close(op.kernel(a, p, "auto")(x), want, atol=1e-4)
    assert_close(op.reference(a, p, [x.astype(np.float64)]), want, atol=1e-9)


def test_channel_norm_nan_inf_stay_in_their_pixel(rng):
    x = rng.standard_normal((1, 8, 4, 5)).astype(np.float32)
    x[0, 3, 1, 2], x[0, 5, 2, 4] = np.nan, np.inf
    y = np.empty_like(x)
    _C.layer_norm_channels(x, np.ones(8, np.float32), np.zeros(8, np.float32), 1e-5, y)
    bad = np.zeros((4, 5), bool)
    bad[1, 2] = bad[2, 4] = True
    assert np.isnan(y[0][:, bad]).all() and np.isfinite(y[0][:, ~bad]).all()


def test_channel_norm_checks(rng):
    x = np.ones((1, 4, 3, 3), np.float32)
    y = np.empty_like(x)
    with pytest.raises(ValueError, match="weight/bias"):
        _C.layer_norm_channels(x, np.ones(3, np.float32), np.zeros(4, np.float32), 1e-5, y)
    with pytest.raises(ValueError, match="eps"):
        _C.layer_norm_channels(x, np.ones(4, np.float32), np.zeros(4, np.float32), float("nan"), y)
    with pytest.raises(ValueError, match="out"):
        _C.layer_norm_channels(x, np.ones(4, np.float32), np.zeros(4, np.float32), 1e-5, y[:, :2])
    with pytest.raises(ValueError, match="channels"):
        node = pycnn.Node("n", "channel_norm", ["x"], params={"weight": np.ones(3)})
        pycnn.Graph({"x": (None, 4, 3, 3)}, [node], ["n"])(x)
