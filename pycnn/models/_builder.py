"""Builder: write a network as a sequence of calls, one per PyTorch module, with seeded weights.

Shapes are inferred as nodes are added (batch 1), so each call only names what the layer adds
(output channels, kernel). Weights are He-normal for convs and linears (std sqrt(2/fan_in)),
small uniform biases, and batch-norm statistics near identity, so that random networks keep
their activations in a sane range and every test compares meaningful numbers.
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

from ..graph import Graph, Node
from ..layers import OPS

# A state_dict: {key: array}, or a path to an .npz or PyTorch .pt/.pth file (Graph.load_state_dict).
Weights = Optional[Any]


class Builder:
    def __init__(self, name, inputs, seed=0, input_dtypes=None):
        self.name = name
        self.inputs = dict(inputs)
        self.input_dtypes = input_dtypes or {}
        self.rng = np.random.default_rng(seed)
        self.nodes = []
        self.shapes = {k: (1,) + tuple(v[1:]) for k, v in inputs.items()}

    def add(self, name, op, inputs, attrs=None, params=None, keys=None):
        inputs = [inputs] if isinstance(inputs, str) else list(inputs)
        n = Node(name, op, inputs, attrs=attrs or {}, params=params or {}, keys=keys or {})
        self.shapes[n.output] = OPS[op].infer(n.attrs, n.params, [self.shapes[t] for t in inputs])
        self.nodes.append(n)
        return n.output

    def channels(self, x):
        return self.shapes[x][1]

    # -- layers with parameters
    def conv(self, name, x, cout, k, stride=1, padding=0, groups=1, bias=True):
        kh, kw = (k, k) if isinstance(k, int) else k
        cin = self.channels(x) // groups
        w = self.rng.standard_normal((cout, cin, kh, kw)) * np.sqrt(2.0 / (cin * kh * kw))
        params = {"weight": w}
        if bias:
            params["bias"] = self.rng.uniform(-0.1, 0.1, cout)
        return self.add(name, "conv2d", x, dict(stride=stride, padding=padding, groups=groups), params)

    def bn(self, name, x, eps=1e-5, gamma=1.0):
        c = self.channels(x)
        r = self.rng
        params = {
            "weight": gamma * r.uniform(0.8, 1.2, c),
            "bias": r.uniform(-0.1, 0.1, c),
            "running_mean": r.uniform(-0.1, 0.1, c),
            "running_var": r.uniform(0.8, 1.2, c),
        }
        return self.add(name, "batch_norm", x, dict(eps=eps), params)

    def linear(self, name, x, fout, bias=True):
        fin = self.shapes[x][1]
        params = {"weight": self.rng.standard_normal((fout, fin)) * np.sqrt(2.0 / fin)}
        if bias:
            params["bias"] = self.rng.uniform(-0.1, 0.1, fout)
        return self.add(name, "linear", x, {}, params)

    # -- parameter-free layers
    def relu(self, name, x):
        return self.add(name, "relu", x)

    def max_pool(self, name, x, k, stride=None, padding=0, ceil_mode=False):
        return self.add(name, "max_pool2d", x, dict(kernel=k, stride=stride, padding=padding, ceil_mode=ceil_mode))

    def lrn(self, name, x, size=5, alpha=1e-4, beta=0.75, k=2.0):
        return self.add(name, "local_response_norm", x, dict(size=size, alpha=alpha, beta=beta, k=k))

    def dropout(self, name, x):
        return self.add(name, "identity", x)

    def flatten(self, name, x):
        return self.add(name, "flatten", x, dict(axis=1))

    def graph(self, outputs, algo="auto", weights=None, **kw):
        """The Graph; weights (a state_dict, .npz or .pt/.pth path), when given, replace the random ones."""
        outputs = [outputs] if isinstance(outputs, str) else outputs
        g = Graph(self.inputs, self.nodes, outputs, name=self.name, input_dtypes=self.input_dtypes, algo=algo, **kw)
        if weights is not None:
            g.load_state_dict(weights)
        return g
