"""A Graph travels: pickle, copy.deepcopy, a multiprocessing pool, and one file (g.save /
pycnn.load). Structure and weights travel; prepared weights are made again on arrival."""

import copy
import multiprocessing
import pickle

import numpy as np
import pytest

import pycnn


def example_input(g, batch=2, seed=0):
    name, shape = next(iter(g.inputs.items()))
    rng = np.random.default_rng(seed)
    if g.input_dtypes[name] == "int64":
        return rng.integers(0, 100, (batch,) + shape[1:])
    return rng.standard_normal((batch,) + shape[1:]).astype(np.float32)


SMALL = ["lenet5", "convnetjs", "kimcnn", "alphago", "resnet18", "googlenet"]


@pytest.mark.parametrize("name", SMALL)
def test_pickle_deepcopy_and_file_round_trip(name, tmp_path):
    g = pycnn.models.get(name, seed=5)
    x = example_input(g)
    y = g(x)
    path = tmp_path / f"{name}.pycnn"
    g.save(path)
    for h in (pickle.loads(pickle.dumps(g)), copy.deepcopy(g), pycnn.load(path)):
        assert h is not g and h.name == g.name and h.inputs == g.inputs and h.algo == g.algo
        assert repr(h.plan()) == repr(g.plan())  # same fused steps, attributes and effective weights
        assert np.array_equal(h(x), y)
        for k, v in g.state_dict().items():
            assert np.array_equal(h.state_dict()[k], v)


def test_copies_are_independent():
    g = pycnn.models.lenet5()
    h = copy.deepcopy(g)
    x = example_input(g)
    h.load_state_dict({k: v * 2 for k, v in h.state_dict().items()})
    assert not np.array_equal(g(x), h(x))


def test_file_keeps_algo_meta_and_onnx_graphs(tmp_path):
    pytest.importorskip("onnx", reason="onnx is not installed (pip install 'pycnn[onnx]')")
    from onnx import TensorProto, helper, numpy_helper

    w = np.random.default_rng(1).standard_normal((4, 3, 3, 3)).astype(np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
            helper.make_node("Relu", ["c"], ["r"]),
            helper.make_node("GlobalAveragePool", ["r"], ["p"]),
            helper.make_node("Flatten", ["p"], ["y"]),
        ],
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4])],
        [numpy_helper.from_array(w, "w")],
    )
    g = pycnn.load_onnx(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString())
    g.set_algo("im2col")
    g.meta["note"] = ("kept", 1)
    g.save(tmp_path / "t.npz")
    h = pycnn.load(tmp_path / "t.npz")
    x = example_input(g, 3)
    assert h.algo == "im2col" and h.meta == {"note": ("kept", 1)} and np.array_equal(h(x), g(x))


def test_load_refuses_other_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="path"):
        pycnn.load(tmp_path / "missing.pycnn")
    (tmp_path / "junk").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="not a pycnn graph file"):
        pycnn.load(tmp_path / "junk")
    np.savez(tmp_path / "weights.npz", a=np.zeros(3))
    with pytest.raises(ValueError, match="not a pycnn graph file"):
        pycnn.load(tmp_path / "weights.npz")
    np.savez(tmp_path / "bad.npz", __graph__=np.frombuffer(b'{"format": "pycnn.graph", "version": 99}', np.uint8))
    with pytest.raises(ValueError, match="format version 99"):
        pycnn.load(tmp_path / "bad.npz")
    np.savez(tmp_path / "bad2.npz", __graph__=np.frombuffer(b'{"format": "pycnn.graph", "version": 1}', np.uint8))
    with pytest.raises(ValueError, match="corrupt"):
        pycnn.load(tmp_path / "bad2.npz")


def _run_in_worker(args):
    g, x = args
    return g(x)


def test_graph_through_a_multiprocessing_pool():
    g = pycnn.models.convnetjs(seed=2)
    xs = [example_input(g, 3, seed=i) for i in range(3)]
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        ys = pool.map(_run_in_worker, [(g, x) for x in xs])
    for x, y in zip(xs, ys):
        np.testing.assert_allclose(y, g(x), rtol=1e-5, atol=1e-6)  # threads may differ in the workers


def test_prepared_conv_pickles_after_use():
    w = np.random.default_rng(0).standard_normal((8, 4, 3, 3)).astype(np.float32)
    x = np.random.default_rng(1).standard_normal((2, 4, 9, 9)).astype(np.float32)
    for algo in ("auto", "im2col", "direct_oc", "winograd_f4", "reference"):
        c = pycnn.prepare_conv(w, padding=1, algo=algo)
        y = c(x)  # prepared weights exist now
        assert np.array_equal(pickle.loads(pickle.dumps(c))(x), y), algo
        assert np.array_equal(copy.deepcopy(c)(x), y), algo


@pytest.mark.parametrize("name", ["lenet5", "resnet18"])
def test_builder_weights_argument(name, tmp_path):
    sd = pycnn.models.get(name, seed=11).state_dict()
    np.savez(tmp_path / "w.npz", **sd)
    g = pycnn.models.get(name, weights=tmp_path / "w.npz")
    h = pycnn.models.get(name, weights=sd)
    x = example_input(g)
    assert np.array_equal(g(x), pycnn.models.get(name, seed=11)(x)) and np.array_equal(g(x), h(x))


def test_zoo_info_matches_the_built_graphs():
    for name in pycnn.models.names():
        info = pycnn.models.info(name)
        assert (info.input_shape,) == tuple(pycnn.models.get(name).inputs.values()), name
        assert info.about
