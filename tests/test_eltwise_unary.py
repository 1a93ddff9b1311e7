"""The C++ element-wise activations (_C.unary, kernels/cpu/eltwise_unary.inl) on every ISA path
against the float64 reference (exp and erf are approximated: 2e-7 relative, 1.5e-7 absolute);
NaN and infinities; in place; and the ONNX chains load_onnx fuses into them (SiLU, GELU)."""

import math

import numpy as np
import pytest

import pycnn
from pycnn import _C, reference
from pycnn.layers import _C_UNARY

onnx = pytest.importorskip("onnx", reason="onnx is not installed (pip install -e .[test])")
ort = pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip install -e .[test])")
from onnx import helper, numpy_helper  # noqa: E402

X = np.concatenate(
    [np.linspace(-30, 30, 60001, dtype=np.float32), np.float32([0.0, -0.0, 1e-30, -1e-30, 0.099, -0.101, 1e-3])]
)
ARGS = {"clip": (-1.0, 6.0), "hardsigmoid": (0.2, 0.5)}


def _ref64(fn, x):
    x = x.astype(np.float64)
    lo, hi = ARGS.get(fn, (0.2, 0.5))
    if fn == "clip":
        return reference.unary(x, fn, lo=lo, hi=hi)
    return reference.unary(x, fn, alpha=lo, beta=hi)


@pytest.mark.parametrize("fn", sorted(_C_UNARY))
def test_unary_matches_the_reference_every_isa(fn, isa):
    y = np.full_like(X, np.nan)
    _C.unary(_C_UNARY[fn], X, y, *ARGS.get(fn, (0.2, 0.5)))
    want = _ref64(fn, X)
    np.testing.assert_allclose(y, want, rtol=1e-6, atol=5e-7)
    special = np.float32([np.nan, np.inf, -np.inf])
    ys = np.empty_like(special)
    _C.unary(_C_UNARY[fn], special, ys, *ARGS.get(fn, (0.2, 0.5)))
    with np.errstate(all="ignore"):
        np.testing.assert_array_equal(ys, _ref64(fn, special).astype(np.float32))


def test_unary_in_place_and_bad_arguments():
    x = X.copy()
    _C.unary(_C_UNARY["gelu"], x, x, 0.0, 0.0)
    want = np.array([0.5 * v * (1 + math.erf(v / math.sqrt(2))) for v in X.astype(np.float64)])
    np.testing.assert_allclose(x, want, rtol=1e-6, atol=5e-7)
    with pytest.raises(ValueError, match="fn"):
        _C.unary(9, X, X, 0.0, 0.0)
    with pytest.raises(ValueError, match="out"):
        _C.unary(0, X, X[:-1].copy(), 0.0, 1.0)


def _model(nodes, inits, shape=("N", 6, 5, 7)):
    x = helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, list(shape))
    outs = [helper.make_tensor_value_info(o, onnx.TensorProto.FLOAT, None) for o in ("y",)]
    g = helper.make_graph(nodes, "t", [x], outs, [numpy_helper.from_array(v, k) for k, v in inits.items()])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    return m.SerializeToString()


CONSTS = {
    "sq2": np.array(np.sqrt(2), np.float32),
    "isq2": np.array(1 / np.sqrt(2), np.float32),
    "one": np.array(1.0, np.float32),
    "half": np.array(0.5, np.float32),
}
GELU_A = [  # torch.nn.GELU as exported: x / sqrt2 -> erf -> + 1 -> x * . -> * 0.5
    helper.make_node("Div", ["x", "sq2"], ["d"]),
    helper.make_node("Erf", ["d"], ["e"]),
    helper.make_node("Add", ["e", "one"], ["e1"]),
    helper.make_node("Mul", ["x", "e1"], ["m"]),
    helper.make_node("Mul", ["m", "half"], ["y"]),
]
GELU_B = [  # (x * 0.5) * (1 + erf(x * (1 / sqrt2)))
    helper.make_node("Mul", ["x", "isq2"], ["d"]),
    helper.make_node("Erf", ["d"], ["e"]),
    helper.make_node("Add", ["one", "e"], ["e1"]),
    helper.make_node("Mul", ["half", "x"], ["m"]),
    helper.make_node("Mul", ["e1", "m"], ["y"]),
]
SILU = [helper.make_node("Sigmoid", ["x"], ["s"]), helper.make_node("Mul", ["s", "x"], ["y"])]


