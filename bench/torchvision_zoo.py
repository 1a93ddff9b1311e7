"""torchvision's classification CNNs as a user brings them: random weights with randomized
batch-norm statistics, exported with torch.onnx.export (opset 17, dynamic batch), loaded with
pycnn.load_onnx. Read by tests/test_torchvision_onnx.py (each network matches PyTorch) and the
bench's `models` suite (pycnn against onnxruntime on the same ONNX file).

The torchvision wheel on this project's package index is built against CUDA PyTorch: its custom
operators library (torchvision::nms, roi_align ...) cannot load next to the CPU PyTorch the
project pins, and `import torchvision` fails while registering their fake kernels
(torchvision._meta_registrations). The classification models never call those operators, so
import_torchvision() skips that one module when the normal import fails for this reason.
"""

from __future__ import annotations

import io
import sys
import types
import warnings

import numpy as np

# name -> (torchvision constructor, keyword arguments, input size)
NETWORKS = {
    "vgg16": ("vgg16", {}, 224),
    "vgg11_bn": ("vgg11_bn", {}, 224),
    "squeezenet1_1": ("squeezenet1_1", {}, 224),
    "mobilenet_v2": ("mobilenet_v2", {}, 224),
    "mobilenet_v3_small": ("mobilenet_v3_small", {}, 224),
    "shufflenet_v2_x1_0": ("shufflenet_v2_x1_0", {}, 224),
    "mnasnet1_0": ("mnasnet1_0", {}, 224),
    "densenet121": ("densenet121", {}, 224),
    "resnext50_32x4d": ("resnext50_32x4d", {}, 224),
    "wide_resnet50_2": ("wide_resnet50_2", {}, 224),
    "regnet_y_400mf": ("regnet_y_400mf", {}, 224),
    "efficientnet_b0": ("efficientnet_b0", {}, 224),
    "inception_v3": ("inception_v3", {"aux_logits": False, "init_weights": True}, 299),
    "convnext_tiny": ("convnext_tiny", {}, 224),
}
# The subset `make bench` runs (the default suite's time budget): the depthwise-bound ones.
QUICK = ("mobilenet_v2", "shufflenet_v2_x1_0", "efficientnet_b0")
# torchvision's exports of lecture networks (pycnn.models has them natively), for the node-by-node
# comparison with onnxruntime only (bench/ort_nodes.py); in no suite.
PER_NODE_ONLY = {
    "tv_resnet50": ("resnet50", {}, 224),
    "tv_alexnet": ("alexnet", {}, 224),
    "tv_googlenet": ("googlenet", {"aux_logits": False, "init_weights": True}, 224),
}


def _entry(name: str) -> tuple:
    """(constructor, keyword arguments, input size) of a NETWORKS or PER_NODE_ONLY name."""
    return NETWORKS[name] if name in NETWORKS else PER_NODE_ONLY[name]


def import_torchvision():
    """torchvision.models, or ImportError saying why not."""
    try:
        import torchvision
    except RuntimeError as e:  # its CUDA operator library did not load: see the module docstring
        if "torchvision::" not in str(e):
            raise ImportError(f"torchvision failed to import: {e}") from e
        for k in [k for k in sys.modules if k == "torchvision" or k.startswith("torchvision.")]:
            del sys.modules[k]
        sys.modules["torchvision._meta_registrations"] = types.ModuleType("torchvision._meta_registrations")
        import torchvision
    return torchvision.models


def torch_model(name: str, seed: int = 0):
    """The network in eval mode, random weights, batch-norm statistics and affine randomized (a
    fresh network's are 0/1, which would hide a wrong folding)."""
    import torch

    ctor, kwargs, _ = _entry(name)
    torch.manual_seed(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = getattr(import_torchvision(), ctor)(**kwargs).eval()
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                mod.running_mean.copy_(torch.rand(mod.running_mean.shape, generator=g) - 0.5)
                mod.running_var.copy_(torch.rand(mod.running_var.shape, generator=g) * 1.5 + 0.5)
                mod.weight.copy_(torch.rand(mod.weight.shape, generator=g) + 0.5)
                mod.bias.copy_(torch.rand(mod.bias.shape, generator=g) - 0.5)
    return m


def input_shape(name: str, batch: int) -> tuple:
    size = _entry(name)[2]
    return (batch, 3, size, size)


def export_onnx(model, name: str) -> bytes:
    """The ONNX file torch.onnx.export writes (TorchScript exporter, opset 17, batch dynamic)."""
    import torch

    f = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            (torch.zeros(input_shape(name, 1)),),
            f,
            dynamo=False,
            opset_version=17,
            input_names=["x"],
            output_names=["y"],
            dynamic_axes={"x": {0: "N"}, "y": {0: "N"}},
        )
    return f.getvalue()


def torch_forward(model, x: np.ndarray) -> np.ndarray:
    import torch

    with torch.inference_mode():
        return model(torch.from_numpy(x)).numpy()
