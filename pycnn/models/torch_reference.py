"""The zoo's networks written in PyTorch, module for module, so that their state_dict keys are
the ones pycnn's Graphs use (torchvision's for AlexNet, GoogLeNet and ResNet: torchvision itself
is not installable beside the pinned torch, so its definitions are restated here).

TORCH_NETS maps zoo names to builders; torch_net(name, state_dict) gives the eval-mode twin
with a Graph's weights. Used by the tests (the outside referee), the bench (PyTorch and, exported
to ONNX, onnxruntime as peers) and examples/lenet_digits.py (training). Imports torch: not
imported by pycnn.models itself.
"""

from __future__ import annotations

import torch
from torch import nn


def lenet5(num_classes=10):
    class LeNet5(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1, self.conv2, self.conv3 = nn.Conv2d(1, 6, 5), nn.Conv2d(6, 16, 5), nn.Conv2d(16, 120, 5)
            self.fc1, self.fc2 = nn.Linear(120, 84), nn.Linear(84, num_classes)

        def forward(self, x):
            x = nn.functional.max_pool2d(torch.relu(self.conv1(x)), 2, 2)
            x = nn.functional.max_pool2d(torch.relu(self.conv2(x)), 2, 2)
            x = torch.flatten(torch.relu(self.conv3(x)), 1)
            return self.fc2(torch.relu(self.fc1(x)))

    return LeNet5()


class _LRNFunction(torch.autograd.Function):
    """F.local_response_norm, exported as one ONNX LRN node (torch's exporter would decompose it
    into Pad/Pow/AveragePool/Div)."""

    @staticmethod
    def forward(ctx, x, size, alpha, beta, k):
        return nn.functional.local_response_norm(x, size, alpha, beta, k)

    @staticmethod
    def symbolic(g, x, size, alpha, beta, k):
        return g.op("LRN", x, size_i=size, alpha_f=alpha, beta_f=beta, bias_f=k)


class LRN(nn.LocalResponseNorm):
    def forward(self, x):
        return _LRNFunction.apply(x, self.size, self.alpha, self.beta, self.k)


def _classifier(fin, num_classes):
    return nn.Sequential(
        nn.Dropout(),
        nn.Linear(fin, 4096),
        nn.ReLU(inplace=True),
        nn.Dropout(),
        nn.Linear(4096, 4096),
        nn.ReLU(inplace=True),
        nn.Linear(4096, num_classes),
    )


class _AlexNet(nn.Module):
    def __init__(self, features, avgpool, num_classes):
        super().__init__()
        self.features, self.avgpool = features, avgpool
        self.classifier = _classifier(256 * 6 * 6, num_classes)

    def forward(self, x):
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


def alexnet(num_classes=1000):
    f = nn.Sequential(
        nn.Conv2d(3, 96, 11, 4),
        nn.ReLU(True),
        nn.MaxPool2d(3, 2),
        LRN(5, 1e-4, 0.75, 2.0),
        nn.Conv2d(96, 256, 5, padding=2),
        nn.ReLU(True),
        nn.MaxPool2d(3, 2),
        LRN(5, 1e-4, 0.75, 2.0),
        nn.Conv2d(256, 384, 3, padding=1),
        nn.ReLU(True),
        nn.Conv2d(384, 384, 3, padding=1),
        nn.ReLU(True),
        nn.Conv2d(384, 256, 3, padding=1),
        nn.ReLU(True),
        nn.MaxPool2d(3, 2),
    )
    return _AlexNet(f, nn.Identity(), num_classes)


def alexnet_torchvision(num_classes=1000):
    f = nn.Sequential(
        nn.Conv2d(3, 64, 11, 4, 2),
        nn.ReLU(True),
        nn.MaxPool2d(3, 2),
        nn.Conv2d(64, 192, 5, padding=2),
        nn.ReLU(True),
        nn.MaxPool2d(3, 2),
        nn.Conv2d(192, 384, 3, padding=1),
        nn.ReLU(True),
        nn.Conv2d(384, 256, 3, padding=1),
        nn.ReLU(True),
        nn.Conv2d(256, 256, 3, padding=1),
        nn.ReLU(True),
        nn.MaxPool2d(3, 2),
    )
    return _AlexNet(f, nn.AdaptiveAvgPool2d((6, 6)), num_classes)


class BasicConv2d(nn.Module):
    def __init__(self, cin, cout, **kw):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, bias=False, **kw)
        self.bn = nn.BatchNorm2d(cout, eps=0.001)

    def forward(self, x):
        return torch.relu(self.bn(self.conv(x)))


class Inception(nn.Module):
    def __init__(self, cin, c1, c3r, c3, c5r, c5, pp):
        super().__init__()
        self.branch1 = BasicConv2d(cin, c1, kernel_size=1)
        self.branch2 = nn.Sequential(
            BasicConv2d(cin, c3r, kernel_size=1), BasicConv2d(c3r, c3, kernel_size=3, padding=1)
        )
        self.branch3 = nn.Sequential(
            BasicConv2d(cin, c5r, kernel_size=1), BasicConv2d(c5r, c5, kernel_size=3, padding=1)
        )
        self.branch4 = nn.Sequential(nn.MaxPool2d(3, 1, 1, ceil_mode=True), BasicConv2d(cin, pp, kernel_size=1))

    def forward(self, x):
        return torch.cat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], 1)