@pytest.mark.parametrize(
    "nodes, fn", [(GELU_A, "gelu"), (GELU_B, "gelu"), (SILU, "silu")], ids=["gelu", "gelu2", "silu"]
)
def test_onnx_activation_chains_fuse_into_one_step(nodes, fn):
    data = _model(nodes, CONSTS)
    g = pycnn.load_onnx(data)
    assert [(n.op, n.attrs.get("fn")) for n in g.nodes] == [("unary", fn)]
    x = (np.random.default_rng(0).standard_normal((2, 6, 5, 7)) * 3).astype(np.float32)
    x[0, 0, 0, :3] = [np.nan, np.inf, -np.inf]
    want = ort.InferenceSession(data, providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    y = g(x)
    np.testing.assert_allclose(y[1], want[1], rtol=1e-5, atol=1e-6)
    assert np.isnan(y[0, 0, 0, 0])
    np.testing.assert_allclose(g.run_reference(x)[1], want[1], rtol=1e-5, atol=1e-6)


def test_onnx_chain_whose_middle_is_read_elsewhere_is_not_fused():
    nodes = SILU[:1] + [helper.make_node("Mul", ["s", "x"], ["m"]), helper.make_node("Add", ["m", "s"], ["y"])]
    data = _model(nodes, {})
    g = pycnn.load_onnx(data)
    assert [n.attrs.get("fn") for n in g.nodes if n.op == "unary"] == ["sigmoid"]
    x = np.random.default_rng(1).standard_normal((2, 6, 5, 7)).astype(np.float32)
    want = ort.InferenceSession(data, providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    np.testing.assert_allclose(g(x), want, rtol=1e-5, atol=1e-6)


def test_onnx_matmul_then_bias_add_is_one_linear_step():
    rng = np.random.default_rng(2)
    inits = {"w": rng.standard_normal((7, 3)).astype(np.float32), "b": rng.standard_normal(3).astype(np.float32)}
    nodes = [helper.make_node("MatMul", ["x", "w"], ["h"]), helper.make_node("Add", ["h", "b"], ["y"])]
    data = _model(nodes, inits)
    g = pycnn.load_onnx(data)
    assert [n.op for n in g.nodes] == ["linear"] and sorted(g.state_dict()) == ["b", "w"]
    x = rng.standard_normal((2, 6, 5, 7)).astype(np.float32)
    want = ort.InferenceSession(data, providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    np.testing.assert_allclose(g(x), want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "shape, perm",
    [
        ((2, 5, 6, 7), (0, 2, 3, 1)),
        ((2, 5, 6, 7), (0, 3, 1, 2)),
        ((3, 40, 33), (2, 0, 1)),
        ((1, 65, 3, 33), (0, 2, 3, 1)),
    ],
)
def test_transpose_that_swaps_axis_groups_runs_in_cpp(shape, perm):
    """NCHW <-> NHWC (ConvNeXt's blocks), the channel shuffle: a batched 2-D transpose in C++."""
    from pycnn.layers import Transpose

    x = np.random.default_rng(3).standard_normal(shape).astype(np.float32)
    x.flat[5] = np.nan
    k = Transpose.kernel({"perm": perm}, {}, "auto")
    want = np.transpose(x, perm)
    call = k.bind([shape], want.shape)
    assert call is not k.fn  # the C++ path, not NumPy's
    np.testing.assert_array_equal(call(x), want)


@pytest.mark.parametrize(
    "fn, other, second",
    [
        ("mul", (6, 1, 1), None),  # ConvNeXt's layer scale
        ("add", (1, 6, 1, 1), None),
        ("sub", (6, 1, 1), None),
        ("mul", None, (2, 6, 1, 1)),  # squeeze-and-excitation's gate
        ("mul", None, "gate-first"),
    ],
)
def test_per_channel_binaries_run_as_channel_affine(fn, other, second):
    from pycnn.layers import Binary

    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 6, 5, 7)).astype(np.float32)
    x[0, 1, 2, 3] = np.nan
    p = {"other": rng.standard_normal(other).astype(np.float32)} if other else {}
    k = Binary.kernel({"fn": fn, "const_first": False}, p, "auto")
    g = rng.standard_normal((2, 6, 1, 1)).astype(np.float32)
    if second == "gate-first":
        call, args = k.bind([g.shape, x.shape], x.shape), (g, x)
    elif second:
        call, args = k.bind([x.shape, g.shape], x.shape), (x, g)
    else:
        call, args = k.bind([x.shape], x.shape), (x,)
    assert call is not k.fn
    want = Binary.reference({"fn": fn, "const_first": False}, p, list(args))
    np.testing.assert_allclose(call(*args), want, rtol=1e-6, atol=1e-6)
