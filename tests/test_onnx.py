"""ONNX import: every zoo network exported from its PyTorch twin runs in pycnn and matches
onnxruntime; the operators one by one on hand-built models; errors name the node and operator."""

import numpy as np
import pytest
from test_models import model_input

import pycnn
from bench.networks import export_onnx as export
from conftest import needs_torch

onnx = pytest.importorskip("onnx", reason="onnx is not installed (pip install -e .[test])")
ort = pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip install -e .[test])")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402


def run_ort(data, feeds):
    s = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    return s.run(None, feeds)[0]


@needs_torch
@pytest.mark.parametrize("name", pycnn.models.names())
def test_exported_zoo_model_matches_onnxruntime(name):
    from pycnn.models.torch_reference import torch_net

    g = pycnn.models.get(name)
    x = model_input(g, name)
    iname = "tokens" if name == "kimcnn" else "x"
    data = export(torch_net(name, g.state_dict()), x, iname)
    h = pycnn.load_onnx(data)
    ref = run_ort(data, {iname: x})
    y = h(x)
    err = np.abs(y - ref).max() / np.abs(ref).max()
    assert err < 2e-4, f"{name}: {err:.3g}"
    # the imported graph is the zoo graph: same answer as the Graph built in Python
    np.testing.assert_allclose(y, g(x), atol=2e-4 * np.abs(ref).max())
    # a second batch size through the dynamic axis
    x3 = model_input(g, name, batch=3, seed=7)
    np.testing.assert_allclose(h(x3), run_ort(data, {iname: x3}), atol=2e-4 * np.abs(ref).max())


def make_model(nodes, inputs, outputs, inits, opset=17):
    graph = helper.make_graph(nodes, "t", inputs, outputs, [numpy_helper.from_array(v, k) for k, v in inits.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8  # what onnxruntime reads everywhere (the onnx package may write newer)
    return model.SerializeToString()


def vinfo(name, shape, t=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, t, shape)


def test_operators_one_by_one_match_onnxruntime():
    rng = np.random.default_rng(0)
    f32 = np.float32
    inits = {
        "w": rng.standard_normal((6, 3, 3, 3)).astype(f32),
        "b": rng.standard_normal(6).astype(f32),
        "scale": rng.uniform(0.5, 1.5, 6).astype(f32),
        "shift": rng.standard_normal(6).astype(f32),
        "mean": rng.standard_normal(6).astype(f32),
        "var": rng.uniform(0.5, 2, 6).astype(f32),
        "shape": np.array([0, -1], np.int64),
        "B": rng.standard_normal((90, 7)).astype(f32),
        "C": rng.standard_normal(7).astype(f32),
        "W2": rng.standard_normal((7, 5)).astype(f32),
        "axes": np.array([2], np.int64),
        "pb": rng.standard_normal((1, 5)).astype(f32),
    }
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 0, 1, 2], strides=[1, 2]),
        helper.make_node("BatchNormalization", ["c", "scale", "shift", "mean", "var"], ["bn"], epsilon=1e-3),
        helper.make_node("Relu", ["bn"], ["r"]),
        helper.make_node("LRN", ["r"], ["l"], size=3, alpha=1e-3, beta=0.7, bias=1.5),
        helper.make_node("AveragePool", ["l"], ["ap"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]),
        helper.make_node("MaxPool", ["ap"], ["mp"], kernel_shape=[2, 2], strides=[1, 1], ceil_mode=1),
        helper.make_node("Dropout", ["mp"], ["d"]),
        helper.make_node("Identity", ["d"], ["i"]),
        helper.make_node("Reshape", ["i", "shape"], ["flat"]),
        helper.make_node("Gemm", ["flat", "B", "C"], ["gm"], alpha=0.5, beta=2.0),
        helper.make_node("MatMul", ["gm", "W2"], ["mm"]),
        helper.make_node("Add", ["mm", "pb"], ["ab"]),
        helper.make_node("Unsqueeze", ["ab", "axes"], ["u"]),
        helper.make_node("Squeeze", ["u", "axes"], ["s"]),
        helper.make_node("Softmax", ["s"], ["y"], axis=1),
    ]
    data = make_model(nodes, [vinfo("x", ["N", 3, 11, 13])], [vinfo("y", ["N", 5])], inits)
    x = rng.standard_normal((2, 3, 11, 13)).astype(f32)
    g = pycnn.load_onnx(data)
    np.testing.assert_allclose(g(x), run_ort(data, {"x": x}), rtol=1e-4, atol=1e-6)
    assert set(g.state_dict()) >= {"w", "b", "scale", "B", "C", "W2", "pb"}


