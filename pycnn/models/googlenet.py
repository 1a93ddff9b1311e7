"""GoogLeNet (Inception v1) in torchvision's layout: every conv is a BasicConv2d (conv without
bias, batch norm eps 1e-3, ReLU), max pools use ceil_mode, the '5x5' branch uses a 3x3 kernel
as torchvision does, and the auxiliary heads are left out (their keys, aux1.* and aux2.*, are
skipped when a torchvision state_dict loads). transform_input is off (torchvision's default
when no pretrained weights are requested). Input 224x224x3; output logits.
"""

from ..graph import Graph
from ._builder import Builder, Weights

# name, in, 1x1, 3x3 reduce, 3x3, "5x5" reduce, "5x5", pool proj
INCEPTION = [
    ("inception3a", 64, 96, 128, 16, 32, 32),
    ("inception3b", 128, 128, 192, 32, 96, 64),
    ("inception4a", 192, 96, 208, 16, 48, 64),
    ("inception4b", 160, 112, 224, 24, 64, 64),
    ("inception4c", 128, 128, 256, 24, 64, 64),
    ("inception4d", 112, 144, 288, 32, 64, 64),
    ("inception4e", 256, 160, 320, 32, 128, 128),
    ("inception5a", 256, 160, 320, 32, 128, 128),
    ("inception5b", 384, 192, 384, 48, 128, 128),
]


def basic_conv(b, name, x, cout, k, stride=1, padding=0):
    x = b.conv(f"{name}.conv", x, cout, k, stride=stride, padding=padding, bias=False)
    return b.relu(f"{name}.relu", b.bn(f"{name}.bn", x, eps=1e-3))


def inception(b, name, x, c1, c3r, c3, c5r, c5, pp):
    y1 = basic_conv(b, f"{name}.branch1", x, c1, 1)
    y2 = basic_conv(b, f"{name}.branch2.1", basic_conv(b, f"{name}.branch2.0", x, c3r, 1), c3, 3, padding=1)
    y3 = basic_conv(b, f"{name}.branch3.1", basic_conv(b, f"{name}.branch3.0", x, c5r, 1), c5, 3, padding=1)
    y4 = b.max_pool(f"{name}.branch4.0", x, 3, 1, padding=1, ceil_mode=True)
    y4 = basic_conv(b, f"{name}.branch4.1", y4, pp, 1)
    return b.add(f"{name}.concat", "concat", [y1, y2, y3, y4], dict(axis=1))


def googlenet(*, num_classes: int = 1000, seed: int = 0, algo: str = "auto", weights: Weights = None) -> Graph:
    """torchvision's GoogLeNet (Inception v1, no auxiliary heads): input (N, 3, 224, 224),
    output num_classes logits; a torchvision state_dict loads (aux1.*/aux2.* keys skipped).
    seed: the random weights' seed; algo: the conv algorithm of every layer ('auto'); weights: a
    state_dict (dict, .npz or PyTorch .pt/.pth path) loaded over the random weights."""
    b = Builder("googlenet", {"x": (None, 3, 224, 224)}, seed)
    x = basic_conv(b, "conv1", "x", 64, 7, stride=2, padding=3)
    x = b.max_pool("maxpool1", x, 3, 2, ceil_mode=True)
    x = basic_conv(b, "conv2", x, 64, 1)
    x = basic_conv(b, "conv3", x, 192, 3, padding=1)
    x = b.max_pool("maxpool2", x, 3, 2, ceil_mode=True)
    for name, *ch in INCEPTION:
        x = inception(b, name, x, *ch)
        if name == "inception3b":
            x = b.max_pool("maxpool3", x, 3, 2, ceil_mode=True)
        elif name == "inception4e":
            x = b.max_pool("maxpool4", x, 2, 2, ceil_mode=True)
    x = b.add("avgpool", "adaptive_avg_pool2d", x, dict(output_size=1))
    x = b.dropout("dropout", b.flatten("flatten", x))
    x = b.linear("fc", x, num_classes)
    return b.graph(x, algo=algo, weights=weights, ignore_keys=("aux1.", "aux2."))
