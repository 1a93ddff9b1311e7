"""Binding pass: a conv whose output only a global average pool reads runs as one direct_oc call
that returns the pool's result, (N, K, 1, 1): each output map's mean of act(conv + bias +
residual), summed as the kernel finishes each band of outputs; the maps are never written. The
classifier heads of SqueezeNet (conv 512 -> 1000 + ReLU -> pool), MobileNet V2 / V3,
EfficientNet, MNASNet, ShuffleNet and RegNet, and ResNet's last block (its residual and ReLU in
the conv's epilogue).

Why: the pool read the conv's maps back after they had left the reading core's caches, and the
conv spent its stores writing them (docs/performance.md, torchvision's networks: SqueezeNet's
pool of 1000 x 13 x 13 maps, 43 us in the network, ~16 us on warm maps).

Which: a global average pool (global_avg_pool2d, adaptive_avg_pool2d to 1 x 1, or ReduceMean over
H and W) that is the next step of the plan after a conv step (PreparedConv, groups 1, no max
over its maps) whose output it alone reads and which is no graph output, where the conv runs
direct_oc (its layout's algorithm, or what it resolves to for its input shape) and neither step's
call was changed by an earlier pass (a chunked chain keeps its conv). The conv's x and residual
keep the layouts the layout pass chose. ENABLED = False turns it off (A/B, tests).
"""

from __future__ import annotations

from .. import layout as _layout
from .fusion import Produced, prepared_conv, producers_and_readers

ENABLED = True


def is_global_mean(step, shapes) -> bool:
    """Whether step averages each (N, C) map of a 4-D input over all of H and W."""
    return len(shapes[step.inputs[0]]) == 4 and _layout.global_mean(step)


class _Reshaped:
    """The fused call's (N, K, 1, 1) as the pool's output shape ((N, K) for a ReduceMean without
    keepdims): a view."""

    def __init__(self, call, shape):
        self.call, self.shape = call, tuple(shape)

    def __call__(self, *xs):
        return self.call(*xs).reshape(self.shape)


def fuse(steps, shapes, calls, orig, ins, layouts, outputs) -> dict:
    """calls and ins changed in place for each fused pair; returns {pool step: conv step}."""
    if not ENABLED:
        return {}
    producer, readers = producers_and_readers(steps)
    fused = {}
    for m, pool in enumerate(steps):
        if not is_global_mean(pool, shapes) or calls[m] is not orig[m]:
            continue
        t = pool.inputs[0]
        j = producer.get(t)
        if j != m - 1 or t in outputs or readers.get(t) != [m] or calls[j] is not orig[j]:
            continue
        conv = steps[j]
        if not prepared_conv(conv) or conv.fn.groups != 1:
            continue
        x_shape = shapes[conv.inputs[0]]
        bits, algo = layouts.get(j, (0, None))
        if algo is None:
            algo = conv.fn.algo_for(x_shape)
        if algo != "direct_oc":
            continue
        bits = (bits & ~_layout.Y_BLOCKED) | _layout.MEAN_Y
        call = conv.fn.bind([shapes[k] for k in conv.inputs], None, layout=(bits, "direct_oc"))
        n, k = shapes[t][:2]
        out = tuple(shapes[pool.output])
        calls[m] = call if out == (n, k, 1, 1) else _Reshaped(call, out)
        calls[j] = Produced()
        ins[m] = list(conv.inputs)
        fused[m] = j
    return fused


__all__ = ["ENABLED", "fuse", "is_global_mean"]
