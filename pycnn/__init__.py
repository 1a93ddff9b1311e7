"""pycnn: hand-written convolution and pooling kernels behind a small NumPy API."""

from . import (  # noqa: F401 (pycnn.batch_inference ...)
    _C,  # noqa: F401  (pycnn._C: ISA and thread controls, SGEMM for the bench)
    batch_inference,
    cuda,
    device,
    models,
    registry,
)
from ._config import config
from ._version import __version__
from .graph import Graph, Node
from .io import load_onnx
from .ops import (
    add,
    algorithms,
    apply_config,
    avg_pool2d,
    batch_norm,
    concat,
    conv2d,
    get_num_threads,
    get_workspace_limit,
    global_avg_pool2d,
    linear,
    local_response_norm,
    max_pool2d,
    relu,
    set_num_threads,
    set_workspace_limit,
    softmax,
)
from .prepared import PreparedConv, prepare_conv
from .tuning import autotune

load = Graph.load
backend = device.backend
apply_config()  # the environment's ISA cap and workspace limit, read once (pycnn/_config.py)

__all__ = [
    "conv2d",
    "max_pool2d",
    "avg_pool2d",
    "global_avg_pool2d",
    "local_response_norm",
    "linear",
    "relu",
    "softmax",
    "add",
    "concat",
    "batch_norm",
    "algorithms",
    "set_num_threads",
    "get_num_threads",
    "set_workspace_limit",
    "get_workspace_limit",
    "prepare_conv",
    "PreparedConv",
    "autotune",
    "Graph",
    "Node",
    "load",
    "backend",
    "load_onnx",
    "models",
    "config",
    "__version__",
]
