"""Batch inference over workers: a local spawned process pool and a local Ray cluster, each
giving exactly what one process gives on the same batches with the same thread count."""

import numpy as np
import pytest

import pycnn
from conftest import num_threads
from pycnn import batch_inference as bi

X = np.random.default_rng(0).standard_normal((48, 1, 32, 32)).astype(np.float32)
BATCH = 16


@pytest.fixture
def one_thread():
    with num_threads(1):
        yield


def single_process(g, x, batch=BATCH):
    return np.concatenate([g(x[i : i + batch]) for i in range(0, len(x), batch)])


def test_pool_map_equals_one_process(one_thread):
    g = pycnn.models.lenet5(seed=3)
    y = bi.pool_map(g, X, processes=2, batch_size=BATCH, num_threads=1)
    assert np.array_equal(y, single_process(g, X))


def test_pool_map_graph_sources(tmp_path, one_thread):
    """A zoo name, a Graph.save file and a function each build the same Graph in the workers."""
    ref = single_process(pycnn.models.lenet5(), X[:20], 8)
    path = tmp_path / "lenet.pycnn"
    pycnn.models.lenet5().save(path)
    for src in ("lenet5", str(path), pycnn.models.lenet5):
        assert np.array_equal(bi.pool_map(src, X[:20], processes=2, batch_size=8, num_threads=1), ref), src


def test_pool_map_multi_input_and_errors():
    g = pycnn.models.kimcnn(seq_len=12, vocab_size=50)
    ids = np.random.default_rng(1).integers(0, 50, (10, 12))
    assert np.array_equal(
        bi.pool_map(g, {"tokens": ids}, processes=1, batch_size=4, num_threads=1), single_process(g, ids, 4)
    )
    with pytest.raises(ValueError, match="processes"):
        bi.pool_map(g, ids, processes=0)
    with pytest.raises(ValueError, match="graph"):
        bi.resolve_graph("no_such_model")
    with pytest.raises(TypeError, match="graph"):
        bi.resolve_graph(lambda: 3)


def test_graph_predictor_batch_columns():
    p = bi.GraphPredictor("convnetjs", input_column="img", output_column="prob", num_threads=1, top_k=3)
    x = np.random.default_rng(2).standard_normal((5, 3, 32, 32)).astype(np.float32)
    out = p({"img": x, "id": np.arange(5)})
    ref = pycnn.models.convnetjs()(x)
    assert np.array_equal(out["prob"], ref) and np.array_equal(out["id"], np.arange(5))
    assert np.array_equal(out["prob_top"], np.argsort(-ref, axis=1, kind="stable")[:, :3])
    with pytest.raises(KeyError, match="input_column"):
        p({"x": x})


def test_images_to_nchw():
    img = np.random.default_rng(3).integers(0, 256, (2, 5, 7, 3), dtype=np.uint8)
    out = bi.images_to_nchw({"image": img, "path": np.array(["a", "b"])})
    expect = ((img / 255.0 - np.array(bi.IMAGENET_MEAN)) / np.array(bi.IMAGENET_STD)).transpose(0, 3, 1, 2)
    np.testing.assert_allclose(out["data"], expect, rtol=1e-5, atol=1e-6)
    assert out["data"].shape == (2, 3, 5, 7) and list(out["path"]) == ["a", "b"] and "image" not in out


@pytest.fixture(scope="module")
def ray_cluster():
    ray = pytest.importorskip("ray", reason="ray is not installed (pip install 'pycnn[ray]')")
    pytest.importorskip("ray.data", reason="ray[data] is not installed (pip install 'pycnn[ray]')")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    ray.data.DataContext.get_current().enable_progress_bars = False
    yield ray
    ray.shutdown()


def test_ray_map_batches_equals_one_process(ray_cluster, one_thread):
    """Two actors of one CPU each (one OpenMP thread); blocks of BATCH rows so that the batches
    are those of the single-process run. The ids say which row each result belongs to."""
    g = pycnn.models.lenet5(seed=3)
    ds = ray_cluster.data.from_items(
        [{"id": i, "data": X[i]} for i in range(len(X))], override_num_blocks=len(X) // BATCH
    )
    rows = bi.ray_map_batches(ds, g, num_actors=2, cpus_per_actor=1, batch_size=BATCH).take_all()
    assert len(rows) == len(X)
    got = np.stack([r["logits"] for r in sorted(rows, key=lambda r: r["id"])])
    assert np.array_equal(got, single_process(g, X))


def test_ray_classify_images(ray_cluster, tmp_path):
    from PIL import Image

    rng = np.random.default_rng(4)
    imgs = rng.integers(0, 256, (5, 32, 32, 3), dtype=np.uint8)
    for i, im in enumerate(imgs):
        Image.fromarray(im).save(tmp_path / f"img{i}.png")
    rows = bi.classify_images(str(tmp_path), "convnetjs", size=(32, 32), num_actors=1, batch_size=8, top_k=2).take_all()
    assert len(rows) == 5
    g = pycnn.models.convnetjs()
    for r in rows:
        i = int(r["path"].rsplit("img", 1)[1].split(".")[0])
        ref = g(bi.images_to_nchw({"image": imgs[i : i + 1]})["data"])[0]
        np.testing.assert_allclose(r["logits"], ref, rtol=1e-5, atol=1e-6)
        assert list(r["logits_top"]) == list(np.argsort(-ref, kind="stable")[:2])