class GoogLeNet(nn.Module):
    def __init__(self, num_classes=1000):
        super().__init__()
        self.conv1 = BasicConv2d(3, 64, kernel_size=7, stride=2, padding=3)
        self.maxpool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2 = BasicConv2d(64, 64, kernel_size=1)
        self.conv3 = BasicConv2d(64, 192, kernel_size=3, padding=1)
        self.maxpool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.inception3a = Inception(192, 64, 96, 128, 16, 32, 32)
        self.inception3b = Inception(256, 128, 128, 192, 32, 96, 64)
        self.maxpool3 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.inception4a = Inception(480, 192, 96, 208, 16, 48, 64)
        self.inception4b = Inception(512, 160, 112, 224, 24, 64, 64)
        self.inception4c = Inception(512, 128, 128, 256, 24, 64, 64)
        self.inception4d = Inception(512, 112, 144, 288, 32, 64, 64)
        self.inception4e = Inception(528, 256, 160, 320, 32, 128, 128)
        self.maxpool4 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.inception5a = Inception(832, 256, 160, 320, 32, 128, 128)
        self.inception5b = Inception(832, 384, 192, 384, 48, 128, 128)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.dropout = nn.Dropout(0.2)
        self.fc = nn.Linear(1024, num_classes)

    def forward(self, x):
        x = self.maxpool2(self.conv3(self.conv2(self.maxpool1(self.conv1(x)))))
        x = self.maxpool3(self.inception3b(self.inception3a(x)))
        for m in (self.inception4a, self.inception4b, self.inception4c, self.inception4d, self.inception4e):
            x = m(x)
        x = self.inception5b(self.inception5a(self.maxpool4(x)))
        return self.fc(self.dropout(torch.flatten(self.avgpool(x), 1)))


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, cin, width, stride, downsample):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, width, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.downsample = downsample

    def forward(self, x):
        y = self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))
        return torch.relu(y + (self.downsample(x) if self.downsample is not None else x))


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, cin, width, stride, downsample):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, width * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(width * 4)
        self.downsample = downsample

    def forward(self, x):
        y = torch.relu(self.bn1(self.conv1(x)))
        y = torch.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        return torch.relu(y + (self.downsample(x) if self.downsample is not None else x))


class ResNet(nn.Module):
    def __init__(self, block, layers, num_classes=1000):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        cin = 64
        for i, n in enumerate(layers):
            blocks = []
            width = 64 * 2**i
            for j in range(n):
                stride = 2 if (j == 0 and i > 0) else 1
                down = None
                if stride != 1 or cin != width * block.expansion:
                    down = nn.Sequential(
                        nn.Conv2d(cin, width * block.expansion, 1, stride, bias=False),
                        nn.BatchNorm2d(width * block.expansion),
                    )
                blocks.append(block(cin, width, stride, down))
                cin = width * block.expansion
            setattr(self, f"layer{i + 1}", nn.Sequential(*blocks))
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


RESNETS = {
    18: (BasicBlock, (2, 2, 2, 2)),
    34: (BasicBlock, (3, 4, 6, 3)),
    50: (Bottleneck, (3, 4, 6, 3)),
    101: (Bottleneck, (3, 4, 23, 3)),
    152: (Bottleneck, (3, 8, 36, 3)),
}


class KimCNN(nn.Module):
    def __init__(self, vocab_size=20000, embed_dim=300, num_classes=2, widths=(3, 4, 5), maps=100):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embed_dim)
        self.convs = nn.ModuleList([nn.Conv2d(1, maps, (w, embed_dim)) for w in widths])
        self.dropout = nn.Dropout(0.5)
        self.fc = nn.Linear(maps * len(widths), num_classes)

    def forward(self, tokens):
        e = self.embedding(tokens).unsqueeze(1)
        pooled = [torch.amax(torch.relu(c(e)), dim=(2, 3)) for c in self.convs]
        return self.fc(self.dropout(torch.cat(pooled, 1)))


class AlphaGoPolicy(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(48, 192, 5, padding=2)
        for i in range(2, 13):
            setattr(self, f"conv{i}", nn.Conv2d(192, 192, 3, padding=1))
        self.conv13 = nn.Conv2d(192, 1, 1, bias=False)
        self.position_bias = nn.Parameter(torch.zeros(361))

    def forward(self, x):
        for i in range(1, 13):
            x = torch.relu(getattr(self, f"conv{i}")(x))
        return torch.softmax(torch.flatten(self.conv13(x), 1) + self.position_bias, dim=1)


class ConvNetJS(nn.Module):
    def __init__(self, num_classes=10):
        super().__init__()
        self.conv1, self.conv2, self.conv3 = (
            nn.Conv2d(3, 16, 5, padding=2),
            nn.Conv2d(16, 20, 5, padding=2),
            nn.Conv2d(20, 20, 5, padding=2),
        )
        self.fc = nn.Linear(320, num_classes)

    def forward(self, x):
        for c in (self.conv1, self.conv2, self.conv3):
            x = nn.functional.max_pool2d(torch.relu(c(x)), 2, 2)
        return torch.softmax(self.fc(torch.flatten(x, 1)), dim=1)


TORCH_NETS = {
    "lenet5": lenet5,
    "alexnet": alexnet,
    "alexnet_torchvision": alexnet_torchvision,
    "googlenet": GoogLeNet,
    **{f"resnet{d}": (lambda d=d: ResNet(*RESNETS[d])) for d in RESNETS},
    "kimcnn": KimCNN,
    "alphago": AlphaGoPolicy,
    "convnetjs": ConvNetJS,
}


def torch_net(name, state_dict):
    """The PyTorch twin of zoo model name, in eval mode, with state_dict (NumPy arrays) loaded strictly."""
    m = TORCH_NETS[name]()
    m.load_state_dict({k: torch.from_numpy(v) for k, v in state_dict.items()}, strict=True)
    return m.eval()