def test_concat_add_global_pool_reducemax_gather_legacy_softmax():
    rng = np.random.default_rng(1)
    f32 = np.float32
    inits = {"emb": rng.standard_normal((30, 4)).astype(f32)}
    nodes = [
        helper.make_node("Gather", ["emb", "ids"], ["e"]),  # (N, 6, 4)
        helper.make_node("ReduceMax", ["e"], ["m"], axes=[1], keepdims=0),  # opset 11: axes attribute
        helper.make_node("Concat", ["m", "m"], ["cat"], axis=1),
        helper.make_node("Add", ["cat", "cat"], ["sum"]),
        helper.make_node("Softmax", ["sum"], ["y"]),  # opset 11 default axis 1
    ]
    data = make_model(nodes, [vinfo("ids", ["N", 6], TensorProto.INT64)], [vinfo("y", ["N", 8])], inits, opset=11)
    ids = rng.integers(0, 30, (3, 6))
    g = pycnn.load_onnx(data)
    np.testing.assert_allclose(g(ids), run_ort(data, {"ids": ids}), rtol=1e-5, atol=1e-7)
    nodes = [helper.make_node("GlobalAveragePool", ["x"], ["y"])]
    data = make_model(nodes, [vinfo("x", ["N", 3, 5, 7])], [vinfo("y", ["N", 3, 1, 1])], {})
    x = rng.standard_normal((2, 3, 5, 7)).astype(f32)
    np.testing.assert_allclose(pycnn.load_onnx(data)(x), run_ort(data, {"x": x}), rtol=1e-5)


@pytest.mark.parametrize(
    "node,msg",
    [
        (helper.make_node("Softsign", ["x"], ["y"], name="act"), r"ONNX node 'act' \(Softsign\): unsupported operator"),
        (
            helper.make_node("MaxPool", ["x"], ["y"], kernel_shape=[2, 2], pads=[0, 0, 1, 1], ceil_mode=1),
            r"\(MaxPool\): unsupported attributes pads=\[0, 0, 1, 1\] \(asymmetric or wide\) with ceil_mode=1",
        ),
        (helper.make_node("LRN", ["x"], ["y"], size=4), r"\(LRN\): unsupported attribute size=4"),
        (
            helper.make_node("MaxPool", ["x"], ["y"], kernel_shape=[3, 3], strides=[2, 2], auto_pad="SAME_LEFT"),
            r"unsupported attribute auto_pad='SAME_LEFT'",
        ),
        (helper.make_node("Conv", ["x", "x"], ["y"], kernel_shape=[2, 2, 2]), r"\(Conv\): kernel_shape \[2, 2, 2\]"),
    ],
)
def test_unsupported_is_named(node, msg):
    data = make_model([node], [vinfo("x", ["N", 3, 8, 8])], [vinfo("y", None)], {})
    with pytest.raises(ValueError, match=msg):
        pycnn.load_onnx(data)


def test_load_onnx_arguments(tmp_path):
    with pytest.raises(FileNotFoundError):
        pycnn.load_onnx(str(tmp_path / "none.onnx"))
    with pytest.raises(TypeError, match="src: expected a path, bytes"):
        pycnn.load_onnx(3.5)
    data = make_model([helper.make_node("Relu", ["x"], ["y"])], [vinfo("x", ["N", 3])], [vinfo("y", ["N", 3])], {})
    p = tmp_path / "relu.onnx"
    p.write_bytes(data)
    g = pycnn.load_onnx(p)
    assert np.array_equal(
        g(np.array([[-1.0, 2.0, np.nan]], np.float32)), np.array([[0, 2, np.nan]], np.float32), equal_nan=True
    )
    with pytest.raises(ValueError, match="not a readable ONNX model"):
        pycnn.load_onnx(b"not an onnx file")


