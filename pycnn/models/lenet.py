"""LeNet-5 as in the lecture: 32x32 grey input, 5x5 convs with stride 1, 2x2 stride-2 pooling.

conv1 6@28x28 -> pool 6@14x14 -> conv2 16@10x10 -> pool 16@5x5 -> conv3 120@1x1 -> fc1 84 ->
fc2 classes. ReLU and max pooling (the modern reading; the 1998 paper used scaled tanh and
trainable subsampling). Output: logits. Keys: conv1-3, fc1-2 (as in pycnn/models/torch_reference.py).
"""

from ..graph import Graph
from ._builder import Builder, Weights


def lenet5(*, num_classes: int = 10, seed: int = 0, algo: str = "auto", weights: Weights = None) -> Graph:
    """LeNet-5: input (N, 1, 32, 32), output num_classes logits.
    seed: the random weights' seed; algo: the conv algorithm of every layer ('auto'); weights: a
    state_dict (dict, .npz or PyTorch .pt/.pth path) loaded over the random weights."""
    b = Builder("lenet5", {"x": (None, 1, 32, 32)}, seed)
    x = b.relu("relu1", b.conv("conv1", "x", 6, 5))
    x = b.max_pool("pool1", x, 2, 2)
    x = b.relu("relu2", b.conv("conv2", x, 16, 5))
    x = b.max_pool("pool2", x, 2, 2)
    x = b.relu("relu3", b.conv("conv3", x, 120, 5))
    x = b.flatten("flatten", x)
    x = b.relu("relu4", b.linear("fc1", x, 84))
    x = b.linear("fc2", x, num_classes)
    return b.graph(x, algo=algo, weights=weights)
