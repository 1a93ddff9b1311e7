"""The CUDA kernels on the CPU emulator (pycnn._C_cuda_emu, built on every build): the emulator's
own model (barriers, shuffles, shared memory per block, cp.async, divergence detected), then every
kernel against the NumPy reference under more than one thread order, then the functional API on
the 'cuda_emu' device. The same kernels on a GPU: tests/test_cuda.py."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import pycnn
from pycnn import reference

E = pytest.importorskip("pycnn._C_cuda_emu", reason="pycnn._C_cuda_emu was not built (-DPYCNN_CUDA_EMU=OFF)")
ORDERS = ["forward", "reverse", "shuffle", "mixed"]


@pytest.fixture(params=["reverse", "shuffle"])
def order(request):
    """Each kernel test runs with the block's threads in two different orders."""
    E.set_schedule(request.param, 1234)
    yield request.param
    E.set_schedule("mixed")


@pytest.fixture
def be():
    return pycnn.backend("cuda_emu")


def P(a):
    return 0 if a is None else a.ctypes.data


def rel_err(y, want):
    want = np.asarray(want, np.float64)
    return float(np.abs(np.asarray(y, np.float64) - want).max() / max(np.abs(want).max(), 1e-30))


# ----------------------------------------------------------------------------- the emulator itself
@pytest.mark.parametrize("o", ORDERS)
def test_barrier_makes_shared_memory_exchange_correct_in_every_order(o):
    E.set_schedule(o, 7)
    x = np.arange(3 * 128, dtype=np.float32)
    y = np.empty_like(x)
    E.selftest("reverse", P(x), P(y), 3, 128)
    np.testing.assert_array_equal(y.reshape(3, 128), x.reshape(3, 128)[:, ::-1])
    E.set_schedule("mixed")


def test_a_missing_barrier_gives_a_wrong_result():
    # Static __shared__ memory keeps what the previous block on that OS thread left (as on a GPU),
    # so every launch reads data no earlier launch wrote: a stale value cannot pass for the right one.
    wrong = 0
    for i, o in enumerate(ORDERS):
        x = np.arange(2 * 64, dtype=np.float32) + 1000 * (i + 1)
        want = x.reshape(2, 64)[:, ::-1]
        E.set_schedule(o, 3)
        y = np.full_like(x, np.nan)
        E.selftest("reverse_nosync", P(x), P(y), 2, 64)
        wrong += not np.array_equal(y.reshape(2, 64), want)
    E.set_schedule("mixed")
    assert wrong == len(ORDERS), "a kernel without its barrier passed by luck in some order"


def test_shared_memory_is_per_block():
    out = np.full(16 * 64, -1, np.int32)
    E.selftest("block_shared", P(out), 0, 16, 64)
    np.testing.assert_array_equal(out.reshape(16, 64), np.repeat(np.arange(16)[:, None], 64, 1))


@pytest.mark.parametrize("o", ORDERS)
def test_warp_shuffles_and_votes(o):
    E.set_schedule(o, 11)
    x = np.random.default_rng(0).standard_normal(96).astype(np.float32)
    out = np.zeros((96, 8), np.float32)
    E.selftest("warp", P(x), P(out), 1, 96)
    E.set_schedule("mixed")
    for w in range(3):
        xs, ow = x[32 * w : 32 * w + 32], out[32 * w : 32 * w + 32]
        np.testing.assert_allclose(ow[:, 0], xs.sum(), rtol=1e-5)
        np.testing.assert_array_equal(ow[:, 1], xs[3])
        np.testing.assert_array_equal(ow[:, 2], np.r_[xs[1:], xs[31]])  # down by 1: the last lane keeps its own
        np.testing.assert_array_equal(ow[:, 3], np.r_[xs[0], xs[:-1]])
        assert (ow[:, 4] == np.float32(0xAAAAAAAA)).all()
        np.testing.assert_allclose(ow[:16, 5], xs[:16].sum(), rtol=1e-5)
        np.testing.assert_allclose(ow[16:, 5], xs[16:].sum(), rtol=1e-5)
        np.testing.assert_array_equal(ow[:, 6], np.arange(32))


