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


try:
    import ncnn
except ImportError:
    ncnn = None


PEER_NAMES = ("torch", "onnxruntime", "ncnn", "numpy")  # every engine pycnn is timed against


def available() -> dict:
    return {
        "torch": None if torch is None else torch.__version__,
        "onnxruntime": None if ort is None else ort.__version__,
        "ncnn": None if ncnn is None else getattr(ncnn, "__version__", "installed"),
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
    node = helper.make_node(
        "Conv",
        ["x", "w", "b"],
        ["y"],
        strides=[stride, stride],
        pads=[ph, pw, ph, pw],
        group=groups,
        kernel_shape=[R, S],
    )
    graph = helper.make_graph(
        [node],
        "conv",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, None)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = min(model.ir_version, 9)
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])


def ncnn_fp32_net(param_path, bin_path, threads):
    """An ncnn.Net loaded from .param/.bin for an FP32 comparison: fp16/bf16 storage and
    arithmetic off (ncnn's default stores some weights as fp16 on CPUs with F16C), Winograd,
    sgemm and the packed layout on."""
    net = ncnn.Net()
    o = net.opt
    o.num_threads = threads
    o.use_winograd_convolution = True
    o.use_sgemm_convolution = True
    o.use_packing_layout = True
    for flag in ("use_fp16_storage", "use_fp16_packed", "use_fp16_arithmetic", "use_bf16_storage", "use_bf16_packed"):
        setattr(o, flag, False)
    if net.load_param(param_path) != 0 or net.load_model(bin_path) != 0:
        raise RuntimeError(f"ncnn could not load {param_path}")
    return net


def ncnn_run_images(net, x, input_name, output_name):
    """Run a batch through ncnn image by image (ncnn has no batch dimension), as an application
    would; returns the outputs stacked along a new first axis."""
    outs = []
    for img in x:
        arr = np.ascontiguousarray(img)  # kept alive until extract returns (ncnn.Mat does not copy)
        ex = net.create_extractor()
        ex.input(input_name, ncnn.Mat(arr))
        ret, out = ex.extract(output_name)
        if ret != 0:
            raise RuntimeError(f"ncnn extract of {output_name!r} failed ({ret})")
        outs.append(np.array(out))
    return np.stack(outs)


class NcnnConv:
    """One Convolution layer in ncnn (PyPI `ncnn`), same weights, FP32 only (fp16/bf16 storage and
    arithmetic off), Winograd and sgemm on: the .param text and .bin (uint32 flag 0, OIHW
    weights, bias) are written to a temporary folder. ncnn has no batch dimension, so a batch is
    run image by image, as an application would."""

    def __init__(self, w, b, layer, threads):
        import os
        import tempfile

        K, Cg, R, S = w.shape
        ph, pw = (layer.pad, layer.pad) if isinstance(layer.pad, int) else layer.pad
        self.dir = tempfile.TemporaryDirectory(prefix="pycnn-ncnn-")
        param = os.path.join(self.dir.name, "conv.param")
        binf = os.path.join(self.dir.name, "conv.bin")
        kind = "Convolution" if layer.groups == 1 else "ConvolutionDepthWise"
        extra = "" if layer.groups == 1 else f" 7={layer.groups}"
        with open(param, "w") as f:
            f.write("7767517\n2 2\n")
            f.write(f"Input data 0 1 data 0={layer.W} 1={layer.H} 2={layer.C}\n")
            f.write(
                f"{kind} conv 1 1 data output 0={K} 1={S} 11={R} 2=1 12=1 3={layer.stride} 13={layer.stride} "
                f"4={pw} 15={pw} 14={ph} 16={ph} 5=1 6={w.size}{extra}\n"
            )
        with open(binf, "wb") as f:
            f.write(np.uint32(0).tobytes())
            f.write(np.ascontiguousarray(w, np.float32).tobytes())
            f.write(np.ascontiguousarray(b, np.float32).tobytes())
        self.net = ncnn_fp32_net(param, binf, threads)

    def __call__(self, x):
        return ncnn_run_images(self.net, x, "data", "output")


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
    if ncnn is not None:
        conv = NcnnConv(w, b, layer, threads)
        peers["ncnn"] = lambda: conv(x)
    if with_numpy and layer.groups == 1:
        peers["numpy"] = lambda: numpy_im2col_conv(x, w, b, layer.stride, layer.pad)
    return peers
