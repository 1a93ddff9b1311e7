"""The engines pycnn is measured against, each behind the same call shape.

make_conv_peers(x, w, b, layer) -> {name: callable returning an (N, K, Ho, Wo) array}.
Missing engines are left out (and reported by `available()`), never faked.
"""
from __future__ import annotations

import numpy as np

try:
    import torch
    import torch.nn.functional as TF
except ImportError:
    torch = None
try:
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper
except ImportError:
    ort = None


def available() -> dict:
    return {
        "torch": None if torch is None else torch.__version__,
        "onnxruntime": None if ort is None else ort.__version__,
        "numpy": np.__version__,
    }


def set_threads(n: int) -> None:
    if torch is not None:
        torch.set_num_threads(n)


def numpy_im2col_conv(x, w, b, stride, pad):
    """NumPy baseline: explicit im2col (sliding_window_view) + one matmul per image (OpenBLAS)."""
    sh = sw = stride
    ph, pw = (pad, pad) if isinstance(pad, int) else pad
    K, C, R, S = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    win = np.lib.stride_tricks.sliding_window_view(xp, (R, S), axis=(2, 3))[:, :, ::sh, ::sw]
    N, _, Ho, Wo = win.shape[:4]
    cols = win.transpose(0, 1, 4, 5, 2, 3).reshape(N, C * R * S, Ho * Wo)
    y = np.matmul(w.reshape(K, -1), cols).reshape(N, K, Ho, Wo)
    if b is not None:
        y += b.reshape(1, K, 1, 1)
    return y


def _onnx_conv_session(w, b, stride, pad, groups, threads):
    ph, pw = (pad, pad) if isinstance(pad, int) else pad
    K, Cg, R, S = w.shape
    node = helper.make_node("Conv", ["x", "w", "b"], ["y"], strides=[stride, stride],
                            pads=[ph, pw, ph, pw], group=groups, kernel_shape=[R, S])
    graph = helper.make_graph(
        [node], "conv",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, None)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = min(model.ir_version, 9)
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])


def make_conv_peers(x, w, b, layer, threads, with_numpy=True):
    peers = {}
    if torch is not None:
        tx, tw, tb = torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(b)

        def run_torch():
            with torch.no_grad():
                return TF.conv2d(tx, tw, tb, layer.stride, layer.pad, 1, layer.groups).numpy()

        peers["torch"] = run_torch
    if ort is not None:
        sess = _onnx_conv_session(w, b, layer.stride, layer.pad, layer.groups, threads)
        peers["onnxruntime"] = lambda: sess.run(None, {"x": x})[0]
    if with_numpy and layer.groups == 1:
        peers["numpy"] = lambda: numpy_im2col_conv(x, w, b, layer.stride, layer.pad)
    return peers