def test_divergent_barriers_raise():
    y = np.zeros(64, np.float32)
    with pytest.raises(RuntimeError, match=r"__syncthreads\(\) divergence.*emu_selftest.cu"):
        E.selftest("divergent", P(y), 0, 1, 64, 20)
    with pytest.raises(RuntimeError, match="not reached by every thread.*exited"):
        E.selftest("divergent_exit", P(y), 0, 1, 64, 20)
    E.selftest("divergent", P(y), 0, 1, 64, 64)  # every thread on one side: fine
    np.testing.assert_array_equal(y, 1.0)


def test_cp_async_lands_at_the_wait_with_zero_fill():
    x = np.random.default_rng(1).standard_normal(64 * 8).astype(np.float32)
    y = np.zeros_like(x)
    E.selftest("cp_async", P(x), P(y), 1, 64)
    want = np.roll(x.reshape(64, 8), -1, axis=0).copy()
    want[:, [5, 7]] = 0.0
    np.testing.assert_array_equal(y.reshape(64, 8), want)


def test_dynamic_shared_memory_and_its_limit():
    x = np.arange(2 * 256, dtype=np.float32)
    y = np.empty_like(x)
    E.selftest("dynamic_shared", P(x), P(y), 2, 256, 1024)
    np.testing.assert_array_equal(y.reshape(2, 256), x.reshape(2, 256)[:, ::-1])
    with pytest.raises(RuntimeError, match="dynamic shared memory.*cudaFuncSetAttribute"):
        E.selftest("dynamic_shared", P(x), P(y), 2, 256, 64 * 1024)


def test_atomics_across_blocks_on_several_threads():
    c, f = np.zeros(1, np.int32), np.zeros(1, np.float32)
    E.selftest("atomic", P(c), P(f), 40, 96)
    assert c[0] == 40 * 96 and f[0] == 40 * 96 * 0.5


@pytest.mark.parametrize("blocks,threads", [(1, 0), (1, 1025), (0, 32)])
def test_bad_launch_configurations_raise(blocks, threads):
    y = np.zeros(4, np.int32)
    with pytest.raises(RuntimeError, match="invalid configuration"):
        E.selftest("block_shared", P(y), 0, blocks, threads)


def test_unknown_selftest_and_schedule():
    with pytest.raises(ValueError, match="no kernel named"):
        E.selftest("nope", 0, 0, 1, 1)
    with pytest.raises(ValueError, match="order"):
        E.set_schedule("sideways")
    assert E.schedule() == "mixed" and E.device == "cuda_emu"


# ----------------------------------------------------------------------------- SGEMM
@pytest.mark.parametrize("M,N,K", [(1, 1, 1), (7, 5, 3), (128, 128, 8), (130, 129, 17), (33, 257, 70)])
@pytest.mark.parametrize("trans_b", [False, True])
@pytest.mark.parametrize("version", [1, 2])
def test_sgemm_with_fused_epilogue(M, N, K, trans_b, version, order, rng):
    A = rng.standard_normal((M, K)).astype(np.float32)
    B = rng.standard_normal((N, K) if trans_b else (K, N)).astype(np.float32)
    bias_r, bias_c = rng.standard_normal(M).astype(np.float32), rng.standard_normal(N).astype(np.float32)
    R = rng.standard_normal((M, N)).astype(np.float32)
    prod = A.astype(np.float64) @ (B.T if trans_b else B).astype(np.float64)
    for bias, mode, res, relu in ((None, 0, None, False), (bias_r, 1, R, True), (bias_c, 2, None, True)):
        C = np.full((M, N), np.nan, np.float32)
        E.sgemm(
            version,
            M,
            N,
            K,
            P(A),
            K,
            0,
            P(B),
            K if trans_b else N,
            0,
            trans_b,
            P(C),
            N,
            0,
            1,
            P(bias),
            mode,
            P(res),
            N,
            0,
            relu,
            0,
        )
        want = (
            prod + (0 if bias is None else (bias[:, None] if mode == 1 else bias[None, :])) + (0 if res is None else R)
        )
        want = np.maximum(want, 0) if relu else want
        assert rel_err(C, want) < 1e-5, (bias is None, mode, relu)


