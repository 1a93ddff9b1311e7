"""The lecture's networks as pycnn Graphs with seeded random weights (load real ones with
g.load_state_dict), plus layer_shapes: their conv and pooling layers for the tests and bench.

pycnn.models.names() lists them; pycnn.models.get(name, **kw) builds one.
"""
from .alexnet import alexnet, alexnet_torchvision
from .googlenet import googlenet
from .layer_shapes import CONV_LAYERS, POOL_LAYERS, ConvLayer, PoolLayer
from .lenet import lenet5
from .resnet import resnet, resnet18, resnet34, resnet50, resnet101, resnet152
from .small_nets import alphago, convnetjs, kimcnn

_ZOO = {
    "lenet5": lenet5, "alexnet": alexnet, "alexnet_torchvision": alexnet_torchvision, "googlenet": googlenet,
    "resnet18": resnet18, "resnet34": resnet34, "resnet50": resnet50, "resnet101": resnet101,
    "resnet152": resnet152, "kimcnn": kimcnn, "alphago": alphago, "convnetjs": convnetjs,
}


def names():
    """Names get() accepts."""
    return list(_ZOO)


def get(name, **kw):
    """Build the named network (keyword arguments go to its function: seed, num_classes, algo ...)."""
    if name not in _ZOO:
        raise ValueError(f"name: unknown model {name!r}; expected one of {names()}")
    return _ZOO[name](**kw)


__all__ = ["names", "get", "lenet5", "alexnet", "alexnet_torchvision", "googlenet", "resnet", "resnet18",
           "resnet34", "resnet50", "resnet101", "resnet152", "kimcnn", "alphago", "convnetjs",
           "CONV_LAYERS", "POOL_LAYERS", "ConvLayer", "PoolLayer"]
