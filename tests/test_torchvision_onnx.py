"""torchvision's classification CNNs through ONNX, as a user brings them: each is exported from
torchvision in the test run (random weights, randomized batch-norm statistics, opset 17, dynamic
batch), loaded with pycnn.load_onnx and compared with PyTorch at batch 1 and 8."""

import numpy as np
import pytest

import pycnn
from conftest import needs_torch

pytest.importorskip("onnx", reason="onnx is not installed (pip install -e .[test])")
zoo = pytest.importorskip("bench.torchvision_zoo")

try:
    zoo.import_torchvision()
    _why = None
except ImportError as e:
    _why = f"torchvision is not importable ({e}); pip install -e .[test]"
needs_torchvision = pytest.mark.skipif(_why is not None, reason=_why or "")

_cache = {}


def exported(name):
    if name not in _cache:
        _cache.clear()  # one network's PyTorch model and ONNX bytes at a time (VGG-16: 0.5 GB each)
        m = zoo.torch_model(name)
        _cache[name] = (m, zoo.export_onnx(m, name))
    return _cache[name]


@needs_torch
@needs_torchvision
@pytest.mark.parametrize("name", list(zoo.NETWORKS))
def test_network_matches_pytorch(name):
    m, data = exported(name)
    g = pycnn.load_onnx(data)
    assert g.inputs["x"] == (None,) + zoo.input_shape(name, 1)[1:]
    rng = np.random.default_rng(0)
    for batch in (1, 8):
        x = rng.standard_normal(zoo.input_shape(name, batch), dtype=np.float32)
        want = zoo.torch_forward(m, x)
        got = g(x)
        assert got.shape == want.shape == (batch, 1000)
        err = float(np.abs(got - want).max() / np.abs(want).max())
        assert err < 1e-4, f"{name} batch {batch}: relative error {err:.2e}"


@needs_torch
@needs_torchvision
def test_shufflenet_reshape_targets_follow_the_batch():
    """ShuffleNet's channel shuffle reshapes to a shape computed from x.shape at run time
    (Shape -> Gather -> Concat): folded at load, the batch entry becomes 0 and any batch runs."""
    m, data = exported("shufflenet_v2_x1_0")
    g = pycnn.load_onnx(data)
    targets = [n.attrs["shape"] for n in g.nodes if n.op == "reshape"]
    assert targets and all(t[0] in (0, -1) for t in targets), targets
    x = np.random.default_rng(1).standard_normal(zoo.input_shape("shufflenet_v2_x1_0", 3), dtype=np.float32)
    want = zoo.torch_forward(m, x)
    assert np.abs(g(x) - want).max() / np.abs(want).max() < 1e-4


@needs_torch
@needs_torchvision
@pytest.mark.parametrize("name", ["mobilenet_v3_small", "shufflenet_v2_x1_0"])
def test_network_on_the_cuda_emulator_runs_every_step_there(name):
    """Hard-swish, hard-sigmoid, the squeeze-and-excitation product and ShuffleNet's channel split
    run as CUDA kernels (eltwise.cu) and device copies: on the emulator every step stays on the
    device and the result matches PyTorch's."""
    if not pycnn.device.available("cuda_emu"):
        pytest.skip(pycnn.cuda.why_not("cuda_emu"))
    m, data = exported(name)
    d = pycnn.load_onnx(data).to("cuda_emu")
    x = np.random.default_rng(2).standard_normal(zoo.input_shape(name, 2), dtype=np.float32)
    want = zoo.torch_forward(m, x)
    assert d.host_nodes == []
    assert np.abs(d(x) - want).max() / np.abs(want).max() < 1e-4