def test_sgemm_unaligned_rows_and_batches(rng):
    M, N, K, batch = 37, 45, 29, 3  # odd leading dimensions: the scalar load path
    A = rng.standard_normal((batch, M, K + 1)).astype(np.float32)
    B = rng.standard_normal((batch, K, N + 3)).astype(np.float32)
    C = np.zeros((batch, M, N + 2), np.float32)
    E.sgemm(
        2,
        M,
        N,
        K,
        P(A),
        K + 1,
        M * (K + 1),
        P(B),
        N + 3,
        K * (N + 3),
        False,
        P(C),
        N + 2,
        M * (N + 2),
        batch,
        0,
        0,
        0,
        0,
        0,
        False,
        0,
    )
    want = np.einsum("zmk,zkn->zmn", A[:, :, :K].astype(np.float64), B[:, :, :N].astype(np.float64))
    assert rel_err(C[:, :, :N], want) < 1e-5
    assert (C[:, :, N:] == 0).all(), "wrote outside the matrix"


def test_sgemm_version_checked():
    with pytest.raises(ValueError, match="version"):
        E.sgemm(3, 1, 1, 1, 0, 1, 0, 0, 1, 0, False, 0, 1, 0, 1, 0, 0, 0, 0, 0, False, 0)


# ----------------------------------------------------------------------------- convolution
CONV_CASES = [
    # N, C, H, W, K, R, S, stride, padding, dilation, groups
    (2, 3, 17, 15, 8, 3, 3, 1, 1, 1, 1),  # a first layer
    (1, 16, 12, 12, 24, 3, 3, 1, 1, 1, 1),  # Winograd-eligible
    (2, 8, 11, 13, 16, 3, 3, 2, 1, 1, 1),  # strided
    (1, 8, 9, 9, 8, 3, 3, 1, 2, 2, 1),  # dilated
    (2, 8, 10, 10, 12, 3, 3, 1, 1, 1, 4),  # grouped
    (1, 32, 7, 7, 40, 1, 1, 1, 0, 1, 1),  # 1x1
    (1, 4, 13, 11, 6, 5, 5, 2, (2, 1, 0, 2), 1, 1),  # 5x5, four-sided padding
    (1, 130, 5, 5, 129, 3, 3, 1, 1, 1, 1),  # channels beyond one 128 tile
    (1, 1, 9, 7, 3, 3, 3, 1, 1, 1, 1),  # one input channel
    (2, 7, 13, 17, 17, 3, 3, 1, 1, 1, 1),  # odd channels, sizes no tile divides (Winograd's 2 and 4)
    (1, 17, 6, 11, 7, 5, 5, 1, 2, 1, 1),
    (3, 17, 5, 9, 17, 3, 1, (2, 1), (1, 0), 1, 1),  # a 3x1 filter, stride (2, 1)
]


