"""The public names users know: torch.nn.functional's parameter names and positional order, empty
batches as PyTorch handles them, docstrings and type hints on everything public."""

import inspect

import numpy as np
import pytest

import pycnn
from conftest import TF, needs_torch, torch

X = np.random.default_rng(0).standard_normal((2, 4, 9, 9)).astype(np.float32)
W = np.random.default_rng(1).standard_normal((6, 4, 3, 3)).astype(np.float32)
B = np.random.default_rng(2).standard_normal(6).astype(np.float32)


def T(a):
    return torch.from_numpy(np.ascontiguousarray(a))


# (pycnn call, torch call): the same keyword names in both.
KEYWORD_CALLS = [
    (lambda f: f.conv2d(input=X, weight=W, bias=B, stride=2, padding=1, dilation=1, groups=1), "conv2d"),
    (lambda f: f.max_pool2d(input=X, kernel_size=3, stride=2, padding=1, dilation=1, ceil_mode=True), "max_pool2d"),
    (
        lambda f: f.avg_pool2d(input=X, kernel_size=3, stride=2, padding=1, ceil_mode=True, count_include_pad=False),
        "avg_pool2d",
    ),
    (lambda f: f.local_response_norm(input=X, size=3, alpha=1e-3, beta=0.7, k=2.0), "local_response_norm"),
    (lambda f: f.linear(input=X[:, :, 0, 0], weight=W[:, :, 0, 0], bias=B), "linear"),
    (lambda f: f.relu(input=X), "relu"),
    (lambda f: f.softmax(input=X, dim=1), "softmax"),
    (
        lambda f: f.batch_norm(
            input=X,
            running_mean=B[:4],
            running_var=np.abs(B[:4]) + 1,
            weight=B[2:],
            bias=B[:4],
            training=False,
            momentum=0.1,
            eps=1e-3,
        ),
        "batch_norm",
    ),
]


@needs_torch
@pytest.mark.parametrize("call, name", KEYWORD_CALLS, ids=[n for _, n in KEYWORD_CALLS])
def test_torch_keyword_names(call, name):
    class TorchF:  # torch.nn.functional with NumPy in and out
        def __getattr__(self, attr):
            fn = getattr(TF, attr)
            return lambda **kw: fn(**{k: T(v) if isinstance(v, np.ndarray) else v for k, v in kw.items()}).numpy()

    np.testing.assert_allclose(call(pycnn), call(TorchF()), rtol=1e-4, atol=1e-5)


@needs_torch
def test_torch_positional_order():
    """Positional arguments mean what they mean in torch.nn.functional (max_pool2d's fifth is
    dilation, batch_norm's sixth is training, softmax's second is dim)."""
    np.testing.assert_array_equal(pycnn.max_pool2d(X, 3, 2, 1, 1, True), TF.max_pool2d(T(X), 3, 2, 1, 1, True).numpy())
    rm, rv = B[:4], np.abs(B[:4]) + 1
    np.testing.assert_allclose(
        pycnn.batch_norm(X, rm, rv, None, None, False, 0.1, 1e-3),
        TF.batch_norm(T(X), T(rm), T(rv), None, None, False, 0.1, 1e-3).numpy(),
        rtol=1e-5,
        atol=1e-6,
    )
    np.testing.assert_allclose(pycnn.softmax(X, 2), TF.softmax(T(X), 2).numpy(), rtol=1e-5, atol=1e-7)
    np.testing.assert_array_equal(pycnn.add(X, X), torch.add(T(X), T(X)).numpy())
    np.testing.assert_array_equal(pycnn.concat([X, X], 3), torch.cat([T(X), T(X)], 3).numpy())


def test_axis_is_an_alias_of_dim():
    np.testing.assert_array_equal(pycnn.softmax(X, axis=1), pycnn.softmax(X, dim=1))
    np.testing.assert_array_equal(pycnn.concat([X, X], axis=2), pycnn.concat([X, X], dim=2))
    np.testing.assert_array_equal(pycnn.concat(tensors=[X, X]), np.concatenate([X, X], 1))


EMPTY = np.zeros((0, 4, 9, 9), np.float32)
EMPTY_CALLS = {  # (library, input, array converter)
    "conv2d": lambda f, x, c: f.conv2d(x, c(W), c(B), padding=1),
    "conv2d_strided": lambda f, x, c: f.conv2d(x, c(W), None, stride=2),
    "max_pool2d": lambda f, x, c: f.max_pool2d(x, 3, 2, 1),
    "avg_pool2d": lambda f, x, c: f.avg_pool2d(x, 3, 2, 1),
    "local_response_norm": lambda f, x, c: f.local_response_norm(x, 3),
    "linear": lambda f, x, c: f.linear(x[:, :, 0, 0], c(W[:, :, 0, 0]), c(B)),
    "relu": lambda f, x, c: f.relu(x),
    "softmax": lambda f, x, c: f.softmax(x, 1),
}


@pytest.mark.parametrize("name", sorted(EMPTY_CALLS))
def test_empty_batch_gives_empty_result(name):
    y = EMPTY_CALLS[name](pycnn, EMPTY, np.asarray)
    assert isinstance(y, np.ndarray) and y.dtype == np.float32 and y.shape[0] == 0
    if TF is not None:
        assert y.shape == tuple(EMPTY_CALLS[name](TF, T(EMPTY), T).shape)
    one = EMPTY_CALLS[name](pycnn, X[:1], np.asarray)  # the other dimensions are a batch of one's
    assert y.shape[1:] == one.shape[1:]


def test_empty_batch_other_ops():
    assert pycnn.global_avg_pool2d(EMPTY).shape == (0, 4, 1, 1)
    assert pycnn.add(EMPTY, EMPTY).shape == EMPTY.shape
    assert pycnn.concat([EMPTY, EMPTY]).shape == (0, 8, 9, 9)
    assert pycnn.batch_norm(EMPTY, np.zeros(4), np.ones(4)).shape == EMPTY.shape
    conv = pycnn.prepare_conv(W, B, padding=1)
    assert conv(EMPTY).shape == (0, 6, 9, 9)
    assert pycnn.conv2d(EMPTY, W, padding=1, algo="reference").shape == (0, 6, 9, 9)


PUBLIC = [n for n in pycnn.__all__ if callable(getattr(pycnn, n)) and n not in ("Graph", "Node", "PreparedConv")]


@pytest.mark.parametrize("name", PUBLIC)
def test_public_functions_have_docstrings_and_hints(name):
    fn = getattr(pycnn, name)
    assert (fn.__doc__ or "").strip(), f"pycnn.{name} has no docstring"
    sig = inspect.signature(fn)
    assert all(
        p.annotation is not inspect.Parameter.empty
        for p in sig.parameters.values()
        if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    ), f"pycnn.{name}{sig} lacks type hints"
    assert sig.return_annotation is not inspect.Signature.empty, f"pycnn.{name} lacks a return annotation"


@pytest.mark.parametrize("name", pycnn.models.names())
def test_zoo_builders_have_explicit_parameters(name):
    fn = getattr(pycnn.models, name)
    assert (fn.__doc__ or "").strip(), f"pycnn.models.{name} has no docstring"
    params = inspect.signature(fn).parameters
    assert not any(p.kind == p.VAR_KEYWORD for p in params.values()), f"{name} hides its options in **kw"
    assert {"seed", "algo", "weights"} <= set(params), f"{name}{inspect.signature(fn)}"
    with pytest.raises(TypeError, match=name):
        fn(pretrained=True)  # an unknown option is named against the builder the user called
