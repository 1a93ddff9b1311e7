"""Measured Winograd error per tile: `python -m bench.winograd_error`.

For each 3x3 and each 5x5 stride-1 lecture layer (batch 1), the one-dimensional layers of
Inception v3 (1x7 and 7x1 at 128, 160, 192 channels on 17x17; 1x3 and 3x1 at 384 on 8x8) and Kim's
filter bank as rows as channels (3, 4 and 5 rows over 300 channels, 50 long, 100 filters), and
each tile, the max relative error max |y - y64| / max |y64| of pycnn's float32 result against
the float64 reference, on
  * random: x, w ~ N(0, 1);
  * real-scale: He-initialized weights N(0, 2/fan_in) on ReLU activations |N(0, 1)|, the scale of
    a trained network's hidden layers.
Also shows im2col's error for scale. The README's accuracy table and the registry's bounds
(rel_error_bound, rel_error_bound_5x5) come from this.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

import pycnn
from pycnn import reference, registry
from pycnn.models import CONV_LAYERS

# im2col for scale, and every tile the registry has (their bounds: registry rel_error_bound)
ALGOS = ["im2col"] + [a for a in registry.names(kind=registry.NATIVE) if registry.CONV[a].rel_error_bound]


# The one-dimensional layers, as lecture-layer-like records: Inception v3's (Mixed_6b-e and 7a;
# Mixed_7b-c) and Kim's bank as rows as channels (pycnn/prepared.py ConvBankMax).
_ONE_D = (
    [
        SimpleNamespace(C=c, K=c, H=17, W=17, R=R, S=S, pad=(R // 2, S // 2), stride=1, groups=1)
        for c in (128, 160, 192)
        for R, S in ((1, 7), (7, 1))
    ]
    + [
        SimpleNamespace(C=384, K=384, H=8, W=8, R=R, S=S, pad=(R // 2, S // 2), stride=1, groups=1)
        for R, S in ((1, 3), (3, 1))
    ]
    + [SimpleNamespace(C=300, K=100, H=50, W=1, R=R, S=1, pad=(0, 0), stride=1, groups=1) for R in (3, 4, 5)]
)


def measure(r, s=None):
    """The r x s (default square) stride-1 layers and the worst error per (data, algorithm) over them."""
    rng = np.random.default_rng(0)
    s = r if s is None else s
    if r == s:
        layers = [l for l in CONV_LAYERS if l.R == r and l.S == r and l.stride == 1 and l.groups == 1]
    else:
        layers = [l for l in _ONE_D if (l.R, l.S) == (r, s)]
    algos = [a for a in ALGOS if all(registry.CONV[a].supports(_shape(l)) for l in layers)]
    worst = {(kind, a): 0.0 for kind in ("random", "real-scale") for a in algos}
    for l in layers:
        for kind in ("random", "real-scale"):
            if kind == "random":
                x = rng.standard_normal((1, l.C, l.H, l.W))
                w = rng.standard_normal((l.K, l.C, r, s))
            else:
                x = np.abs(rng.standard_normal((1, l.C, l.H, l.W)))
                w = rng.standard_normal((l.K, l.C, r, s)) * np.sqrt(2.0 / (l.C * r * s))
            ref = reference.conv2d(x, w, None, 1, l.pad)
            x32, w32 = x.astype(np.float32), w.astype(np.float32)
            for a in algos:
                y = pycnn.conv2d(x32, w32, None, 1, l.pad, algo=a)
                err = float(np.abs(y - ref).max() / np.abs(ref).max())
                worst[(kind, a)] = max(worst[(kind, a)], err)
    return layers, algos, worst


def _shape(l):
    return pycnn.ops.ConvShape((1, l.C, l.H, l.W), (l.K, l.C, l.R, l.S), l.stride, l.pad, 1, 1)


def main():
    for r, s in ((3, 3), (5, 5), (1, 7), (7, 1), (1, 3), (3, 1), (4, 1), (5, 1)):
        layers, algos, worst = measure(r, s)
        print(f"max relative error over {len(layers)} {r}x{s} stride-1 layers (batch 1), ISA {pycnn._C.get_isa()}")
        print("| data | " + " | ".join(algos) + " |")
        print("|---|" + "---:|" * len(algos))
        for kind in ("random", "real-scale"):
            print(f"| {kind} | " + " | ".join(f"{worst[(kind, a)]:.1e}" for a in algos) + " |")


if __name__ == "__main__":
    main()