@pytest.mark.parametrize(
    "case", CONV_CASES, ids=lambda c: "x".join(map(str, c[:7])) + f"_s{c[7]}p{c[8]}d{c[9]}g{c[10]}"
)
def test_conv_algorithms_against_the_reference(case, order, be, rng):
    N, C, H, W, K, R, S, st, pad, dil, g = case
    x = rng.standard_normal((N, C, H, W)).astype(np.float32)
    w = rng.standard_normal((K, C // g, R, S)).astype(np.float32)
    b = rng.standard_normal(K).astype(np.float32)
    want = reference.conv2d(x.astype(np.float64), w.astype(np.float64), b.astype(np.float64), st, pad, dil, g)
    res = rng.standard_normal(want.shape).astype(np.float32)
    want_fused = np.maximum(want + res, 0)
    s = pycnn.ops.ConvShape(x.shape, w.shape, st, pad, dil, g)
    ran = 0
    for a in pycnn.registry.conv_algos("cuda_emu", pycnn.registry.NATIVE):
        if not a.supports(s):
            continue
        conv = be.prepare_conv(w, b, st, pad, dil, g, algo=a.name)
        assert rel_err(conv(x), want) < a.rel_error_bound, a.name
        fused = be.prepare_conv(w, b, st, pad, dil, g, algo=a.name, activation="relu")
        assert rel_err(fused(x, residual=res), want_fused) < a.rel_error_bound, a.name + " with residual and ReLU"
        ran += 1
    assert ran >= 3


def test_im2col_chunks_the_batch_under_the_workspace_limit(be, rng):
    x = rng.standard_normal((5, 4, 9, 9)).astype(np.float32)
    w = rng.standard_normal((6, 4, 3, 3)).astype(np.float32)
    want = reference.conv2d(x.astype(np.float64), w.astype(np.float64), None, 1, 1)
    old = pycnn.get_workspace_limit()
    try:
        pycnn.set_workspace_limit(4 * 36 * 81 * 2)  # two images per chunk: 3 chunks
        assert rel_err(be.conv2d(x, w, padding=1, algo="im2col"), want) < 5e-6
    finally:
        pycnn.set_workspace_limit(old)


def test_winograd_weights_transformed_once_per_tile(be, rng):
    w = rng.standard_normal((16, 16, 3, 3)).astype(np.float32)
    conv = be.prepare_conv(w, padding=1, algo="winograd_f4")
    x = rng.standard_normal((1, 16, 8, 8)).astype(np.float32)
    y1 = conv(x)
    U = conv.winograd_weights(4)
    y2 = conv(x)
    assert conv.winograd_weights(4) is U and np.array_equal(y1, y2)
    assert set(conv._U) == {4}


def test_nan_and_inf_propagate_through_the_convolutions(be, rng):
    x = rng.standard_normal((1, 16, 8, 8)).astype(np.float32)
    x[0, 3, 4, 4] = np.nan
    x[0, 5, 1, 1] = np.inf
    w = rng.standard_normal((16, 16, 3, 3)).astype(np.float32)
    want = reference.conv2d(x.astype(np.float64), w.astype(np.float64), None, 1, 1)
    for a in ("direct", "im2col", "implicit_gemm"):
        y = be.conv2d(x, w, padding=1, algo=a)
        np.testing.assert_array_equal(np.isnan(y), np.isnan(want), err_msg=a)
        np.testing.assert_array_equal(np.isinf(y), np.isinf(want), err_msg=a)


# ----------------------------------------------------------------------------- pooling and the other layers
@pytest.mark.parametrize(
    "k,s,p,ceil", [(2, 2, 0, False), (3, 2, 1, True), (3, 1, 1, False), ((3, 2), (2, 1), (1, 0), True)]
)
def test_pooling_matches_the_cpu_semantics(k, s, p, ceil, order, be, rng):
    x = rng.standard_normal((2, 3, 9, 10)).astype(np.float32)
    x[0, 1, 2, 3] = np.nan
    np.testing.assert_array_equal(
        be.max_pool2d(x, k, s, p, ceil_mode=ceil), pycnn.max_pool2d(x, k, s, p, ceil_mode=ceil)
    )
    for cip in (True, False):
        y = be.avg_pool2d(x, k, s, p, ceil_mode=ceil, count_include_pad=cip)
        want = reference.avg_pool2d(x.astype(np.float64), k, s, p, ceil, cip)
        np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-6, equal_nan=True)


def test_global_pool_lrn_softmax_linear_concat_batchnorm(order, be, rng):
    x = rng.standard_normal((2, 7, 5, 6)).astype(np.float32)
    np.testing.assert_allclose(be.global_avg_pool2d(x), reference.global_avg_pool2d(x), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(
        be.local_response_norm(x, 5, 1e-2, 0.75, 2.0), reference.local_response_norm(x, 5, 1e-2, 0.75, 2.0), rtol=1e-5
    )
    for dim in (1, -1):
        np.testing.assert_allclose(be.softmax(x, dim), reference.softmax(x, dim), rtol=1e-5, atol=1e-7)
    rows = np.array([[-np.inf] * 4, [1, np.nan, 2, 3], [0, 1e30, -1e30, 5]], np.float32)
    np.testing.assert_allclose(be.softmax(rows), reference.softmax(rows), equal_nan=True)
    big = rng.standard_normal((3, 1000)).astype(np.float32)
    np.testing.assert_allclose(be.softmax(big), reference.softmax(big), rtol=1e-5, atol=1e-8)
    xl, wl, bl = (rng.standard_normal(sh).astype(np.float32) for sh in ((4, 300), (130, 300), (130,)))
    np.testing.assert_allclose(
        be.linear(xl, wl, bl, activation="relu"), reference.linear(xl, wl, bl, "relu"), rtol=1e-4, atol=1e-4
    )
    np.testing.assert_allclose(be.linear(xl[0], wl), reference.linear(xl[:1], wl)[0], rtol=1e-4, atol=1e-4)
    for dim in (0, 1, 3):
        np.testing.assert_array_equal(be.concat([x, x + 1], dim), np.concatenate([x, x + 1], dim))
    np.testing.assert_array_equal(be.concat([x, x[:, :3]], 1), np.concatenate([x, x[:, :3]], 1))
    mean, var, gamma, beta = (rng.standard_normal(7).astype(np.float32) for _ in range(4))
    var = np.abs(var)
    np.testing.assert_allclose(
        be.batch_norm(x, mean, var, gamma, beta, activation="relu"),
        reference.batch_norm(x, mean, var, gamma, beta, activation="relu"),
        rtol=1e-5,
        atol=1e-6,
    )
    a = np.array([-1, 0, 2, np.nan, -np.inf, np.inf], np.float32)
    np.testing.assert_array_equal(be.relu(a), reference.relu(a))
    np.testing.assert_array_equal(be.add(a, a, activation="relu"), reference.relu(a + a))


# ----------------------------------------------------------------------------- the functional API on 'cuda_emu'
def test_algorithms_and_errors(be, rng):
    assert pycnn.algorithms("conv2d", device="cuda_emu") == [
        "auto",
        "direct",
        "im2col",
        "implicit_gemm",
        "winograd_f2",
        "winograd_f4",
        "winograd",
    ]
    x = rng.standard_normal((1, 4, 8, 8)).astype(np.float32)
    w = rng.standard_normal((4, 4, 3, 3)).astype(np.float32)
    with pytest.raises(ValueError, match="algo: expected one of"):
        be.conv2d(x, w, algo="direct_oc")  # a CPU algorithm
    with pytest.raises(ValueError, match="algo: 'winograd_f4' runs 3x3 convolutions with stride 1"):
        be.conv2d(x, w, stride=2, algo="winograd_f4")
    with pytest.raises(ValueError, match="residual: expected shape"):
        be.prepare_conv(w, padding=1)(x, residual=np.zeros((1, 4, 7, 7), np.float32))
    with pytest.raises(ValueError, match="input: expected 4 dimensions"):
        be.conv2d(x[0], w)
    with pytest.raises(ValueError, match="bias: expected shape"):
        be.conv2d(x, w, np.zeros(3, np.float32))
    with pytest.raises(ValueError, match="groups"):
        be.conv2d(x, w, groups=3)
    assert be.conv2d(x[:0], w, padding=1).shape == (0, 4, 8, 8)


def test_auto_rule_picks_by_shape():
    from pycnn.cuda import select

    def s(C, K, H, R, stride=1, groups=1):
        return pycnn.ops.ConvShape((1, C, H, H), (K, C // groups, R, R), stride, R // 2, 1, groups)

    assert select.choose(s(3, 64, 224, 3)) == "direct"  # a reduction of 27 terms
    assert select.choose(s(8, 8, 6, 3)) == "direct"  # under 2 MFLOP
    assert select.choose(s(3, 64, 224, 7, 2)) == "implicit_gemm"
    assert select.choose(s(64, 64, 56, 3)) == "winograd_f4"
    assert select.choose(s(32, 32, 28, 3)) == "winograd_f2"
    assert select.choose(s(64, 128, 56, 3, 2)) == "implicit_gemm"
    assert select.choose(s(256, 64, 56, 1)) == "implicit_gemm"


def test_autotune_times_the_candidates(be, rng, monkeypatch):
    from pycnn.cuda import conv

    conv.clear_tuning()
    monkeypatch.setattr(pycnn.config, "autotune", True)
    x = rng.standard_normal((1, 8, 6, 6)).astype(np.float32)
    w = rng.standard_normal((8, 8, 3, 3)).astype(np.float32)
    c = be.prepare_conv(w, padding=1)
    y = c(x)
    s = c.shape(x.shape)
    chosen = conv._tuned[("cuda_emu", s.key())]
    assert chosen in pycnn.registry.candidates(s, "cuda_emu")
    assert rel_err(y, reference.conv2d(x.astype(np.float64), w.astype(np.float64), None, 1, 1)) < 5e-5
    conv.clear_tuning()


def test_streams_events_and_device_memory():
    x = np.arange(96, dtype=np.float32)
    y = np.zeros_like(x)
    E.selftest("streams", P(x), P(y), 1, 96)
    np.testing.assert_array_equal(y, x[::-1])


# ----------------------------------------------------------------------------- what does not compile
KERNELS = Path(__file__).resolve().parent.parent / "kernels"
UNMODELED = {
    "extern_shared": "__global__ void k(float* y) { extern __shared__ float s[]; y[0] = s[0]; }",
    "triple_chevron": "__global__ void k(float* y) { y[0] = 1; }\nvoid launch(float* y) { k<<<1, 1>>>(y); }",
    "syncthreads_count": "__global__ void k(int* y) { y[0] = __syncthreads_count(1); }",
    "wmma": "__global__ void k(float* y) { nvcuda::wmma::fragment<int, 16, 16, 16, float> f; }",
    "texture": "__global__ void k(float* y, cudaTextureObject_t t) { y[0] = tex1Dfetch<float>(t, 0); }",
    "cluster": "__global__ void k(float* y) { y[0] = __cluster_dims__; }",
}


def _compile(src: str, tmp_path) -> subprocess.CompletedProcess:
    f = tmp_path / "k.cpp"
    f.write_text('#include "emu/cuda_emu.h"\n' + src + "\n")
    cxx = shutil.which("g++") or shutil.which("c++")
    return subprocess.run(
        [cxx, "-std=c++17", "-fsyntax-only", f"-I{KERNELS / 'cuda'}", str(f)], capture_output=True, text=True
    )


@pytest.mark.skipif(not (shutil.which("g++") or shutil.which("c++")), reason="no host C++ compiler")
def test_what_the_emulator_does_not_model_does_not_compile(tmp_path):
    ok = _compile(
        "__global__ void k(float* y) { __shared__ float s[4]; s[threadIdx.x] = 1; __syncthreads(); }", tmp_path
    )
    assert ok.returncode == 0, ok.stderr  # the control compiles
    for name, src in UNMODELED.items():
        r = _compile(src, tmp_path)
        assert r.returncode != 0, f"{name} compiled against the emulator"


def test_every_launch_goes_through_the_launcher_macro():
    for f in sorted((KERNELS / "cuda").glob("*.cu")):
        for i, line in enumerate(f.read_text().splitlines(), 1):
            assert "<<<" not in line, f"{f.name}:{i}: a bare <<<...>>> launch (use PYCNN_LAUNCH)"


# ----------------------------------------------------------------------------- whole networks
NETS = [
    ("lenet5", None, 1e-5),
    ("convnetjs", None, 1e-5),
    ("kimcnn", None, 1e-5),
    ("alphago", None, 5e-5),  # Winograd F4 on its 3x3 layers
    ("resnet18", (1, 3, 64, 64), 5e-5),  # a reduced image size: the emulator is slow
    ("googlenet", (1, 3, 224, 224), 5e-5),
]


@pytest.mark.parametrize("name,shape,tol", NETS, ids=[n[0] for n in NETS])
def test_zoo_networks_on_the_emulator_match_the_cpu(name, shape, tol, rng):
    g = getattr(pycnn.models, name)()
    shapes = g.example_shapes(1) if shape is None else {next(iter(g.inputs)): shape}
    x = {
        k: rng.integers(0, 100, s) if g.input_dtypes[k] == "int64" else rng.standard_normal(s).astype(np.float32)
        for k, s in shapes.items()
    }
    x = next(iter(x.values())) if len(x) == 1 else x
    want = g(x)
    d = g.to("cuda_emu")
    assert d.device == "cuda_emu" and d.to("cuda_emu") is d and d.to("cpu") is g
    y = d(x)
    assert isinstance(y, np.ndarray) and y.shape == want.shape
    assert rel_err(y, want) < tol
    if name == "kimcnn":  # no CUDA kernel for the lookup and the max over time: said, not hidden
        assert d.host_nodes == ["embedding", "maxtime0", "maxtime1", "maxtime2"]
    else:
        assert d.host_nodes == []


def test_device_graph_checks_its_input(rng):
    d = pycnn.models.lenet5().to("cuda_emu")
    with pytest.raises(ValueError, match=r"declares input .x. as \(N, 1, 32, 32\)"):
        d(rng.standard_normal((1, 3, 32, 32)).astype(np.float32))
    with pytest.raises(ValueError, match="unexpected input"):
        d({"nope": np.zeros((1, 1, 32, 32), np.float32)})
    y2 = d(rng.standard_normal((2, 1, 32, 32)).astype(np.float32))
    assert y2.shape == (2, 10)


# ----------------------------------------------------------------------------- the GPU tooling, checked here
def test_gpu_kernel_bench_runs_on_the_emulator(tmp_path):
    from bench import gpu_kernels

    assert gpu_kernels.main(["--device", "cuda_emu", "--quick", "--out", str(tmp_path)]) == 0
    res = json.loads((tmp_path / "results.json").read_text())
    assert res["device"] == "cuda_emu" and res["sgemm"][0]["rel_err"] < 1e-5
    assert {r["layer"] for r in res["conv"]} >= {"lenet5.conv1", "convnetjs.conv3"}
    assert all(r["best"] in r["algos"] and r["algos"][r["best"]] > 0 for r in res["conv"])
    assert all(r["pycnn_gbs"] > 0 for r in res["pool"])


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc is not installed: the sm_90 resource report needs it")
def test_resource_report_for_sm90_has_every_kernel_and_no_spills():
    from bench import cuda_report

    rows = cuda_report.report()
    names = {r["name"] for r in rows}
    assert {"sgemm_kernel2", "conv2d_igemm_kernel1", "winograd_input_kernel1", "softmax_kernel1"} <= names
    assert all(r["threads"] for r in rows), [r["name"] for r in rows if not r["threads"]]
    spills = [r["kernel"] for r in rows if r["spill_stores"] or r["spill_loads"] or r["stack"]]
    assert not spills, f"kernels that spill or keep a stack frame: {spills}"
    assert all(0 < r["occupancy"] <= 1 for r in rows)


def test_device_plan_fuses_like_the_cpu_plan(rng):
    g = pycnn.models.resnet18()
    d = g.to("cuda_emu")
    ops = [s.op for s in d.steps]
    assert "batch_norm" not in ops and "relu" not in ops and "add" not in ops  # folded, fused, in the epilogue
    assert sum(len(s.inputs) == 2 for s in d.steps if s.op == "conv2d") == 8  # the residual joins
    assert len(d.steps) < len(g.nodes)
    x = rng.standard_normal((1, 3, 32, 32)).astype(np.float32)
    assert rel_err(d(x), g(x)) < 5e-5
    peak = d.measure_peak(x)
    assert 0 < peak <= d.peak_bytes({"x": x.shape}) + x.nbytes
    s = d.summary(2)
    assert s.peak_bytes == d.peak_bytes(g.example_shapes(2)) and "peak activations" in str(s)


def test_profile_names_each_step_and_its_algorithm(rng):
    d = pycnn.models.convnetjs().to("cuda_emu")
    p = d.profile(rng.standard_normal((2, 3, 32, 32)).astype(np.float32), runs=2, warmup=1)
    text = str(p)
    assert "on cuda_emu" in text and "conv1+relu1" in text
    assert all(r[3] > 0 for r in p.rows) and p.total_s > 0
    assert {r[5] for r in p.rows if r[1] == "conv2d"} <= set(pycnn.algorithms("conv2d", device="cuda_emu"))


def test_graphs_move_between_devices_and_run_side_by_side(rng):
    import threading

    a, b = pycnn.models.lenet5(seed=1), pycnn.models.convnetjs(seed=2)
    da, db = a.to("cuda_emu"), b.to("cuda_emu")
    assert da.to("cpu") is a and da.to("cuda_emu") is da
    xa = rng.standard_normal((3, 1, 32, 32)).astype(np.float32)
    xb = rng.standard_normal((2, 3, 32, 32)).astype(np.float32)
    out = {}

    def run(name, g, x):
        out[name] = [g(x) for _ in range(3)]

    ts = [threading.Thread(target=run, args=("a", da, xa)), threading.Thread(target=run, args=("b", db, xb))]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    for y in out["a"]:
        assert rel_err(y, a(xa)) < 1e-5
    for y in out["b"]:
        assert rel_err(y, b(xb)) < 1e-5


def test_cuda_graph_capture_is_for_the_gpu():
    g = pycnn.models.lenet5()
    with pytest.raises(ValueError, match="cuda_graph: CUDA graph capture needs the 'cuda' device"):
        g.to("cuda_emu", cuda_graph=True)
    with pytest.raises(ValueError, match="cuda_graph"):
        g.to("cpu", cuda_graph=True)


def test_cli_runs_a_network_on_the_emulator():
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "pycnn",
            "run",
            "lenet5",
            "--device",
            "cuda_emu",
            "--batch",
            "2",
            "--runs",
            "2",
            "--profile",
            "--quiet",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    assert "on cuda_emu" in r.stdout and "time per batch" in r.stdout and "conv1+relu1" in r.stdout


def test_gpu_bench_suite_runs_on_the_emulator(capsys):
    import types

    from bench import gpu_suite

    rows = gpu_suite.run_gpu(types.SimpleNamespace(device="cuda_emu", batch=None))
    kinds = {r["kind"] for r in rows}
    assert kinds == {"sgemm", "conv", "pool", "network"}
    nets = [r for r in rows if r["kind"] == "network"]
    assert {r["net"] for r in nets} == set(gpu_suite.EMU_NETS) and all(r["pycnn_ms"] > 0 for r in nets)
    gpu_suite.print_gpu(rows)
    assert "lenet5" in capsys.readouterr().out
    assert gpu_suite.run_gpu(types.SimpleNamespace(device="cuda", batch=None)) == [] or pycnn.device.available("cuda")


def test_an_onnx_graph_on_the_emulator(rng):
    pytest.importorskip("onnx", reason="onnx is not installed (pip install '.[onnx]')")
    from onnx import TensorProto, helper, numpy_helper

    w = rng.standard_normal((8, 3, 3, 3)).astype(np.float32)
    fc = rng.standard_normal((8 * 4 * 4, 5)).astype(np.float32)
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("MaxPool", ["r"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Flatten", ["p"], ["f"]),
        helper.make_node("MatMul", ["f", "fc"], ["y"]),
    ]
    model = helper.make_model(
        helper.make_graph(
            nodes,
            "m",
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 8, 8])],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 5])],
            [numpy_helper.from_array(w, "w"), numpy_helper.from_array(fc, "fc")],
        ),
        opset_imports=[helper.make_opsetid("", 17)],
    )
    g = pycnn.load_onnx(model.SerializeToString())
    x = rng.standard_normal((3, 3, 8, 8)).astype(np.float32)
    assert rel_err(g.to("cuda_emu")(x), g(x)) < 1e-5


def test_broadcasting_add_and_numpy_steps_on_the_emulator(rng):
    from pycnn.graph import Graph, Node

    b = rng.standard_normal((1, 4, 1, 1)).astype(np.float32)
    g = Graph(
        {"x": (None, 4, 5, 5), "s": (None, 4, 1, 1)},
        [
            Node("a", "add", ["x", "s"], attrs=dict(activation="relu")),
            Node("m", "binary", ["a"], attrs=dict(fn="mul"), params={"other": b}),
            Node("h", "unary", ["m"], attrs=dict(fn="hardswish")),
        ],
        ["h"],
    )
    x = {
        "x": rng.standard_normal((2, 4, 5, 5)).astype(np.float32),
        "s": rng.standard_normal((2, 4, 1, 1)).astype(np.float32),
    }
    d = g.to("cuda_emu")
    assert rel_err(d(x), g(x)) < 1e-6 and d.host_nodes == ["m", "h"]
