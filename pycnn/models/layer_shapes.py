"""Convolution and pooling layers of the lecture's networks, batch excluded.

One table, read by the tests (every layer against the reference) and by the bench (every
algorithm on every layer). Sources: the lecture notes in shared/seeds (LeNet-5, AlexNet, AlphaGo
policy net), torchvision's GoogLeNet and ResNet, Kim (2014) for the sentence CNN, and the
ConvNetJS CIFAR-10 demo. GoogLeNet lists its stem and three representative Inception blocks
(3a, 4a, 5b); ResNet lists every distinct shape of ResNet-18/34 and the ResNet-50 bottlenecks.
"""

from __future__ import annotations

from dataclasses import dataclass

from .._shapes import ConvShape, conv_output_size


@dataclass(frozen=True)
class ConvLayer:
    net: str
    name: str
    C: int
    H: int
    W: int
    K: int
    R: int
    S: int
    stride: int = 1
    pad: int | tuple = 0
    groups: int = 1

    @property
    def id(self) -> str:
        return f"{self.net}.{self.name}"

    def out_size(self) -> tuple[int, int]:
        """(Ho, Wo) of the layer's output."""
        ph, pw = (self.pad, self.pad) if isinstance(self.pad, int) else self.pad
        return (
            conv_output_size(self.H, self.R, self.stride, ph, ph, 1),
            conv_output_size(self.W, self.S, self.stride, pw, pw, 1),
        )

    def flops(self, N=1) -> float:
        Ho, Wo = self.out_size()
        return 2.0 * N * self.K * Ho * Wo * (self.C // self.groups) * self.R * self.S

    def shape(self, N: int) -> ConvShape:
        """The layer's convolution at batch N (dilation 1)."""
        return ConvShape((N, self.C, self.H, self.W), (self.K, self.C // self.groups, self.R, self.S), self.stride,
                         self.pad, 1, self.groups)  # fmt: skip


@dataclass(frozen=True)
class PoolLayer:
    net: str
    name: str
    C: int
    H: int
    W: int
    kernel: int
    stride: int
    pad: int = 0
    ceil_mode: bool = False
    kind: str = "max"

    @property
    def id(self) -> str:
        return f"{self.net}.{self.name}"


def _inception(block, C, HW, c1, c3r, c3, c5r, c5, pp):
    n = "googlenet"
    return [
        ConvLayer(n, f"{block}.1x1", C, HW, HW, c1, 1, 1),
        ConvLayer(n, f"{block}.3x3red", C, HW, HW, c3r, 1, 1),
        ConvLayer(n, f"{block}.3x3", c3r, HW, HW, c3, 3, 3, 1, 1),
        ConvLayer(n, f"{block}.5x5red", C, HW, HW, c5r, 1, 1),
        ConvLayer(n, f"{block}.5x5", c5r, HW, HW, c5, 3, 3, 1, 1),  # torchvision uses 3x3 here
        ConvLayer(n, f"{block}.poolproj", C, HW, HW, pp, 1, 1),
    ]


CONV_LAYERS: list[ConvLayer] = [
    # LeNet-5 (32x32 input, 5x5 stride 1)
    ConvLayer("lenet5", "conv1", 1, 32, 32, 6, 5, 5),
    ConvLayer("lenet5", "conv2", 6, 14, 14, 16, 5, 5),
    ConvLayer("lenet5", "conv3", 16, 5, 5, 120, 5, 5),
    # AlexNet as in the lecture (227x227x3, no grouping)
    ConvLayer("alexnet", "conv1", 3, 227, 227, 96, 11, 11, 4, 0),
    ConvLayer("alexnet", "conv2", 96, 27, 27, 256, 5, 5, 1, 2),
    ConvLayer("alexnet", "conv3", 256, 13, 13, 384, 3, 3, 1, 1),
    ConvLayer("alexnet", "conv4", 384, 13, 13, 384, 3, 3, 1, 1),
    ConvLayer("alexnet", "conv5", 384, 13, 13, 256, 3, 3, 1, 1),
    # GoogLeNet
    ConvLayer("googlenet", "conv1", 3, 224, 224, 64, 7, 7, 2, 3),
    ConvLayer("googlenet", "conv2", 64, 56, 56, 64, 1, 1),
    ConvLayer("googlenet", "conv3", 64, 56, 56, 192, 3, 3, 1, 1),
    *_inception("3a", 192, 28, 64, 96, 128, 16, 32, 32),
    *_inception("4a", 480, 14, 192, 96, 208, 16, 48, 64),
    *_inception("5b", 832, 7, 384, 192, 384, 48, 128, 128),
    # ResNet-18/34 (basic blocks) and ResNet-50 bottlenecks
    ConvLayer("resnet", "conv1", 3, 224, 224, 64, 7, 7, 2, 3),
    ConvLayer("resnet", "3x3_64_56", 64, 56, 56, 64, 3, 3, 1, 1),
    ConvLayer("resnet", "3x3_128_28_s2", 64, 56, 56, 128, 3, 3, 2, 1),
    ConvLayer("resnet", "3x3_128_28", 128, 28, 28, 128, 3, 3, 1, 1),
    ConvLayer("resnet", "3x3_256_14", 256, 14, 14, 256, 3, 3, 1, 1),
    ConvLayer("resnet", "3x3_512_7", 512, 7, 7, 512, 3, 3, 1, 1),
    ConvLayer("resnet", "down_128_s2", 64, 56, 56, 128, 1, 1, 2, 0),
    ConvLayer("resnet", "b50_1x1_256_64_56", 256, 56, 56, 64, 1, 1),
    ConvLayer("resnet", "b50_1x1_64_256_56", 64, 56, 56, 256, 1, 1),
    ConvLayer("resnet", "b50_1x1_512_128_28", 512, 28, 28, 128, 1, 1),
    ConvLayer("resnet", "b50_1x1_1024_256_14", 1024, 14, 14, 256, 1, 1),
    ConvLayer("resnet", "b50_1x1_2048_512_7", 2048, 7, 7, 512, 1, 1),
    ConvLayer("resnet", "b50_1x1_512_2048_7", 512, 7, 7, 2048, 1, 1),
    # AlphaGo policy network (19x19x48 -> 5x5x192 -> 11 x 3x3x192 -> 1x1)
    ConvLayer("alphago", "conv1", 48, 19, 19, 192, 5, 5, 1, 2),
    ConvLayer("alphago", "conv2-12", 192, 19, 19, 192, 3, 3, 1, 1),
    ConvLayer("alphago", "conv13", 192, 19, 19, 1, 1, 1),
    # Kim's sentence CNN: 50 tokens x 300-d embeddings, widths 3/4/5, 100 maps each
    ConvLayer("kimcnn", "w3", 1, 50, 300, 100, 3, 300),
    ConvLayer("kimcnn", "w4", 1, 50, 300, 100, 4, 300),
    ConvLayer("kimcnn", "w5", 1, 50, 300, 100, 5, 300),
    # ConvNetJS CIFAR-10
    ConvLayer("convnetjs", "conv1", 3, 32, 32, 16, 5, 5, 1, 2),
    ConvLayer("convnetjs", "conv2", 16, 16, 16, 20, 5, 5, 1, 2),
    ConvLayer("convnetjs", "conv3", 20, 8, 8, 20, 5, 5, 1, 2),
]

POOL_LAYERS: list[PoolLayer] = [
    PoolLayer("lenet5", "pool1", 6, 28, 28, 2, 2),
    PoolLayer("alexnet", "pool1", 96, 55, 55, 3, 2),
    PoolLayer("alexnet", "pool2", 256, 27, 27, 3, 2),
    PoolLayer("alexnet", "pool5", 256, 13, 13, 3, 2),
    PoolLayer("googlenet", "pool1", 64, 112, 112, 3, 2, 0, True),
    PoolLayer("googlenet", "pool2", 192, 56, 56, 3, 2, 0, True),
    PoolLayer("googlenet", "pool3", 480, 28, 28, 3, 2, 0, True),
    PoolLayer("googlenet", "3a.pool", 192, 28, 28, 3, 1, 1, True),
    PoolLayer("googlenet", "pool4", 832, 14, 14, 2, 2, 0, True),
    PoolLayer("resnet", "pool1", 64, 112, 112, 3, 2, 1),
    PoolLayer("convnetjs", "pool1", 16, 32, 32, 2, 2),
    PoolLayer("googlenet", "avgpool", 1024, 7, 7, 7, 1, 0, False, "avg"),
]
