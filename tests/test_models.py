"""Every zoo network against its PyTorch twin (pycnn/models/torch_reference.py) with the same weights, with
every conv algorithm; the small ones also against the float64 reference run of the graph."""

import numpy as np
import pytest

import pycnn
from conftest import needs_torch, torch

# Input sizes: the declared ones, except the deepest nets run at 64x64 (and GoogLeNet at 96x96)
# to keep make test short; their global average pool accepts any size.
SPATIAL = {"googlenet": 96, "resnet18": 64, "resnet34": 64, "resnet50": 64, "resnet101": 64, "resnet152": 64}
# The choices and every exact-arithmetic native algorithm of the registry (Winograd's tiles run
# through the 'winograd' choice: their errors add up along a deep chain).
GRAPH_ALGOS = pycnn.registry.names(kind=pycnn.registry.CHOICE) + [
    a for a in pycnn.registry.names(kind=pycnn.registry.NATIVE) if not pycnn.registry.CONV[a].rel_error_bound
]


def model_input(g, name, batch=2, seed=1):
    rng = np.random.default_rng(seed)
    if name == "kimcnn":
        return rng.integers(0, g.nodes[0].params["weight"].shape[0], (batch,) + g.inputs["tokens"][1:])
    shape = g.inputs["x"][1:]
    if name in SPATIAL:
        shape = (shape[0], SPATIAL[name], SPATIAL[name])
    return rng.standard_normal((batch,) + shape).astype(np.float32)


def assert_net_close(y, ref, tol, what):
    ref = np.asarray(ref, np.float64)
    scale = np.abs(ref).max()
    assert y.shape == ref.shape, what
    assert np.all(np.isfinite(y)), what
    err = np.abs(y - ref).max() / scale
    assert err <= tol, f"{what}: max error {err:.3g} of max |ref| {scale:.3g} (bound {tol})"


@pytest.fixture(scope="module")
def zoo():
    return {}


def built(zoo, name):
    if name not in zoo:
        zoo[name] = pycnn.models.get(name)
    return zoo[name]


@needs_torch
@pytest.mark.parametrize("name", pycnn.models.names())
def test_model_matches_pytorch(zoo, name):
    from pycnn.models.torch_reference import torch_net

    g = built(zoo, name)
    m = torch_net(name, g.state_dict())
    x = model_input(g, name)
    with torch.no_grad():
        ref = m(torch.from_numpy(x)).numpy()
    for algo in GRAPH_ALGOS:
        g.set_algo(algo)
        # Winograd layers add their documented error (F4: 5e-5 per layer) along the chain.
        assert_net_close(g(x), ref, 2e-4 if algo in ("auto", "winograd") else 2e-5, f"{name} algo={algo}")
    g.set_algo("auto")


@pytest.mark.parametrize("name", ["lenet5", "convnetjs", "kimcnn", "alphago"])
def test_small_models_match_float64_reference(name):
    g = pycnn.models.get(name)
    x = model_input(g, name, batch=3)
    ref = g.run_reference(x)
    assert_net_close(g(x), ref, 1e-4, name)
    assert np.array_equal(g(x), g(x)), "a graph must give the same answer twice"


def test_names_and_get():
    assert set(pycnn.models.names()) >= {
        "lenet5",
        "alexnet",
        "alexnet_torchvision",
        "googlenet",
        "resnet18",
        "resnet34",
        "resnet50",
        "resnet101",
        "resnet152",
        "kimcnn",
        "alphago",
        "convnetjs",
    }
    with pytest.raises(ValueError, match="unknown model 'vgg16'"):
        pycnn.models.get("vgg16")
    a, b = pycnn.models.get("lenet5", seed=3), pycnn.models.get("lenet5", seed=3)
    c = pycnn.models.get("lenet5", seed=4)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(np.array_equal(sa[k], sb[k]) for k in sa) and not np.array_equal(sa["conv1.weight"], sc["conv1.weight"])


@pytest.mark.parametrize(
    "name,params",
    [("resnet18", 11_689_512), ("resnet50", 25_557_032), ("googlenet", 6_624_904), ("alexnet_torchvision", 61_100_840)],
)
def test_parameter_counts_match_torchvision(name, params):
    """Trainable parameter counts published for torchvision's models (batch-norm statistics excluded)."""
    sd = pycnn.models.get(name).state_dict()
    n = sum(v.size for k, v in sd.items() if not k.endswith(("running_mean", "running_var")))
    assert n == params


def test_lecture_shapes():
    """The lecture's tables: AlexNet 55x55x96 -> 27x27x96 -> ... -> 6x6x256; AlphaGo 19x19x192;
    LeNet 28 -> 14 -> 10 -> 5 -> 1."""
    s = pycnn.models.alexnet().infer_shapes()
    assert s["features.0"] == (1, 96, 55, 55) and s["features.2"] == (1, 96, 27, 27)
    assert s["features.4"] == (1, 256, 27, 27) and s["features.6"] == (1, 256, 13, 13)
    assert s["features.8"] == (1, 384, 13, 13) and s["features.12"] == (1, 256, 13, 13)
    assert s["features.14"] == (1, 256, 6, 6) and s["classifier.6"] == (1, 1000)
    s = pycnn.models.alphago().infer_shapes()
    assert s["conv1"] == (1, 192, 19, 19) and s["conv12"] == (1, 192, 19, 19) and s["softmax"] == (1, 361)
    s = pycnn.models.lenet5().infer_shapes()
    assert [s[k][2] for k in ("conv1", "pool1", "conv2", "pool2", "conv3")] == [28, 14, 10, 5, 1]


def test_alphago_outputs_a_distribution():
    g = pycnn.models.alphago()
    p = g(model_input(g, "alphago", batch=4))
    assert p.shape == (4, 361)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-5)
