"""Shared helpers: data, tolerances, the ISA paths this CPU can run, and the outside referee."""

import contextlib

import numpy as np
import pytest

import pycnn
from pycnn import _C, registry

ISAS = [
    isa
    for isa in ("generic", "avx2", "avx512")
    if ("generic", "avx2", "avx512").index(isa) <= ("generic", "avx2", "avx512").index(_C.cpu_isa())
]

try:
    import torch
    import torch.nn.functional as TF

    torch.set_num_threads(2)
except ImportError:  # the [test] extra installs torch; without it the torch comparisons skip
    torch = None
    TF = None

needs_torch = pytest.mark.skipif(torch is None, reason="torch is not installed (pip install -e .[test])")


@pytest.fixture(params=ISAS)
def isa(request):
    """Runs a test once per ISA path this CPU supports, restoring the best one afterwards."""
    _C.set_isa(request.param)
    yield request.param
    _C.set_isa(_C.cpu_isa())


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def conv_data(rng, N, C, H, W, K, Cg, R, S, bias=True):
    """x ~ N(0, 1); w scaled by 1/sqrt(fan_in) so outputs are O(1) whatever the layer."""
    x = rng.standard_normal((N, C, H, W), dtype=np.float32)
    w = (rng.standard_normal((K, Cg, R, S)) / np.sqrt(Cg * R * S)).astype(np.float32)
    b = rng.standard_normal(K, dtype=np.float32) if bias else None
    return x, w, b


def assert_close(y, ref, atol=2e-5, rtol=1e-4, what=""):
    """|y - ref| <= atol + rtol * |ref| elementwise; NaN positions and infinities must agree."""
    ref = np.asarray(ref, np.float64)
    y = np.asarray(y, np.float64)
    assert y.shape == ref.shape, f"{what}: shape {y.shape} != {ref.shape}"
    nan_y, nan_r = np.isnan(y), np.isnan(ref)
    assert np.array_equal(nan_y, nan_r), f"{what}: NaN positions differ ({nan_y.sum()} vs {nan_r.sum()})"
    inf_r = np.isinf(ref)
    assert np.array_equal(y[inf_r], ref[inf_r]), f"{what}: infinities differ"
    ok = ~nan_r & ~inf_r
    err = np.abs(y[ok] - ref[ok])
    bound = atol + rtol * np.abs(ref[ok])
    if err.size:
        worst = int(np.argmax(err - bound))
        assert np.all(err <= bound), (
            f"{what}: max excess {float((err - bound)[worst]):.3g} "
            f"(err {float(err[worst]):.3g}, ref {float(ref[ok][worst]):.3g})"
        )


def conv_poisoned(x, w, b, stride=1, padding=0, dilation=1, groups=1, algo="im2col", relu=False):
    """Calls the kernel directly with an output pre-filled with NaN, so a kernel that skips
    writing any element fails the comparison."""
    s = pycnn.ops.ConvShape(x.shape, w.shape, stride, padding, dilation, groups)
    y = np.full((s.N, s.K, s.Ho, s.Wo), np.nan, np.float32)
    _C.conv2d(
        x, w, b, y, s.stride[0], s.stride[1], s.pad[0], s.pad[1], s.dilation[0], s.dilation[1], s.groups, algo, relu
    )
    return y


# The conv algorithms the tests run, from the registry (pycnn/registry.py): a new one is tested by
# being listed there. EXACT: those summing the reference's products in another order (checked
# elementwise); the others carry a documented normwise bound (Winograd's tiles).
# EXACT_ALGOS run every dense convolution; an algorithm for one family only (depthwise) is run
# by the tests of ODD_CASES it takes and by its own file (test_depthwise.py).
NATIVE_ALGOS = registry.names(kind=registry.NATIVE)
_DENSE = pycnn.ops.ConvShape((1, 4, 8, 8), (4, 4, 3, 3), 1, 1, 1, 1)
DENSE_ALGOS = [a for a in NATIVE_ALGOS if registry.CONV[a].supports(_DENSE)]
EXACT_ALGOS = [a for a in DENSE_ALGOS if not registry.CONV[a].rel_error_bound]
BOUNDED_ALGOS = [a for a in NATIVE_ALGOS if registry.CONV[a].rel_error_bound]


def runs(algo, x_shape, w_shape, stride=1, padding=0, dilation=1, groups=1):
    """Whether algo runs this convolution (the registry's rule)."""
    return registry.CONV[algo].supports(pycnn.ops.ConvShape(x_shape, w_shape, stride, padding, dilation, groups))


def assert_conv_close(y, ref, algo, what="", r=3, s=None):
    """The check each algorithm is held to: elementwise for the exact-arithmetic algorithms,
    the registry's documented normwise bound (max|y - y64| / max|y64|) for the others (on r x s
    kernels, s = r unless given: Winograd's 5x5 and one-dimensional tiles have their own)."""
    bound = registry.CONV[algo].kernel_error_bound(r, r if s is None else s)
    if bound:
        ref = np.asarray(ref, np.float64)
        err = np.abs(np.asarray(y, np.float64) - ref).max() / max(np.abs(ref).max(), 1e-30)
        assert err <= bound, f"{what}: {algo} relative error {err:.3g} (bound {bound:g})"
    else:
        assert_close(y, ref, what=what)


def blk(a):
    """NCHW -> channel-blocked (N, C/16, H, W, 16), written out with NumPy (the oracle of
    _C.to_blocked16 and of the kernels that read the layout)."""
    N, C, H, W = a.shape
    return np.ascontiguousarray(a.reshape(N, C // 16, 16, H, W).transpose(0, 1, 3, 4, 2))


def unblk(a):
    """Channel-blocked (N, C/16, H, W, 16) -> NCHW."""
    N, CB, H, W, _ = a.shape
    return np.ascontiguousarray(a.transpose(0, 1, 4, 2, 3).reshape(N, CB * 16, H, W))


@contextlib.contextmanager
def num_threads(n):
    """pycnn's kernel threads set to n inside the block, restored after it."""
    old = pycnn.get_num_threads()
    pycnn.set_num_threads(n)
    try:
        yield
    finally:
        pycnn.set_num_threads(old)
