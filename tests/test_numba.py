"""algo='numba' / 'numba_im2col' (numba JIT) against the reference; skipped with the reason when
numba is not installed."""

import numpy as np
import pytest

import pycnn
from conftest import assert_close, conv_data
from pycnn import numba_conv, reference

pytestmark = pytest.mark.skipif(not numba_conv.available(), reason="numba is not installed (pip install -e .[test])")

CASES = [  # N, C, H, W, K, R, S, stride, padding, dilation, groups
    (1, 3, 9, 11, 5, 3, 3, 1, 1, 1, 1),
    (2, 6, 12, 10, 9, 5, 3, 2, (2, 1), 1, 3),
    (1, 4, 9, 9, 4, 3, 3, 1, (0, 1, 2, 1), 2, 4),
    (1, 1, 20, 30, 7, 3, 30, 1, 0, 1, 1),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: "x".join(map(str, c[:7])))
@pytest.mark.parametrize("algo", numba_conv.ALGOS)
def test_numba_matches_reference(case, algo, rng):
    N, C, H, W, K, R, S, stride, padding, dilation, groups = case
    x, w, b = conv_data(rng, N, C, H, W, K, C // groups, R, S)
    ref = reference.conv2d(
        x.astype(np.float64), w.astype(np.float64), b.astype(np.float64), stride, padding, dilation, groups, "relu"
    )
    assert_close(pycnn.conv2d(x, w, b, stride, padding, dilation, groups, algo=algo, activation="relu"), ref)
    conv = pycnn.prepare_conv(w, None, stride, padding, dilation, groups, algo=algo)
    assert_close(
        conv(x), reference.conv2d(x.astype(np.float64), w.astype(np.float64), None, stride, padding, dilation, groups)
    )


def test_numba_listed():
    assert {"numba", "numba_im2col"} <= set(pycnn.algorithms())
