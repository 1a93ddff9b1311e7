"""The models suite as pytest-benchmark tests: every zoo network end to end at batch 1
(PYCNN_BENCH_BATCH to change), checked against its PyTorch twin before it is timed.
Run: `pytest bench/ --benchmark-only -k model`."""

import os

import numpy as np
import pytest

import pycnn

BATCH = int(os.environ.get("PYCNN_BENCH_BATCH", "1"))


@pytest.mark.parametrize("name", pycnn.models.names())
def test_model(benchmark, name):
    g = pycnn.models.get(name)
    rng = np.random.default_rng(0)
    if name == "kimcnn":
        x = rng.integers(0, g.nodes[0].params["weight"].shape[0], (BATCH,) + g.inputs["tokens"][1:])
    else:
        x = rng.standard_normal((BATCH,) + g.inputs["x"][1:], dtype=np.float32)
    got = g(x)
    try:
        import torch

        from pycnn.models.torch_reference import torch_net

        with torch.inference_mode():
            want = torch_net(name, g.state_dict())(torch.from_numpy(x)).numpy()
        assert np.abs(got - want).max() <= 1e-3 * np.abs(want).max(), "wrong result: not timed"
    except ImportError:
        pass
    benchmark.extra_info.update(gflop=g.summary(BATCH).flops / 1e9, batch=BATCH)
    benchmark(g, x)
