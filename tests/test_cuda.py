"""The CUDA kernels on a GPU: run where a GPU, CuPy and pycnn._C_cuda are present, else skip with
why. The same kernels run on every build through the CPU emulator (tests/test_cuda_emu.py); here
the GPU confirms them, through the functional API on CuPy arrays."""

import numpy as np
import pytest

import pycnn
from pycnn import reference

REASON = pycnn.cuda.why_not("cuda")
pytestmark = pytest.mark.skipif(bool(REASON), reason=f"CUDA tests need a GPU: {REASON}")


@pytest.fixture
def cp():
    import cupy

    return cupy


def rel_err(y, want):
    want = np.asarray(want, np.float64)
    return float(np.abs(np.asarray(y, np.float64) - want).max() / max(np.abs(want).max(), 1e-30))


def test_relu_add_on_gpu(cp):
    x = cp.asarray(np.array([-1, 0, 2, np.nan, -np.inf, 3], np.float32))
    np.testing.assert_array_equal(cp.asnumpy(pycnn.relu(x)), [0, 0, 2, np.nan, 0, 3])
    np.testing.assert_array_equal(cp.asnumpy(pycnn.add(x, x)), cp.asnumpy(x) * 2)


def test_selftests_on_the_gpu(cp):
    from pycnn import _C_cuda

    x = cp.arange(4 * 256, dtype=cp.float32)
    y = cp.empty_like(x)
    _C_cuda.selftest("reverse", x.data.ptr, y.data.ptr, 4, 256)
    np.testing.assert_array_equal(cp.asnumpy(y).reshape(4, 256), cp.asnumpy(x).reshape(4, 256)[:, ::-1])
    xw = cp.asarray(np.random.default_rng(0).standard_normal(64).astype(np.float32))
    out = cp.zeros((64, 8), cp.float32)
    _C_cuda.selftest("warp", xw.data.ptr, out.data.ptr, 1, 64)
    o, xs = cp.asnumpy(out), cp.asnumpy(xw)
    np.testing.assert_allclose(o[:32, 0], xs[:32].sum(), rtol=1e-5)
    np.testing.assert_array_equal(o[:32, 1], xs[3])
    xa = cp.asarray(np.random.default_rng(1).standard_normal(256 * 8).astype(np.float32))
    ya = cp.zeros_like(xa)
    _C_cuda.selftest("cp_async", xa.data.ptr, ya.data.ptr, 1, 256)
    want = np.roll(cp.asnumpy(xa).reshape(256, 8), -1, axis=0).copy()
    want[:, [5, 7]] = 0
    np.testing.assert_array_equal(cp.asnumpy(ya).reshape(256, 8), want)