def test_weights_through_identity_of_an_initializer():
    """Exporters write a shared initializer as Identity(initializer) (torchvision's VGG,
    SqueezeNet, MobileNet V3 ...): the weight is that constant, keyed by the initializer's name."""
    rng = np.random.default_rng(5)
    w = rng.standard_normal((3, 4)).astype(np.float32)
    b = rng.standard_normal(3).astype(np.float32)
    nodes = [
        helper.make_node("Identity", ["fc.bias"], ["b_copy"]),
        helper.make_node("Identity", ["b_copy"], ["b_copy2"]),
        helper.make_node("Gemm", ["x", "fc.weight", "b_copy2"], ["y"], transB=1),
    ]
    data = make_model(nodes, [vinfo("x", ["N", 4])], [vinfo("y", ["N", 3])], {"fc.weight": w, "fc.bias": b})
    g = pycnn.load_onnx(data)
    x = rng.standard_normal((2, 4)).astype(np.float32)
    np.testing.assert_allclose(g(x), run_ort(data, {"x": x}), rtol=1e-5, atol=1e-6)
    assert sorted(g.state_dict()) == ["fc.bias", "fc.weight"]
    assert [n.op for n in g.nodes] == ["linear"]


def test_squeeze_excitation_and_activations_match_onnxruntime(tmp_path):
    """MobileNet V3 / EfficientNet's pieces: a squeeze-and-excitation gate (global pool -> 1x1
    convs -> sigmoid -> broadcast Mul), HardSwish, ReLU6 as Clip, HardSigmoid, and x * sigmoid(x)."""
    rng = np.random.default_rng(3)
    f32 = np.float32
    inits = {
        "w": (rng.standard_normal((16, 8, 3, 3)) * 0.3).astype(f32),
        "w1": (rng.standard_normal((4, 16, 1, 1)) * 0.3).astype(f32),
        "w2": (rng.standard_normal((16, 4, 1, 1)) * 0.3).astype(f32),
        "lo": np.array(0.0, f32),
        "hi": np.array(6.0, f32),
        "three": np.array(3.0, f32),
    }
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("HardSwish", ["c"], ["h"]),
        helper.make_node("GlobalAveragePool", ["h"], ["p"]),
        helper.make_node("Conv", ["p", "w1"], ["s1"]),
        helper.make_node("Clip", ["s1", "lo", "hi"], ["r6"]),
        helper.make_node("Conv", ["r6", "w2"], ["s2"]),
        helper.make_node("HardSigmoid", ["s2"], ["gate"], alpha=1 / 6, beta=0.5),
        helper.make_node("Mul", ["h", "gate"], ["se"]),
        helper.make_node("Sigmoid", ["se"], ["sg"]),
        helper.make_node("Mul", ["se", "sg"], ["silu"]),
        helper.make_node("Div", ["silu", "three"], ["d"]),
        helper.make_node("Sub", ["three", "d"], ["y"]),
    ]
    data = make_model(nodes, [vinfo("x", ["N", 8, 9, 9])], [vinfo("y", ["N", 16, 9, 9])], inits)
    g = pycnn.load_onnx(data)
    assert {n.op for n in g.nodes} >= {"unary", "binary"}
    x = rng.standard_normal((2, 8, 9, 9)).astype(f32)
    sess = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    want = sess.run(None, {"x": x})[0]
    np.testing.assert_allclose(g(x), want, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(g.run_reference(x), want, rtol=1e-4, atol=1e-5)
    g.save(tmp_path / "se.npz")
    np.testing.assert_allclose(pycnn.load(tmp_path / "se.npz")(x), want, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(g.to("cuda_emu")(x), want, rtol=1e-4, atol=1e-5)
    x[0, 0, 0, 0] = np.nan
    assert np.isnan(g(x)[0]).any() and not np.isnan(g(x)[1]).any()


def test_reduce_mean_matches_onnxruntime():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 6, 5, 7)).astype(np.float32)
    for axes, keep in (((2, 3), 0), ((2, 3), 1), ((1,), 1), ((-1,), 0)):
        nodes = [helper.make_node("ReduceMean", ["x"], ["y"], axes=list(axes), keepdims=keep)]
        want_shape = np.mean(x, axis=axes, keepdims=bool(keep)).shape
        data = make_model(nodes, [vinfo("x", ["N", 6, 5, 7])], [vinfo("y", None)], {}, opset=17)
        want = ort.InferenceSession(data, providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
        g = pycnn.load_onnx(data)
        assert want.shape == want_shape
        np.testing.assert_allclose(g(x), want, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(g.to("cuda_emu")(x), want, rtol=1e-5, atol=1e-6)


def test_channel_shuffle_matches_onnxruntime():
    """ShuffleNet's channel shuffle: Reshape (N, g, C/g, H, W) -> Transpose -> Reshape back."""
    rng = np.random.default_rng(5)
    inits = {"s1": np.array([0, 2, 4, 5, 5], np.int64), "s2": np.array([0, -1, 5, 5], np.int64)}
    nodes = [
        helper.make_node("Reshape", ["x", "s1"], ["r"]),
        helper.make_node("Transpose", ["r"], ["t"], perm=[0, 2, 1, 3, 4]),
        helper.make_node("Reshape", ["t", "s2"], ["y"]),
    ]
    data = make_model(nodes, [vinfo("x", ["N", 8, 5, 5])], [vinfo("y", ["N", 8, 5, 5])], inits)
    g = pycnn.load_onnx(data)
    x = rng.standard_normal((3, 8, 5, 5)).astype(np.float32)
    want = ort.InferenceSession(data, providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    np.testing.assert_array_equal(g(x), want)
    np.testing.assert_array_equal(g.to("cuda_emu")(x), want)
    np.testing.assert_array_equal(want[:, 1], x[:, 4])  # the shuffle itself: channel 1 came from 4


def _ort_and_pycnn(data, x):
    want = ort.InferenceSession(data, providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    g = pycnn.load_onnx(data)
    return g, want


def test_slice_split_pad_match_onnxruntime():
    rng = np.random.default_rng(6)
    x = rng.standard_normal((2, 6, 5, 7)).astype(np.float32)
    big = np.iinfo(np.int64).max
    slices = (  # starts, ends, axes, steps
        ([0], [3], [1], [1]),
        ([3], [big], [1], [1]),
        ([-1, 1], [-big, 4], [3, 2], [-2, 1]),
        ([1, 0], [5, 7], [2, 3], [2, 3]),
    )
    for starts, ends, axes, steps in slices:
        inits = {k: np.array(v, np.int64) for k, v in zip(("st", "en", "ax", "sp"), (starts, ends, axes, steps))}
        nodes = [helper.make_node("Slice", ["x", "st", "en", "ax", "sp"], ["y"])]
        g, want = _ort_and_pycnn(make_model(nodes, [vinfo("x", ["N", 6, 5, 7])], [vinfo("y", None)], inits), x)
        np.testing.assert_array_equal(g(x), want)
        np.testing.assert_array_equal(g.to("cuda_emu")(x), want)
    # Split into unequal parts along the channels, each part through its own op
    nodes = [
        helper.make_node("Split", ["x", "sp"], ["a", "b", "c"], axis=1),
        helper.make_node("Relu", ["a"], ["ra"]),
        helper.make_node("Neg", ["c"], ["nc"]),
        helper.make_node("Concat", ["nc", "b", "ra"], ["y"], axis=1),
    ]
    data = make_model(nodes, [vinfo("x", ["N", 6, 5, 7])], [vinfo("y", None)], {"sp": np.array([1, 2, 3], np.int64)})
    g, want = _ort_and_pycnn(data, x)
    np.testing.assert_array_equal(g(x), want)
    for mode in ("constant", "reflect", "edge", "wrap"):
        pads = np.array([0, 0, 1, 2, 0, 0, 2, -1], np.int64)
        inits = {"p": pads, "v": np.array(1.5, np.float32)}
        nodes = [helper.make_node("Pad", ["x", "p", "v"] if mode == "constant" else ["x", "p"], ["y"], mode=mode)]
        g, want = _ort_and_pycnn(make_model(nodes, [vinfo("x", ["N", 6, 5, 7])], [vinfo("y", None)], inits), x)
        np.testing.assert_array_equal(g(x), want)


def test_layer_norm_and_matmul_over_the_last_axis_match_onnxruntime():
    """ConvNeXt's block: (N, C, H, W) -> (N, H, W, C), LayerNormalization over C, MatMul + bias on
    a 4-D input, GELU written with Erf, back to NCHW."""
    rng = np.random.default_rng(7)
    C = 12
    inits = {
        "g": rng.uniform(0.5, 1.5, C).astype(np.float32),
        "b": rng.standard_normal(C).astype(np.float32),
        "w": rng.standard_normal((C, 2 * C)).astype(np.float32) / 4,
        "wb": rng.standard_normal(2 * C).astype(np.float32),
        "sq2": np.array(np.sqrt(2), np.float32),
        "one": np.array(1.0, np.float32),
        "half": np.array(0.5, np.float32),
    }
    nodes = [
        helper.make_node("Transpose", ["x"], ["t"], perm=[0, 2, 3, 1]),
        helper.make_node("LayerNormalization", ["t", "g", "b"], ["ln"], axis=-1, epsilon=1e-6),
        helper.make_node("MatMul", ["ln", "w"], ["mm"]),
        helper.make_node("Add", ["mm", "wb"], ["h"]),
        helper.make_node("Div", ["h", "sq2"], ["d"]),
        helper.make_node("Erf", ["d"], ["e"]),
        helper.make_node("Add", ["e", "one"], ["e1"]),
        helper.make_node("Mul", ["h", "e1"], ["m"]),
        helper.make_node("Mul", ["m", "half"], ["gelu"]),
        helper.make_node("Transpose", ["gelu"], ["y"], perm=[0, 3, 1, 2]),
    ]
    data = make_model(nodes, [vinfo("x", ["N", C, 5, 6])], [vinfo("y", None)], inits)
    x = (rng.standard_normal((3, C, 5, 6)) * 3 + 1).astype(np.float32)
    g, want = _ort_and_pycnn(data, x)
    np.testing.assert_allclose(g(x), want, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(g.to("cuda_emu")(x), want, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(g.run_reference(x), want, rtol=1e-4, atol=1e-5)
    x[1, 3, 2, 2] = np.nan  # one NaN poisons its row's normalization only
    y = g(x)
    assert np.isnan(y[1, :, 2, 2]).all() and not np.isnan(np.delete(y.reshape(3, 2 * C, -1), 14, axis=2)[1]).any()


def _convnext_block(rng, C, shared_ln=False):
    """ConvNeXt's block as torchvision exports it: depthwise 7x7, NHWC LayerNorm, MatMul + bias,
    GELU (Erf), MatMul + bias, back to NCHW, layer scale (C, 1, 1), residual add; then a
    LayerNorm2d (transpose, LayerNorm, transpose). shared_ln: the LayerNorm output also an output."""
    inits = {
        "dw": rng.standard_normal((C, 1, 7, 7)).astype(np.float32) / 7,
        "g": rng.uniform(0.5, 1.5, C).astype(np.float32),
        "b": rng.standard_normal(C).astype(np.float32),
        "w1": (rng.standard_normal((C, 4 * C)) / np.sqrt(C)).astype(np.float32),
        "b1": rng.standard_normal(4 * C).astype(np.float32),
        "w2": (rng.standard_normal((4 * C, C)) / np.sqrt(4 * C)).astype(np.float32),
        "b2": rng.standard_normal(C).astype(np.float32),
        "ls": rng.uniform(0.1, 1, (C, 1, 1)).astype(np.float32),
        "g2": rng.uniform(0.5, 1.5, C).astype(np.float32),
        "sq2": np.array(np.sqrt(2), np.float32),
        "one": np.array(1.0, np.float32),
        "half": np.array(0.5, np.float32),
    }
    nodes = [
        helper.make_node("Conv", ["x", "dw"], ["d"], group=C, pads=[3, 3, 3, 3]),
        helper.make_node("Transpose", ["d"], ["t"], perm=[0, 2, 3, 1]),
        helper.make_node("LayerNormalization", ["t", "g", "b"], ["ln"], axis=-1, epsilon=1e-6),
        helper.make_node("MatMul", ["ln", "w1"], ["mm"]),
        helper.make_node("Add", ["mm", "b1"], ["h"]),
        helper.make_node("Div", ["h", "sq2"], ["q"]),
        helper.make_node("Erf", ["q"], ["e"]),
        helper.make_node("Add", ["e", "one"], ["e1"]),
        helper.make_node("Mul", ["h", "e1"], ["m"]),
        helper.make_node("Mul", ["m", "half"], ["gelu"]),
        helper.make_node("MatMul", ["gelu", "w2"], ["mm2"]),
        helper.make_node("Add", ["mm2", "b2"], ["h2"]),
        helper.make_node("Transpose", ["h2"], ["back"], perm=[0, 3, 1, 2]),
        helper.make_node("Mul", ["ls", "back"], ["scaled"]),
        helper.make_node("Add", ["scaled", "x"], ["r"]),
        helper.make_node("Transpose", ["r"], ["t2"], perm=[0, 2, 3, 1]),
        helper.make_node("LayerNormalization", ["t2", "g2"], ["ln2"], axis=-1, epsilon=1e-6),
        helper.make_node("Transpose", ["ln2"], ["y"], perm=[0, 3, 1, 2]),
    ]
    outputs = [vinfo("y", None)] + ([vinfo("ln", None)] if shared_ln else [])
    return make_model(nodes, [vinfo("x", ["N", C, 9, 10])], outputs, inits)


@pytest.mark.parametrize("C", [16, 12])
def test_convnext_block_runs_on_nchw_matches_onnxruntime(C):
    """The NHWC block becomes LayerNorm over channels and two 1x1 convs (GELU, layer scale and the
    residual in their epilogues): no transpose left; the result is onnxruntime's."""
    rng = np.random.default_rng(8)
    x = (rng.standard_normal((2, C, 9, 10)) * 2 + 0.5).astype(np.float32)
    g, want = _ort_and_pycnn(_convnext_block(rng, C), x)
    ops = ["conv2d", "channel_norm", "conv2d", "unary", "conv2d", "binary", "add", "channel_norm"]
    assert [n.op for n in g.nodes] == ops
    assert [s.op for s in g._steps] == ["conv2d", "channel_norm", "conv2d", "conv2d", "channel_norm"]
    np.testing.assert_allclose(g(x), want, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(g.run_reference(x), want, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(g(x[:1]), want[:1], rtol=1e-4, atol=1e-4)
    x[1, 2, 4, 4] = np.nan  # a NaN reaches the 7x7 window of its pixel, then every channel there
    y = g(x)
    assert np.isnan(y[1, :, 4, 4]).all() and not np.isnan(y[0]).any()


def test_convnext_block_with_a_shared_layer_norm_keeps_nhwc():
    """The LayerNorm's NHWC output is also a graph output: nothing rewritten, same result."""
    rng = np.random.default_rng(9)
    x = rng.standard_normal((1, 16, 9, 10)).astype(np.float32)
    data = _convnext_block(rng, 16, shared_ln=True)
    sess = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    want = sess.run(None, {"x": x})
    g = pycnn.load_onnx(data)
    assert "layer_norm" in [n.op for n in g.nodes] and "transpose" in [n.op for n in g.nodes]
    got = g(x)
    np.testing.assert_allclose(got["y"], want[0], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(got["ln"], want[1], rtol=1e-4, atol=1e-4)


def test_shapes_computed_from_the_input_fold_at_load():
    """x.view(x.size(0), -1) and x.view(N, C // 2, -1) as exporters write them: Shape, Gather,
    Div, Unsqueeze, Concat feeding a Reshape; the batch entry may sit anywhere."""
    shape_ops = [
        helper.make_node("Shape", ["x"], ["s"]),
        helper.make_node("Gather", ["s", "i0"], ["n"], axis=0),
        helper.make_node("Gather", ["s", "i1"], ["c"], axis=0),
        helper.make_node("Div", ["c", "two"], ["c2"]),
        helper.make_node("Unsqueeze", ["n", "ax0"], ["n1"]),
        helper.make_node("Unsqueeze", ["c2", "ax0"], ["c1"]),
        helper.make_node("Mul", ["n1", "two1"], ["n2"]),  # 2N: batch-dependent, not at axis 0
        helper.make_node("Concat", ["c1", "n2", "m1"], ["t"], axis=0),
        helper.make_node("Reshape", ["x", "t"], ["r"]),
        helper.make_node("Transpose", ["r"], ["y"], perm=[1, 0, 2]),
    ]
    inits = {
        "i0": np.array(0, np.int64),
        "i1": np.array(1, np.int64),
        "two": np.array(2, np.int64),
        "two1": np.array([2], np.int64),
        "ax0": np.array([0], np.int64),
        "m1": np.array([-1], np.int64),
    }
    data = make_model(shape_ops, [vinfo("x", ["N", 6, 4, 5])], [vinfo("y", None)], inits)
    with pytest.raises(ValueError, match="depends on the batch size in more than one entry"):
        pycnn.load_onnx(data)  # (C/2, 2N, -1): two free entries
    inits["m1"] = np.array([20], np.int64)
    data = make_model(shape_ops, [vinfo("x", ["N", 6, 4, 5])], [vinfo("y", None)], inits)
    g = pycnn.load_onnx(data)
    assert [n.attrs["shape"] for n in g.nodes if n.op == "reshape"] == [(3, -1, 20)]
    for N in (1, 4):
        x = np.random.default_rng(N).standard_normal((N, 6, 4, 5)).astype(np.float32)
        g2, want = _ort_and_pycnn(data, x)
        np.testing.assert_array_equal(g(x), want)


def test_shape_of_a_free_dimension_is_refused():
    nodes = [
        helper.make_node("Shape", ["x"], ["s"]),
        helper.make_node("Reshape", ["x", "s"], ["y"]),
    ]
    data = make_model(nodes, [vinfo("x", ["N", 3, "H", 4])], [vinfo("y", None)], {})
    with pytest.raises(ValueError, match="Shape.*not static"):
        pycnn.load_onnx(data)


def _ort_multi(data, feeds):
    return ort.InferenceSession(data, providers=["CPUExecutionProvider"]).run(None, feeds)[0]


def test_weights_fed_as_graph_inputs_run_per_call():
    """Conv and Gemm whose weights are graph inputs (not initializers): conv2d per call, a matmul
    step; an input with a fixed first dimension is not batched."""
    rng = np.random.default_rng(8)
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["y"], pads=[1, 1, 1, 1], strides=[2, 1])]
    ins = [vinfo("x", ["N", 3, 9, 8]), vinfo("w", [4, 3, 3, 3]), vinfo("b", [4])]
    data = make_model(nodes, ins, [vinfo("y", None)], {})
    g = pycnn.load_onnx(data)
    assert g.inputs["w"] == (4, 3, 3, 3) and g.inputs["x"][0] is None
    assert [n.op for n in g.nodes] == ["conv2d_dynamic"]
    for N in (1, 3):
        feeds = {
            "x": rng.standard_normal((N, 3, 9, 8)).astype(np.float32),
            "w": rng.standard_normal((4, 3, 3, 3)).astype(np.float32),
            "b": rng.standard_normal(4).astype(np.float32),
        }
        np.testing.assert_allclose(g(feeds), _ort_multi(data, feeds), rtol=1e-5, atol=1e-5)
    assert g.profile(feeds, runs=1).rows[0][5] == "conv2d per call"
    with pytest.raises(ValueError, match="input 'w' is not batched"):
        g(dict(feeds, w=np.zeros((5, 3, 3, 3), np.float32)))
    # Gemm with transA, transB, alpha, beta and a C of full shape, all graph inputs
    nodes = [helper.make_node("Gemm", ["a", "bm", "c"], ["y"], transA=1, transB=1, alpha=0.5, beta=2.0)]
    ins = [vinfo("a", [4, 3]), vinfo("bm", [5, 4]), vinfo("c", [3, 5])]
    data = make_model(nodes, ins, [vinfo("y", None)], {})
    g = pycnn.load_onnx(data)
    feeds = {
        "a": rng.standard_normal((4, 3)).astype(np.float32),
        "bm": rng.standard_normal((5, 4)).astype(np.float32),
        "c": rng.standard_normal((3, 5)).astype(np.float32),
    }
    np.testing.assert_allclose(g(feeds), _ort_multi(data, feeds), rtol=1e-5, atol=1e-5)


def test_matmul_of_any_ranks_matches_onnxruntime():
    rng = np.random.default_rng(9)
    for sa, sb in (((2, 3, 4), (4,)), ((4,), (2, 4, 5)), ((2, 1, 3, 4), (5, 4, 6)), ((3, 4), (4, 2))):
        nodes = [helper.make_node("MatMul", ["x", "y2"], ["y"])]
        data = make_model(nodes, [vinfo("x", list(sa)), vinfo("y2", list(sb))], [vinfo("y", None)], {})
        feeds = {"x": rng.standard_normal(sa).astype(np.float32), "y2": rng.standard_normal(sb).astype(np.float32)}
        np.testing.assert_allclose(pycnn.load_onnx(data)(feeds), _ort_multi(data, feeds), rtol=1e-5, atol=1e-5)
    w = rng.standard_normal((2, 4, 3)).astype(np.float32)  # a constant 3-D right side: a matmul step
    nodes = [helper.make_node("MatMul", ["x", "w"], ["y"])]
    data = make_model(nodes, [vinfo("x", ["N", 2, 5, 4])], [vinfo("y", None)], {"w": w})
    x = rng.standard_normal((3, 2, 5, 4)).astype(np.float32)
    np.testing.assert_allclose(pycnn.load_onnx(data)(x), _ort_multi(data, {"x": x}), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "op, attrs",
    [
        ("MaxPool", dict(kernel_shape=[3, 3], strides=[2, 2], auto_pad="SAME_UPPER")),
        ("MaxPool", dict(kernel_shape=[3, 2], strides=[2, 3], auto_pad="SAME_LOWER")),
        ("MaxPool", dict(kernel_shape=[3, 3], pads=[0, 1, 2, 1])),
        ("AveragePool", dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 0, 2, 1], count_include_pad=1)),
        ("AveragePool", dict(kernel_shape=[2, 2], strides=[2, 2], auto_pad="SAME_UPPER")),
        ("AveragePool", dict(kernel_shape=[3, 3], strides=[1, 2], auto_pad="SAME_LOWER")),
        ("AveragePool", dict(kernel_shape=[3, 2], pads=[2, 0, 1, 1])),
        ("AveragePool", dict(kernel_shape=[3, 3], pads=[2, 2, 2, 2], count_include_pad=1)),
        ("MaxPool", dict(kernel_shape=[2, 3], pads=[1, 2, 1, 2])),
        ("Conv", dict(kernel_shape=[3, 3], strides=[2, 2], auto_pad="SAME_LOWER")),
    ],
)
def test_same_and_asymmetric_padding_match_onnxruntime(op, attrs):
    rng = np.random.default_rng(10)
    x = rng.standard_normal((2, 4, 11, 10)).astype(np.float32)
    inits = {"w": rng.standard_normal((5, 4, 3, 3)).astype(np.float32)} if op == "Conv" else {}
    nodes = [helper.make_node(op, ["x", "w"] if op == "Conv" else ["x"], ["y"], **attrs)]
    data = make_model(nodes, [vinfo("x", ["N", 4, 11, 10])], [vinfo("y", None)], inits)
    g = pycnn.load_onnx(data)
    np.testing.assert_allclose(g(x), _ort_multi(data, {"x": x}), rtol=1e-5, atol=1e-5)
