"""The arrays a lecture conv layer is timed on, one definition for every tool that times them
(the layers and functional suites, bench.functional_ab, the pytest-benchmark layers): x and the
bias standard normal, the weights scaled by 1/sqrt(fan-in) so outputs stay O(1)."""

import numpy as np


def layer_arrays(layer, N, rng):
    """(x (N, C, H, W), w (K, C/groups, R, S), b (K,)) float32 for pycnn.models' ConvLayer layer,
    drawn from rng in that order."""
    x = rng.standard_normal((N, layer.C, layer.H, layer.W), dtype=np.float32)
    w = rng.standard_normal((layer.K, layer.C // layer.groups, layer.R, layer.S)) / np.sqrt(layer.C * layer.R * layer.S)
    b = rng.standard_normal(layer.K, dtype=np.float32)
    return x, w.astype(np.float32), b
