"""The layer suite as pytest-benchmark tests: every algorithm on every lecture conv layer at
batch 1 (PYCNN_BENCH_BATCH to change), each result checked against PyTorch (or the NumPy
reference) before it is timed. Run: `pytest bench/ --benchmark-only [--benchmark-compare]`."""

import os

import numpy as np
import pytest

import pycnn
from pycnn import reference, registry
from pycnn.models import CONV_LAYERS, POOL_LAYERS
from pycnn.ops import ConvShape

from .layer_data import layer_arrays

BATCH = int(os.environ.get("PYCNN_BENCH_BATCH", "1"))

try:
    import torch
    import torch.nn.functional as TF
except ImportError:
    torch = None


def _cases():
    for layer in CONV_LAYERS:
        shape = ConvShape(
            (BATCH, layer.C, layer.H, layer.W),
            (layer.K, layer.C // layer.groups, layer.R, layer.S),
            layer.stride,
            layer.pad,
            1,
            layer.groups,
        )
        for algo in registry.candidates(shape) + ["auto"]:
            yield pytest.param(layer, algo, id=f"{layer.id}-{algo}")


@pytest.mark.parametrize("layer, algo", list(_cases()))
def test_conv_layer(benchmark, layer, algo):
    x, w, b = layer_arrays(layer, BATCH, np.random.default_rng(0))
    conv = pycnn.prepare_conv(w, b, layer.stride, layer.pad, groups=layer.groups, algo=algo)
    if torch is not None:
        want = TF.conv2d(
            torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(b), layer.stride, layer.pad, 1, layer.groups
        ).numpy()
    else:
        want = reference.conv2d(x, w, b, layer.stride, layer.pad, 1, layer.groups)
    got = conv(x)
    assert np.abs(got - want).max() <= 1e-3 * (1 + np.abs(want).max()), "wrong result: not timed"
    benchmark.extra_info.update(gflop=layer.flops(BATCH) / 1e9, algo=conv.algo_for(x.shape), batch=BATCH)
    benchmark(conv, x)


@pytest.mark.parametrize("layer", POOL_LAYERS, ids=lambda l: l.id)
def test_pool_layer(benchmark, layer):
    x = np.random.default_rng(0).standard_normal((BATCH, layer.C, layer.H, layer.W), dtype=np.float32)
    if layer.kind == "max":
        fn = lambda: pycnn.max_pool2d(x, layer.kernel, layer.stride, layer.pad, ceil_mode=layer.ceil_mode)  # noqa: E731
        want = reference.max_pool2d(x, layer.kernel, layer.stride, layer.pad, layer.ceil_mode)
    else:
        fn = lambda: pycnn.avg_pool2d(x, layer.kernel, layer.stride, layer.pad, layer.ceil_mode)  # noqa: E731
        want = reference.avg_pool2d(x, layer.kernel, layer.stride, layer.pad, layer.ceil_mode)
    assert np.abs(fn() - want).max() <= 1e-5, "wrong result: not timed"
    benchmark.extra_info.update(bytes=x.nbytes + want.nbytes, batch=BATCH)
    benchmark(fn)
