"""linear, SGEMM, relu, add, softmax, concat, batch norm."""

import shutil
import subprocess

import numpy as np
import pytest

import pycnn
from conftest import TF, assert_close, needs_torch, num_threads, torch
from pycnn import _C, reference


# M a multiple of 8 but not 12 takes AVX-512's 8-row x 48-column micro-kernel: N = 47, 80 and
# 452 end their last panel on the 3-, 2- and 2-vector variants, N = 97, 196, 99, 98, 51, 49 and 1
# (1, 4, 3, 2, 3, 1 and 1 columns left) on the kernels that vectorize down the rows, their panel
# packed 4 columns wide; K = 257, 301, 259 and 513 leave depth blocks of 1, 45, 3 and 1 (the
# column kernels' k-chain tails). M = 100, 4, 25 and 1 leave a last 8-row panel of at most 4 real
# rows (the 4-row kernels: 3-, 2- and 1-vector variants at N = 60, 70; K = 700 accumulates over
# three depth blocks). A last panel a few columns past whole vectors runs as a vector kernel and a
# column kernel (sgemm.cpp split_heads): avx2's 6 x 16 panels at N = 169, 27 and 12 (9, 11 and 12
# columns: 8 + 1, 8 + 3, 8 + 4), AVX-512's 8 x 48 ones at N = 17 and 83 (16 + 1, 32 + 3).
@pytest.mark.parametrize(
    "shape",
    [
        (1, 1, 1),
        (7, 17, 3),
        (13, 33, 300),
        (100, 70, 513),
        (12, 64, 256),
        (4, 60, 130),
        (100, 60, 700),
        (25, 49, 600),
        (1, 2, 1000),
        (16, 47, 40),
        (64, 97, 300),
        (8, 80, 33),
        (40, 452, 130),
        (16, 196, 70),
        (8, 99, 257),
        (24, 98, 301),
        (8, 51, 259),
        (16, 1, 77),
        (8, 49, 513),
        (37, 53, 21),  # A and B^T packed with partial row groups and a k tail on every ISA
        (6, 169, 300),
        (12, 27, 70),
        (30, 12, 513),
        (8, 17, 40),
        (16, 83, 300),
    ],
)
@pytest.mark.parametrize("bt", [False, True])
def test_sgemm(shape, bt, isa, rng):
    M, N, K = shape
    a = rng.standard_normal((M, K), dtype=np.float32)
    b = rng.standard_normal((N, K) if bt else (K, N), dtype=np.float32)
    bias_r = rng.standard_normal(M, dtype=np.float32)
    bias_c = rng.standard_normal(N, dtype=np.float32)
    c = np.full((M, N), np.nan, np.float32)
    _C.sgemm(a, b, c, bias_r, bias_c, True, bt)
    ref = a.astype(np.float64) @ (b.T if bt else b).astype(np.float64) + bias_r[:, None] + bias_c[None]
    assert_close(c, np.maximum(ref, 0), atol=1e-4 * np.sqrt(K), rtol=1e-4)


