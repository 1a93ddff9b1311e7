"""Errors that point at the cause: NHWC input, an input that differs from the declared one, empty
batches through a Graph, thread counts and batch sizes, state_dicts with a common key prefix."""

import numpy as np
import pytest

import pycnn


@pytest.fixture(scope="module")
def alexnet():
    return pycnn.models.alexnet()


def test_graph_nhwc_input_gets_a_hint(alexnet):
    with pytest.raises(ValueError, match=r"declares input 'x' as \(N, 3, 227, 227\).*NHWC.*pycnn expects NCHW"):
        alexnet(np.zeros((2, 227, 227, 3), np.float32))


def test_graph_wrong_channels_names_the_declared_shape(alexnet):
    with pytest.raises(ValueError, match=r"declares input 'x' as \(N, 3, 227, 227\), got shape \(1, 4, 227, 227\)"):
        alexnet(np.zeros((1, 4, 227, 227), np.float32))


def test_graph_wrong_image_size_names_the_declared_size(alexnet):
    with pytest.raises(
        ValueError,
        match=r"\(1, 3, 100, 100\) where the graph declares \(N, 3, 227, 227\).*"
        r"classifier.1",
    ):
        alexnet(np.zeros((1, 3, 100, 100), np.float32))


def test_graph_other_image_size_runs_where_every_node_accepts_it():
    g = pycnn.models.resnet18()
    x = np.random.default_rng(0).standard_normal((1, 3, 96, 128)).astype(np.float32)
    np.testing.assert_allclose(g(x), g.run_reference(x), rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize("name", ["lenet5", "kimcnn", "googlenet"])
def test_graph_empty_batch(name):
    g = pycnn.models.get(name)
    shape = next(iter(g.inputs.values()))
    dtype = np.int64 if g.input_dtypes[next(iter(g.inputs))] == "int64" else np.float32
    y0 = g(np.zeros((0,) + shape[1:], dtype))
    y1 = g(np.zeros((1,) + shape[1:], dtype))
    assert y0.shape == (0,) + y1.shape[1:] and y0.dtype == np.float32
    with pytest.raises(ValueError, match="batch of at least 1"):
        g.profile(np.zeros((0,) + shape[1:], dtype))
    with pytest.raises(ValueError, match="only the batch may be 0"):
        g(np.zeros((1,) + shape[1:-1] + (0,), dtype))


def test_graph_empty_batch_still_checks_the_shape(alexnet):
    with pytest.raises(ValueError, match="NHWC"):
        alexnet(np.zeros((0, 227, 227, 3), np.float32))


@pytest.mark.parametrize("batch", [0, -5, 1.5, "8"])
def test_summary_batch_is_validated(alexnet, batch):
    with pytest.raises((ValueError, TypeError), match="batch"):
        alexnet.summary(batch=batch)


@pytest.mark.parametrize(
    "n, exc",
    [(0, ValueError), (-1, ValueError), (10**4, ValueError), (2.0, TypeError), (True, TypeError), ("2", TypeError)],
)
def test_thread_count_is_validated(n, exc):
    old = pycnn.get_num_threads()
    with pytest.raises(exc, match="n"):
        pycnn.set_num_threads(n)
    assert pycnn.get_num_threads() == old


def test_state_dict_with_a_common_prefix_gets_a_hint():
    g = pycnn.models.resnet50()
    sd = {f"module.{k}": v for k, v in g.state_dict().items()}
    with pytest.raises(ValueError) as e:
        g.load_state_dict(sd)
    msg = str(e.value)
    assert "prefix 'module.'" in msg and "removeprefix('module.')" in msg
    assert len(msg) < 600, "the hint replaces the list of every key"
    g.load_state_dict({k.removeprefix("module."): v for k, v in sd.items()})  # the hint's fix works


def test_long_key_lists_are_cut():
    g = pycnn.models.resnet50()
    with pytest.raises(ValueError) as e:
        g.load_state_dict({"something.else": np.zeros(3)})
    msg = str(e.value)
    assert "missing keys: ['bn1.bias'" in msg and "more]" in msg and "in all" in msg and len(msg) < 1500
