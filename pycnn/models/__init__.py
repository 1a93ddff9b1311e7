"""The lecture's networks as pycnn Graphs with seeded random weights (load real ones with
weights=... or g.load_state_dict), plus layer_shapes: their conv and pooling layers for the
tests and bench.

pycnn.models.names() lists them, info(name) describes one without building it, get(name, **kw)
builds one (keyword arguments as the builder's: num_classes, seed, algo, weights ...).
"""

from __future__ import annotations

from typing import Any, NamedTuple

from ..graph import Graph
from .alexnet import alexnet, alexnet_torchvision
from .googlenet import googlenet
from .layer_shapes import CONV_LAYERS, POOL_LAYERS, ConvLayer, PoolLayer
from .lenet import lenet5
from .resnet import resnet, resnet18, resnet34, resnet50, resnet101, resnet152
from .small_nets import alphago, convnetjs, kimcnn


class ModelInfo(NamedTuple):
    """What `python -m pycnn list` prints: the builder, its declared input and one line."""

    builder: Any
    input_shape: tuple
    about: str


_ZOO = {
    "lenet5": ModelInfo(lenet5, (None, 1, 32, 32), "LeNet-5: 5x5 convs, 2x2 pools, 10 classes"),
    "alexnet": ModelInfo(alexnet, (None, 3, 227, 227), "the lecture's AlexNet with LRN, 1000 classes"),
    "alexnet_torchvision": ModelInfo(
        alexnet_torchvision, (None, 3, 224, 224), "torchvision's AlexNet (its weights load), 1000 classes"
    ),
    "googlenet": ModelInfo(googlenet, (None, 3, 224, 224), "Inception v1 (torchvision's layout), 1000 classes"),
    "resnet18": ModelInfo(resnet18, (None, 3, 224, 224), "ResNet-18, basic blocks, 1000 classes"),
    "resnet34": ModelInfo(resnet34, (None, 3, 224, 224), "ResNet-34, basic blocks, 1000 classes"),
    "resnet50": ModelInfo(resnet50, (None, 3, 224, 224), "ResNet-50, bottlenecks, 1000 classes"),
    "resnet101": ModelInfo(resnet101, (None, 3, 224, 224), "ResNet-101, bottlenecks, 1000 classes"),
    "resnet152": ModelInfo(resnet152, (None, 3, 224, 224), "ResNet-152, bottlenecks, 1000 classes"),
    "kimcnn": ModelInfo(kimcnn, (None, 50), "Kim's sentence CNN: token ids -> filter widths 3/4/5, 2 classes"),
    "alphago": ModelInfo(alphago, (None, 48, 19, 19), "AlphaGo's policy network: 13 convs, softmax over 361 points"),
    "convnetjs": ModelInfo(convnetjs, (None, 3, 32, 32), "the ConvNetJS CIFAR-10 demo net, 10 classes"),
}


def names() -> list:
    """The zoo's names, as get() accepts them."""
    return list(_ZOO)


def info(name: str) -> ModelInfo:
    """The builder, declared input shape and a one-line description of a zoo network, without
    building it."""
    if name not in _ZOO:
        raise ValueError(f"name: unknown model {name!r}; expected one of {names()}")
    return _ZOO[name]


def get(name: str, **kw: Any) -> Graph:
    """Build the named network; keyword arguments go to its builder (num_classes, seed, algo,
    weights ...: see help(pycnn.models.<name>))."""
    return info(name).builder(**kw)


__all__ = [
    "names",
    "info",
    "get",
    "ModelInfo",
    "lenet5",
    "alexnet",
    "alexnet_torchvision",
    "googlenet",
    "resnet",
    "resnet18",
    "resnet34",
    "resnet50",
    "resnet101",
    "resnet152",
    "kimcnn",
    "alphago",
    "convnetjs",
    "CONV_LAYERS",
    "POOL_LAYERS",
    "ConvLayer",
    "PoolLayer",
]
