"""ResNet-18/34 (basic blocks) and -50/101/152 (bottlenecks, stride on the 3x3 as torchvision's
v1.5), in torchvision's layout and key names (conv1, bn1, layerL.B.convI / bnI,
layerL.B.downsample.0/1, fc). Batch norm is folded into the convolutions by the Graph's plan.
Random weights scale the last batch norm of each block by 0.3 so that activations stay in range
over 50 blocks (the role torchvision's zero_init_residual plays in training).
"""

from ..graph import Graph
from ._builder import Builder, Weights

DEPTHS = {
    18: ("basic", (2, 2, 2, 2)),
    34: ("basic", (3, 4, 6, 3)),
    50: ("bottleneck", (3, 4, 6, 3)),
    101: ("bottleneck", (3, 4, 23, 3)),
    152: ("bottleneck", (3, 8, 36, 3)),
}


def _block(b, name, x, kind, width, stride):
    expansion = 4 if kind == "bottleneck" else 1
    cout = width * expansion
    if kind == "basic":
        y = b.relu(f"{name}.relu1", b.bn(f"{name}.bn1", b.conv(f"{name}.conv1", x, width, 3, stride, 1, bias=False)))
        y = b.bn(f"{name}.bn2", b.conv(f"{name}.conv2", y, width, 3, 1, 1, bias=False), gamma=0.3)
    else:
        y = b.relu(f"{name}.relu1", b.bn(f"{name}.bn1", b.conv(f"{name}.conv1", x, width, 1, bias=False)))
        y = b.relu(f"{name}.relu2", b.bn(f"{name}.bn2", b.conv(f"{name}.conv2", y, width, 3, stride, 1, bias=False)))
        y = b.bn(f"{name}.bn3", b.conv(f"{name}.conv3", y, cout, 1, bias=False), gamma=0.3)
    if stride != 1 or b.channels(x) != cout:
        x = b.bn(f"{name}.downsample.1", b.conv(f"{name}.downsample.0", x, cout, 1, stride, bias=False))
    return b.relu(f"{name}.relu", b.add(f"{name}.add", "add", [y, x]))


def resnet(depth: int, *, num_classes: int = 1000, seed: int = 0, algo: str = "auto", weights: Weights = None) -> Graph:
    """torchvision's ResNet-depth (18, 34, 50, 101 or 152): input (N, 3, 224, 224), output
    num_classes logits; a torchvision state_dict loads as it is.
    seed: the random weights' seed; algo: the conv algorithm of every layer ('auto'); weights: a
    state_dict (dict, .npz or PyTorch .pt/.pth path) loaded over the random weights."""
    if depth not in DEPTHS:
        raise ValueError(f"depth: expected one of {sorted(DEPTHS)}, got {depth!r}")
    kind, blocks = DEPTHS[depth]
    b = Builder(f"resnet{depth}", {"x": (None, 3, 224, 224)}, seed)
    x = b.relu("relu", b.bn("bn1", b.conv("conv1", "x", 64, 7, 2, 3, bias=False)))
    x = b.max_pool("maxpool", x, 3, 2, padding=1)
    for i, n in enumerate(blocks):
        for j in range(n):
            x = _block(b, f"layer{i + 1}.{j}", x, kind, 64 * 2**i, 2 if (j == 0 and i > 0) else 1)
    x = b.add("avgpool", "adaptive_avg_pool2d", x, dict(output_size=1))
    x = b.linear("fc", b.flatten("flatten", x), num_classes)
    return b.graph(x, algo=algo, weights=weights)


def resnet18(*, num_classes: int = 1000, seed: int = 0, algo: str = "auto", weights: Weights = None) -> Graph:
    """torchvision's ResNet-18: input (N, 3, 224, 224), output num_classes logits.
    seed: the random weights' seed; algo: the conv algorithm of every layer ('auto'); weights: a
    state_dict (dict, .npz or PyTorch .pt/.pth path) loaded over the random weights."""
    return resnet(18, num_classes=num_classes, seed=seed, algo=algo, weights=weights)


def resnet34(*, num_classes: int = 1000, seed: int = 0, algo: str = "auto", weights: Weights = None) -> Graph:
    """torchvision's ResNet-34: input (N, 3, 224, 224), output num_classes logits.
    seed: the random weights' seed; algo: the conv algorithm of every layer ('auto'); weights: a
    state_dict (dict, .npz or PyTorch .pt/.pth path) loaded over the random weights."""
    return resnet(34, num_classes=num_classes, seed=seed, algo=algo, weights=weights)


def resnet50(*, num_classes: int = 1000, seed: int = 0, algo: str = "auto", weights: Weights = None) -> Graph:
    """torchvision's ResNet-50: input (N, 3, 224, 224), output num_classes logits.
    seed: the random weights' seed; algo: the conv algorithm of every layer ('auto'); weights: a
    state_dict (dict, .npz or PyTorch .pt/.pth path) loaded over the random weights."""
    return resnet(50, num_classes=num_classes, seed=seed, algo=algo, weights=weights)


def resnet101(*, num_classes: int = 1000, seed: int = 0, algo: str = "auto", weights: Weights = None) -> Graph:
    """torchvision's ResNet-101: input (N, 3, 224, 224), output num_classes logits.
    seed: the random weights' seed; algo: the conv algorithm of every layer ('auto'); weights: a
    state_dict (dict, .npz or PyTorch .pt/.pth path) loaded over the random weights."""
    return resnet(101, num_classes=num_classes, seed=seed, algo=algo, weights=weights)


def resnet152(*, num_classes: int = 1000, seed: int = 0, algo: str = "auto", weights: Weights = None) -> Graph:
    """torchvision's ResNet-152: input (N, 3, 224, 224), output num_classes logits.
    seed: the random weights' seed; algo: the conv algorithm of every layer ('auto'); weights: a
    state_dict (dict, .npz or PyTorch .pt/.pth path) loaded over the random weights."""
    return resnet(152, num_classes=num_classes, seed=seed, algo=algo, weights=weights)
