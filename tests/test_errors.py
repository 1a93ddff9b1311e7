"""Bad input raises ValueError/TypeError naming the argument; nothing crashes."""

import numpy as np
import pytest

import pycnn
from pycnn import _C

X = np.zeros((1, 3, 8, 8), np.float32)
Wt = np.zeros((4, 3, 3, 3), np.float32)


@pytest.mark.parametrize(
    "kwargs, exc, word",
    [
        (dict(input=np.zeros((3, 8, 8), np.float32)), ValueError, "input"),
        (dict(input=X.astype(np.int32)), TypeError, "input"),
        (dict(input=X.astype(np.complex64)), TypeError, "input"),
        (dict(input=None), TypeError, "input"),
        (dict(input="abc"), TypeError, "input"),
        (dict(input=np.zeros((1, 8, 8, 3), np.float32)), ValueError, "NHWC.*pycnn expects NCHW"),
        (dict(weight=np.zeros((4, 2, 3, 3), np.float32)), ValueError, "weight"),
        (dict(weight=np.zeros((4, 3, 3), np.float32)), ValueError, "weight"),
        (dict(weight=np.zeros((4, 3, 11, 11), np.float32)), ValueError, "larger than the padded input"),
        (dict(weight=np.zeros((0, 3, 3, 3), np.float32)), ValueError, "weight"),
        (dict(input=np.zeros((1, 3, 0, 8), np.float32)), ValueError, "input"),
        (dict(bias=np.zeros(5, np.float32)), ValueError, "bias"),
        (dict(stride=0), ValueError, "stride"),
        (dict(stride=-1), ValueError, "stride"),
        (dict(stride=1.5), TypeError, "stride"),
        (dict(padding=-1), ValueError, "padding"),
        (dict(padding=(1, 2, 3)), ValueError, "padding"),
        (dict(padding="full"), ValueError, "padding"),
        (dict(dilation=0), ValueError, "dilation"),
        (dict(groups=2), ValueError, "groups"),
        (dict(groups=0), ValueError, "groups"),
        (dict(algo="fft"), ValueError, "algo"),
        (dict(activation="tanh"), ValueError, "activation"),
    ],
)
def test_conv2d_bad_arguments(kwargs, exc, word):
    args = dict(input=X, weight=Wt, bias=None, stride=1, padding=0, dilation=1, groups=1)
    extra = {k: kwargs.pop(k) for k in ("algo", "activation") if k in kwargs}
    args.update(kwargs)
    with pytest.raises(exc, match=word):
        pycnn.conv2d(**args, **extra)


def test_conv2d_huge_padding_raises_not_crashes():
    with pytest.raises((ValueError, MemoryError)):
        pycnn.conv2d(X, Wt, padding=2**40)


def test_conv2d_huge_stride_is_fine():
    # a stride larger than the input gives one output per window start at 0
    y = pycnn.conv2d(X, Wt, stride=(100, 100))
    assert y.shape == (1, 4, 1, 1)


@pytest.mark.parametrize(
    "call, exc, word",
    [
        (lambda: pycnn.max_pool2d(X, 0), ValueError, "kernel_size"),
        (lambda: pycnn.max_pool2d(X, 3, 0), ValueError, "stride"),
        (lambda: pycnn.max_pool2d(X, 3, 2, 2), ValueError, "padding"),
        (lambda: pycnn.max_pool2d(X, 9), ValueError, "kernel_size"),
        (lambda: pycnn.max_pool2d(X[0], 2), ValueError, "input"),
        (lambda: pycnn.max_pool2d(X, 2, 2, 0, 2), ValueError, "dilation"),
        (lambda: pycnn.max_pool2d(X, 2, ceil_mode="yes"), TypeError, "ceil_mode"),
        (lambda: pycnn.avg_pool2d(X.astype(int), 2), TypeError, "input"),
        (lambda: pycnn.local_response_norm(X, 0), ValueError, "size"),
        (lambda: pycnn.local_response_norm(X[0, 0], 5), ValueError, "input"),
        (lambda: pycnn.linear(np.zeros((2, 5), np.float32), np.zeros((3, 4), np.float32)), ValueError, "weight"),
        (
            lambda: pycnn.linear(np.zeros((2, 4), np.float32), np.zeros((3, 4), np.float32), np.zeros(2)),
            ValueError,
            "bias",
        ),
        (lambda: pycnn.add(X, X[:, :2]), ValueError, "other"),
        (lambda: pycnn.softmax(X, 4), ValueError, "dim"),
        (lambda: pycnn.softmax(X, axis=4), ValueError, "axis"),
        (lambda: pycnn.softmax(X, 1, axis=2), ValueError, "axis"),
        (lambda: pycnn.concat([]), ValueError, "tensors"),
        (lambda: pycnn.concat([X, X[:, :, :2]]), ValueError, r"tensors\[1\]"),
        (lambda: pycnn.concat([X, X], 4), ValueError, "dim"),
        (lambda: pycnn.batch_norm(X, np.zeros(2), np.ones(3)), ValueError, "running_mean"),
        (lambda: pycnn.batch_norm(X, np.zeros(3), np.ones(3), training=True), ValueError, "training"),
        (lambda: pycnn.set_num_threads(0), ValueError, "n"),
        (lambda: pycnn.set_num_threads(10000), ValueError, "n: must be <="),
        (lambda: pycnn.set_num_threads(2.0), TypeError, "n"),
        (lambda: pycnn.algorithms("conv2d", device="tpu"), ValueError, "device"),
        (lambda: _C.set_isa("avx1024"), ValueError, "isa"),
    ],
)
def test_other_ops_bad_arguments(call, exc, word):
    with pytest.raises(exc, match=word):
        call()


def test_private_module_guards_memory():
    """Inconsistent arrays handed to _C directly raise instead of reading out of bounds."""
    y = np.zeros((1, 4, 6, 6), np.float32)
    with pytest.raises(ValueError):
        _C.conv2d(X, Wt, None, np.zeros((1, 5, 6, 6), np.float32), 1, 1, 0, 0, 1, 1, 1, "im2col", False)
    with pytest.raises(ValueError):
        _C.conv2d(X, Wt, np.zeros(3, np.float32), y, 1, 1, 0, 0, 1, 1, 1, "direct", False)
    with pytest.raises(ValueError):
        _C.conv2d(X, Wt, None, y, 0, 1, 0, 0, 1, 1, 1, "direct", False)
    with pytest.raises(ValueError):
        _C.add(X, X[:, :1].copy(), np.zeros_like(X), False)
    ro = np.zeros((1, 4, 6, 6), np.float32)
    ro.setflags(write=False)
    with pytest.raises(ValueError, match="read-only"):
        _C.conv2d(X, Wt, None, ro, 1, 1, 0, 0, 1, 1, 1, "direct", False)
    with pytest.raises(TypeError):  # float64 is not converted silently by the private module
        _C.relu(X.astype(np.float64), np.zeros_like(X))


def test_read_only_input_is_fine():
    x = X.copy()
    x.setflags(write=False)
    assert pycnn.conv2d(x, Wt).shape == (1, 4, 6, 6)


def test_threads_setting_roundtrip():
    old = pycnn.get_num_threads()
    pycnn.set_num_threads(1)
    assert pycnn.get_num_threads() == 1
    pycnn.set_num_threads(old)
