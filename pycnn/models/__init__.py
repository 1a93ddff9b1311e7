"""The lecture's networks. layer_shapes lists their convolution and pooling layers (used by the
tests and the bench); the runnable model graphs build on it."""
from .layer_shapes import CONV_LAYERS, POOL_LAYERS, ConvLayer, PoolLayer

__all__ = ["CONV_LAYERS", "POOL_LAYERS", "ConvLayer", "PoolLayer"]
