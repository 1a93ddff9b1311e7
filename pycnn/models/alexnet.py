"""AlexNet, two layouts.

alexnet(): the lecture's table (227x227x3; conv1 96 11x11/4 -> 55x55; 3x3/2 overlapping max
pools; LRN (size 5, alpha 1e-4, beta 0.75, k 2) after the first and second conv blocks, placed
after the pool as the lecture's table lists it (CONV1, POOL1, NORM1); conv2 256 5x5 pad 2;
conv3-4 384 3x3; conv5 256 3x3; FC 4096-4096-1000; dropout as identity). Ungrouped (one GPU).
Keys follow torchvision's numbering: features.N, classifier.N.

alexnet_torchvision(): torchvision.models.alexnet (224 input, 64-192-384-256-256 channels, no
LRN, adaptive 6x6 average pool) so that its PyTorch weights load as they are.
"""

from ..graph import Graph
from ._builder import Builder, Weights


def alexnet(*, num_classes: int = 1000, seed: int = 0, algo: str = "auto", weights: Weights = None) -> Graph:
    """The lecture's AlexNet (input (N, 3, 227, 227), LRN after the first two conv blocks) with
    seeded random weights; output: num_classes logits.
    seed: the random weights' seed; algo: the conv algorithm of every layer ('auto'); weights: a
    state_dict (dict, .npz or PyTorch .pt/.pth path) loaded over the random weights."""
    b = Builder("alexnet", {"x": (None, 3, 227, 227)}, seed)
    x = b.relu("features.1", b.conv("features.0", "x", 96, 11, stride=4))
    x = b.lrn("features.3", b.max_pool("features.2", x, 3, 2))
    x = b.relu("features.5", b.conv("features.4", x, 256, 5, padding=2))
    x = b.lrn("features.7", b.max_pool("features.6", x, 3, 2))
    x = b.relu("features.9", b.conv("features.8", x, 384, 3, padding=1))
    x = b.relu("features.11", b.conv("features.10", x, 384, 3, padding=1))
    x = b.relu("features.13", b.conv("features.12", x, 256, 3, padding=1))
    x = b.max_pool("features.14", x, 3, 2)
    x = b.flatten("flatten", x)
    return _classifier(b, x, num_classes).graph("classifier.6", algo=algo, weights=weights)


def alexnet_torchvision(
    *, num_classes: int = 1000, seed: int = 0, algo: str = "auto", weights: Weights = None
) -> Graph:
    """torchvision's AlexNet (input (N, 3, 224, 224), no LRN): its state_dict loads as it is.
    seed: the random weights' seed; algo: the conv algorithm of every layer ('auto'); weights: a
    state_dict (dict, .npz or PyTorch .pt/.pth path) loaded over the random weights."""
    b = Builder("alexnet_torchvision", {"x": (None, 3, 224, 224)}, seed)
    x = b.relu("features.1", b.conv("features.0", "x", 64, 11, stride=4, padding=2))
    x = b.max_pool("features.2", x, 3, 2)
    x = b.relu("features.4", b.conv("features.3", x, 192, 5, padding=2))
    x = b.max_pool("features.5", x, 3, 2)
    x = b.relu("features.7", b.conv("features.6", x, 384, 3, padding=1))
    x = b.relu("features.9", b.conv("features.8", x, 256, 3, padding=1))
    x = b.relu("features.11", b.conv("features.10", x, 256, 3, padding=1))
    x = b.max_pool("features.12", x, 3, 2)
    x = b.add("avgpool", "adaptive_avg_pool2d", x, dict(output_size=6))
    x = b.flatten("flatten", x)
    return _classifier(b, x, num_classes).graph("classifier.6", algo=algo, weights=weights)


def _classifier(b, x, num_classes):
    x = b.dropout("classifier.0", x)
    x = b.relu("classifier.2", b.linear("classifier.1", x, 4096))
    x = b.dropout("classifier.3", x)
    x = b.relu("classifier.5", b.linear("classifier.4", x, 4096))
    b.linear("classifier.6", x, num_classes)
    return b