@pytest.mark.parametrize(
    "shape",
    [
        (100, 48, 900),
        (100, 48, 512),
        (40, 196, 1500),
        (104, 30, 601),
        (40, 7, 2000),
        (256, 169, 600),
        (200, 70, 700),
        (100, 65, 900),
    ],
)
@pytest.mark.parametrize("threads", [2, 3])
def test_sgemm_depth_split(shape, threads, isa, rng):
    """One GEMM whose row panels split unevenly over the threads (13, 3, 5 panels of 8) and whose
    depth is at least 256 per thread runs with the depth split (each thread a share of K into
    its own partial C, summed with the epilogue after): shares that end inside a packed depth
    block (900 / 2, 601 / 3), on one (512 / 2), a last panel of 4 columns (196), bias per row and
    column, ReLU, and a NaN in A reaching only its row. Many panels split unevenly take it when
    the partial C is small (sgemm.cpp kKsplitMaxPartialBytes): 256 rows = 43 panels of 6 on avx2,
    200 rows = 25 panels of 8 on avx512. Last panels split into a vector and a column kernel
    there too: 169 columns on avx2 (16 x 10 + 8 + 1), 65 on avx512's 8 x 48 panels (48 + 16 + 1)."""
    M, N, K = shape
    a = rng.standard_normal((M, K), dtype=np.float32)
    a[M // 2, K - 3] = np.nan
    b = rng.standard_normal((K, N), dtype=np.float32)
    bias_r = rng.standard_normal(M, dtype=np.float32)
    bias_c = rng.standard_normal(N, dtype=np.float32)
    c = np.full((M, N), np.nan, np.float32)
    with num_threads(threads):
        _C.sgemm(a, b, c, bias_r, bias_c, True, False)
    ref = a.astype(np.float64) @ b.astype(np.float64) + bias_r[:, None] + bias_c[None]
    assert_close(c, np.maximum(ref, 0), atol=1e-4 * np.sqrt(K), rtol=1e-4)
    assert np.isnan(c[M // 2]).all() and np.isnan(c).sum() == N


@pytest.fixture
def large_b_mode():
    """Sets sgemm's large-B mode (_C.set_sgemm_large_b) for a test, back to per vendor after."""
    yield _C.set_sgemm_large_b
    _C.set_sgemm_large_b(-1)


@pytest.mark.parametrize(
    "shape", [(64, 1000, 300), (70, 1001, 600), (384, 520, 513), (264, 700, 400), (6, 2100, 130), (5, 1500, 300)]
)
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("mode", [2, 1, 0])
def test_sgemm_large_b_modes(shape, threads, mode, isa, rng, large_b_mode):
    """One GEMM of up to 384 rows with a row-major B of 1 MiB or more (sgemm.cpp kDirectOneMaxRows),
    B copied by each panel's first row panel (mode 2, the default on Intel's cores), read in place
    by every row panel (1, the default on AMD's) or packed first (0; also mode 2 beyond 24 row
    panels: 384 rows): several depth blocks (staged C), a second row block reading the copies (264
    rows: 22 panels of 12 on avx512), one panel of fewer rows than MR (6, 5) doing the copy, whole
    panels read in place and a last partial panel packed (1001, 520 columns), bias per row and
    column, ReLU, a NaN in B reaching only its column and an Inf in A its row."""
    large_b_mode(mode)
    assert _C.sgemm_large_b() == mode
    M, N, K = shape
    a = rng.standard_normal((M, K), dtype=np.float32)
    b = rng.standard_normal((K, N), dtype=np.float32)
    b[K // 2, N - 2] = np.nan
    a[1, 3] = np.inf
    bias_r = rng.standard_normal(M, dtype=np.float32)
    bias_c = rng.standard_normal(N, dtype=np.float32)
    c = np.full((M, N), -7.0, np.float32)
    with num_threads(threads):
        _C.sgemm(a, b, c, bias_r, bias_c, True, False)
    with np.errstate(invalid="ignore"):
        ref = np.maximum(a.astype(np.float64) @ b.astype(np.float64) + bias_r[:, None] + bias_c[None], 0)
    assert np.isnan(c[:, N - 2]).all()
    keep = np.ones(N, bool)
    keep[N - 2] = False
    assert_close(c[:, keep], ref[:, keep], atol=1e-4 * np.sqrt(K), rtol=1e-4)


@pytest.mark.parametrize("shape", [(500, 100, 600), (250, 169, 300), (37, 90, 1000)])
@pytest.mark.parametrize("threads", [1, 2])
def test_sgemm_packs_a_per_row_block(shape, threads, isa, rng):
    """A per-call GEMM whose work items each cover all columns packs A a row block at a time just
    before use (sgemm.cpp, lazy_a in the wide order): several row blocks of up to 240 rows and a
    last panel of fewer rows (500, 250, 37), several depth blocks (600, 300, 1000), bias per row and
    column, ReLU, a NaN in A reaching only its row. 37 rows at 2 threads split unevenly take the
    depth split, which packs each panel's depth share just before use the same way."""
    M, N, K = shape
    a = rng.standard_normal((M, K), dtype=np.float32)
    a[M - 2, K // 2] = np.nan
    b = rng.standard_normal((K, N), dtype=np.float32)
    bias_r = rng.standard_normal(M, dtype=np.float32)
    bias_c = rng.standard_normal(N, dtype=np.float32)
    c = np.full((M, N), -7.0, np.float32)
    with num_threads(threads):
        _C.sgemm(a, b, c, bias_r, bias_c, True, False)
    ref = np.maximum(a.astype(np.float64) @ b.astype(np.float64) + bias_r[:, None] + bias_c[None], 0)
    assert np.isnan(c[M - 2]).all() and np.isnan(c).sum() == N
    keep = np.ones(M, bool)
    keep[M - 2] = False
    assert_close(c[keep], ref[keep], atol=1e-4 * np.sqrt(K), rtol=1e-4)


def test_l2_cache_bytes_is_the_os_report():
    """direct_oc's weight groups are sized by one core's L2 (_C.l2_cache_bytes): the OS's
    report where it has one (getconf LEVEL2_CACHE_SIZE), kept within [256 KiB, 4 MiB], else 1 MiB."""
    if shutil.which("getconf") is None:
        pytest.skip("no getconf here to read the OS's report")
    out = subprocess.run(["getconf", "LEVEL2_CACHE_SIZE"], capture_output=True, text=True).stdout.strip()
    reported = int(out) if out.isdigit() else 0
    assert _C.l2_cache_bytes() == (min(max(reported, 256 << 10), 4 << 20) if reported > 0 else 1 << 20)


def test_sgemm_large_b_rule_follows_the_vendor(large_b_mode):
    """The default (-1) reads a large B in place on AMD's cores and copies it by its first use on
    the others, as measured on each vendor (docs/performance.md, SGEMM); a mode other than -1, 0, 1
    or 2 is refused naming it and leaves the mode as it was."""
    with open("/proc/cpuinfo") as f:
        amd = "AuthenticAMD" in f.read()
    assert _C.cpu_is_amd() == amd
    large_b_mode(-1)
    assert _C.sgemm_large_b() == (1 if amd else 2)
    for bad in (3, -2):
        with pytest.raises(ValueError, match="mode"):
            large_b_mode(bad)
    assert _C.sgemm_large_b() == (1 if amd else 2)


def test_sgemm_depth_split_conv_residual(rng):
    """The depth split under a convolution with a residual join: 100 filters over 64 x 3 x 3
    (576 deep), stride 2 to 9 x 9 at batch 1, relu(conv + b + r) equal to the reference."""
    x = rng.standard_normal((1, 64, 17, 17), dtype=np.float32)
    w = rng.standard_normal((100, 64, 3, 3), dtype=np.float32) / 24
    bias = rng.standard_normal(100, dtype=np.float32)
    r = rng.standard_normal((1, 100, 9, 9), dtype=np.float32)
    with num_threads(2):
        f = pycnn.prepare_conv(w, bias, stride=2, padding=1, algo="im2col", activation="relu").bind([x.shape], None)
        y = f(x, residual=r)
    ref = (
        reference.conv2d(
            x.astype(np.float64), w.astype(np.float64), bias.astype(np.float64), (2, 2), (1, 1, 1, 1), (1, 1), 1, None
        )
        + r
    )
    assert_close(y, np.maximum(ref, 0), 1e-4, 1e-4)


@pytest.mark.parametrize("N", [1, 2, 3, 4, 5, 8, 9, 16, 17])
@pytest.mark.parametrize("In", [300, 7])
def test_linear(N, In, rng, isa):
    """Every batch block of the GEMV kernels (1-8 rows, two blocks, the SGEMM path past 16) on
    every ISA, with W-row counts that leave partial row blocks and In with a partial vector."""
    x = rng.standard_normal((N, In), dtype=np.float32)
    w = rng.standard_normal((37, In), dtype=np.float32) / 17
    b = rng.standard_normal(37, dtype=np.float32)
    ref = reference.linear(x.astype(np.float64), w.astype(np.float64), b.astype(np.float64))
    y = np.full((N, 37), np.nan, np.float32)
    _C.linear(x, w, b, y, False)
    assert_close(y, ref, 1e-5, 1e-4)
    assert_close(pycnn.linear(x, w, b, activation="relu"), np.maximum(ref, 0), 1e-5, 1e-4)
    assert pycnn.linear(x[0], w, b).shape == (37,)


@pytest.mark.parametrize("N", [5, 8, 13])
def test_linear_large_weights_prefetched(N, rng, isa):
    """W of 32 MiB and more (the GEMV prefetches the next pass's rows for blocks of 5-8 x rows),
    a partial W-row block at the end, NaN in one x row and Inf in one W row propagating to those
    outputs only."""
    In, Out = 4096, 2049
    x = rng.standard_normal((N, In), dtype=np.float32)
    w = rng.standard_normal((Out, In), dtype=np.float32) / 64
    b = rng.standard_normal(Out, dtype=np.float32)
    x[1, 7] = np.nan
    w[5, 100] = np.inf
    ref = reference.linear(x.astype(np.float64), w.astype(np.float64), b.astype(np.float64))
    y = np.full((N, Out), 7.0, np.float32)
    _C.linear(x, w, b, y, False)
    assert np.isnan(y[1]).all() and not np.isnan(np.delete(y, 1, axis=0)).any()
    assert_close(np.delete(y, 1, axis=0), np.delete(ref, 1, axis=0), 1e-4, 1e-3)


@pytest.mark.parametrize("N", [1, 2, 3, 6, 7, 8, 9, 16])
@pytest.mark.parametrize("Out", [37, 64])
def test_bound_linear_panels(N, Out, rng, isa):
    """A bound linear on W^T's panels (batches 2-16 by the rule, any batch when asked): every
    x-row block (1-8 rows a pass, two passes past 8), a partial last panel of outputs, ReLU, NaN in
    one x row and Inf in one W row reaching those outputs only, and the same result as the GEMV."""
    In = 70
    x = rng.standard_normal((N, In), dtype=np.float32)
    w = rng.standard_normal((Out, In), dtype=np.float32) / 9
    b = rng.standard_normal(Out, dtype=np.float32)
    ref = reference.linear(x.astype(np.float64), w.astype(np.float64), b.astype(np.float64))
    panels = _C.bind_linear(w, b, N, False, panels=True)
    gemv = _C.bind_linear(w, b, N, False, panels=False)
    assert_close(panels(x), ref, 1e-5, 1e-4)
    assert_close(gemv(x), ref, 1e-5, 1e-4)
    relu = _C.bind_linear(w, None, N, True, panels=True)
    assert_close(relu(x), np.maximum(ref - b, 0), 1e-5, 1e-4)
    x[N - 1, 3] = np.nan
    w[5, 60] = np.inf
    y = _C.bind_linear(w, b, N, False, panels=True)(x)
    assert np.isnan(y[N - 1]).all() and not np.isnan(y[: N - 1]).any()
    assert np.isinf(y[: N - 1, 5]).all() and np.isfinite(np.delete(y[: N - 1], 5, axis=1)).all()


def test_bound_linear_rule_and_the_graph(rng):
    """The rule: panels for 2-16 rows (W under 8M floats), the GEMV at batch 1; a Graph's linear
    step binds through it."""
    assert [_C.linear_uses_panels(N, 1024, 1000) for N in (1, 2, 16, 17)] == [False, True, True, False]
    assert not _C.linear_uses_panels(8, 4096, 2048)  # 32 MiB: W from memory, the GEMV
    g = pycnn.models.get("lenet5")
    x = rng.standard_normal((8, 1, 32, 32)).astype(np.float32)
    assert_close(g(x), g.run_reference(x), 1e-4, 1e-3)


@needs_torch
def test_linear_against_torch(rng):
    x = rng.standard_normal((8, 512), dtype=np.float32)
    w = rng.standard_normal((100, 512), dtype=np.float32) / 20
    b = rng.standard_normal(100, dtype=np.float32)
    want = TF.linear(torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(b)).numpy()
    assert_close(pycnn.linear(x, w, b), want, 1e-5, 1e-4)


def test_relu_add_nan():
    x = np.array([-1.0, 0.0, 2.0, np.nan, -np.inf, np.inf], np.float32)
    np.testing.assert_array_equal(pycnn.relu(x), [0, 0, 2, np.nan, 0, np.inf])
    np.testing.assert_array_equal(pycnn.add(x, x), x + x)
    np.testing.assert_array_equal(pycnn.add(x, -2 * x, activation="relu"), reference.relu(x - 2 * x))


@pytest.mark.parametrize("axis", [-1, 0, 1])
def test_softmax(axis, rng):
    x = rng.standard_normal((4, 361), dtype=np.float32) * 5
    assert_close(pycnn.softmax(x, axis), reference.softmax(x.astype(np.float64), axis), 1e-7, 1e-5)


def test_softmax_special():
    x = np.array([[0, np.nan, 1], [-np.inf, -np.inf, -np.inf], [1000, 1000, -np.inf], [np.inf, 0, 0]], np.float32)
    y = pycnn.softmax(x)
    with np.errstate(invalid="ignore"):
        ref = reference.softmax(x.astype(np.float64))
    assert_close(y, ref, 1e-7, 1e-6)
    if torch is not None:
        assert_close(y, torch.softmax(torch.from_numpy(x), -1).numpy(), 1e-7, 1e-6)


@pytest.mark.parametrize("axis", [0, 1, 3])
def test_concat(axis, rng):
    xs = [rng.standard_normal((2, c, 3, 4), dtype=np.float32) for c in (1, 5, 3)]
    if axis != 1:
        xs = [rng.standard_normal((2, 3, 3, 4), dtype=np.float32) for _ in range(3)]
    np.testing.assert_array_equal(pycnn.concat(xs, axis), np.concatenate(xs, axis))


def test_batch_norm(rng):
    x = rng.standard_normal((2, 5, 4, 3), dtype=np.float32)
    m, v = rng.standard_normal(5, dtype=np.float32), rng.random(5, dtype=np.float32) + 0.1
    g, b = rng.standard_normal(5, dtype=np.float32), rng.standard_normal(5, dtype=np.float32)
    ref = reference.batch_norm(*(a.astype(np.float64) for a in (x, m, v, g, b)), eps=1e-3)
    assert_close(pycnn.batch_norm(x, m, v, g, b, eps=1e-3), ref, 1e-5, 1e-5)
    assert_close(pycnn.batch_norm(x, m, v, g, b, eps=1e-3, activation="relu"), np.maximum(ref, 0), 1e-5, 1e-5)
    if torch is not None:
        want = TF.batch_norm(*(torch.from_numpy(a) for a in (x, m, v, g, b)), training=False, eps=1e-3).numpy()
        assert_close(pycnn.batch_norm(x, m, v, g, b, eps=1e-3), want, 1e-5, 1e-5)