@pytest.mark.parametrize(
    "case",
    [
        (2, 3, 224, 224, 64, 7, 7, 2, 3, 1, 1),
        (8, 64, 56, 56, 64, 3, 3, 1, 1, 1, 1),
        (4, 128, 28, 28, 256, 3, 3, 2, 1, 1, 1),
        (4, 256, 14, 14, 1024, 1, 1, 1, 0, 1, 1),
        (2, 64, 20, 20, 64, 3, 3, 1, 2, 2, 4),
    ],
)
def test_conv_algorithms_on_cupy_arrays(case, cp):
    N, C, H, W, K, R, S, st, pad, dil, g = case
    rng = np.random.default_rng(0)
    x = rng.standard_normal((N, C, H, W)).astype(np.float32)
    w = rng.standard_normal((K, C // g, R, S)).astype(np.float32)
    b = rng.standard_normal(K).astype(np.float32)
    want = pycnn.conv2d(x, w, b, st, pad, dil, g, algo="im2col")
    s = pycnn.ops.ConvShape(x.shape, w.shape, st, pad, dil, g)
    xd, wd, bd = cp.asarray(x), cp.asarray(w), cp.asarray(b)
    for a in pycnn.registry.conv_algos("cuda", pycnn.registry.NATIVE):
        if a.supports(s):
            y = pycnn.conv2d(xd, wd, bd, st, pad, dil, g, algo=a.name)
            assert isinstance(y, cp.ndarray)
            assert rel_err(cp.asnumpy(y), want) < max(a.rel_error_bound, 1e-5), a.name
    conv = pycnn.prepare_conv(wd, bd, st, pad, dil, g)
    assert rel_err(cp.asnumpy(conv(xd)), want) < 5e-5


def test_pools_and_layers_on_cupy_arrays(cp):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((4, 16, 27, 27)).astype(np.float32)
    xd = cp.asarray(x)
    np.testing.assert_array_equal(
        cp.asnumpy(pycnn.max_pool2d(xd, 3, 2, ceil_mode=True)), pycnn.max_pool2d(x, 3, 2, ceil_mode=True)
    )
    np.testing.assert_allclose(
        cp.asnumpy(pycnn.avg_pool2d(xd, 3, 2, 1)), pycnn.avg_pool2d(x, 3, 2, 1), rtol=1e-5, atol=1e-6
    )
    np.testing.assert_allclose(
        cp.asnumpy(pycnn.global_avg_pool2d(xd)), reference.global_avg_pool2d(x), rtol=1e-5, atol=1e-6
    )
    np.testing.assert_allclose(
        cp.asnumpy(pycnn.local_response_norm(xd, 5)), reference.local_response_norm(x, 5), rtol=1e-5
    )
    np.testing.assert_allclose(cp.asnumpy(pycnn.softmax(xd, dim=1)), reference.softmax(x, 1), rtol=1e-5, atol=1e-7)
    np.testing.assert_array_equal(cp.asnumpy(pycnn.concat([xd, xd], dim=1)), np.concatenate([x, x], 1))
    xl, wl = rng.standard_normal((32, 4096)).astype(np.float32), rng.standard_normal((1000, 4096)).astype(np.float32)
    np.testing.assert_allclose(
        cp.asnumpy(pycnn.linear(cp.asarray(xl), cp.asarray(wl))), xl @ wl.T, rtol=1e-3, atol=1e-3
    )


def test_torch_cuda_tensors_are_taken_without_a_copy(cp):
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("torch has no CUDA here")
    x = torch.randn(2, 8, 10, 10, device="cuda")
    w = torch.randn(16, 8, 3, 3, device="cuda")
    y = pycnn.conv2d(x, w, padding=1)
    want = torch.nn.functional.conv2d(x, w, padding=1)
    assert rel_err(cp.asnumpy(y), want.cpu().numpy()) < 1e-4


@pytest.mark.parametrize(
    "name", ["lenet5", "convnetjs", "kimcnn", "alphago", "alexnet", "googlenet", "resnet18", "resnet50"]
)
def test_zoo_networks_on_the_gpu_at_full_size(name, cp):
    g = pycnn.models.get(name)
    rng = np.random.default_rng(0)
    shapes = g.example_shapes(2)
    k, s = next(iter(shapes.items()))
    x = rng.integers(0, 100, s) if g.input_dtypes[k] == "int64" else rng.standard_normal(s).astype(np.float32)
    want = g(x)
    d = g.to("cuda")
    y = d(x)  # a NumPy input is copied in
    assert isinstance(y, cp.ndarray) and rel_err(cp.asnumpy(y), want) < 5e-5
    if x.dtype == np.float32:
        assert rel_err(cp.asnumpy(d(cp.asarray(x))), want) < 5e-5
    assert d.to("cpu") is g
    assert "on cuda" in str(d.profile(x, runs=2, warmup=1))


def test_cuda_graph_replay_and_two_streams(cp):
    g = pycnn.models.resnet18()
    rng = np.random.default_rng(1)
    x1, x2 = (cp.asarray(rng.standard_normal((4, 3, 64, 64)).astype(np.float32)) for _ in range(2))
    plain = g.to("cuda")
    want1, want2 = cp.asnumpy(plain(x1)), cp.asnumpy(plain(x2))
    captured = g.to("cuda", cuda_graph=True)
    for _ in range(2):  # the second call replays the graph captured by the first
        assert rel_err(cp.asnumpy(captured(x1)), want1) < 1e-5
        assert rel_err(cp.asnumpy(captured(x2)), want2) < 1e-5
    other = pycnn.models.googlenet().to("cuda")
    xg = cp.asarray(rng.standard_normal((2, 3, 224, 224)).astype(np.float32))
    want_g = cp.asnumpy(other(xg))
    s1, s2 = cp.cuda.Stream(non_blocking=True), cp.cuda.Stream(non_blocking=True)
    with s1:
        y1 = plain(x1)
    with s2:
        yg = other(xg)
    s1.synchronize()
    s2.synchronize()
    assert rel_err(cp.asnumpy(y1), want1) < 1e-5 and rel_err(cp.asnumpy(yg), want_g) < 1e-5


def _torchvision_zoo():
    try:
        pytest.importorskip("onnx", reason="onnx is not installed")
        from bench import torchvision_zoo

        torchvision_zoo.import_torchvision()
        return torchvision_zoo, list(torchvision_zoo.NETWORKS)
    except (ImportError, pytest.skip.Exception):
        return None, ["torchvision-not-importable"]


_ZOO, _ZOO_NAMES = _torchvision_zoo()


@pytest.mark.parametrize("name", _ZOO_NAMES)
def test_torchvision_networks_through_onnx_on_the_gpu(name, cp):
    """torchvision's 14 CNN families exported to ONNX, loaded, moved to the GPU, at batch 2, against
    PyTorch on the CPU; steps without a CUDA kernel run on the host and are named in host_nodes."""
    if _ZOO is None:
        pytest.skip("torchvision or onnx is not importable here")
    m = _ZOO.torch_model(name)
    g = pycnn.load_onnx(_ZOO.export_onnx(m, name))
    x = np.random.default_rng(0).standard_normal(_ZOO.input_shape(name, 2), dtype=np.float32)
    want = _ZOO.torch_forward(m, x)
    d = g.to("cuda")
    y = d(cp.asarray(x))
    assert isinstance(y, cp.ndarray) and y.shape == want.shape
    err = rel_err(cp.asnumpy(y), want)
    print(f"{name}: relative error {err:.2e}, host steps {len(d.host_nodes)} of {len(d.steps)}")
    assert err < 2e-4, f"{name}: relative error {err:.2e}"
    assert d.host_nodes == [], d.host_nodes
