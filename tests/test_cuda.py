"""CUDA backend: runs where a GPU, CuPy and pycnn._C_cuda are present, else skips with why."""

import importlib.util

import numpy as np
import pytest


def _cuda_reason():
    try:
        from pycnn import _C_cuda
    except ImportError:
        return "pycnn._C_cuda was not built (no CUDA compiler found at build time)"
    if _C_cuda.device_count() == 0:
        return "no CUDA device on this machine"
    if importlib.util.find_spec("cupy") is None:
        return "cupy is not installed (pip install -e .[cuda])"
    return None


REASON = _cuda_reason()
pytestmark = pytest.mark.skipif(REASON is not None, reason=f"CUDA tests need a GPU: {REASON}")


def test_relu_add_on_gpu():
    import cupy as cp

    from pycnn import _C_cuda

    x = cp.asarray(np.array([-1, 0, 2, np.nan, -np.inf, 3], np.float32))
    y = cp.empty_like(x)
    _C_cuda.relu(x.data.ptr, y.data.ptr, x.size, cp.cuda.get_current_stream().ptr)
    np.testing.assert_array_equal(cp.asnumpy(y), [0, 0, 2, np.nan, 0, 3])
    _C_cuda.add(x.data.ptr, x.data.ptr, y.data.ptr, x.size, False, cp.cuda.get_current_stream().ptr)
    np.testing.assert_array_equal(cp.asnumpy(y), cp.asnumpy(x) * 2)
