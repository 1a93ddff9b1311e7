"""What each element-wise function costs in a conv's epilogue: a 1x1 conv (16 -> 96 channels at
112x112, EfficientNet's first expand) alone and with each function fused after it, Graphs timed
in blocks taking turns, medians (docs/performance.md, Element-wise activations).
`python -m bench.epilogue_cost`."""

import argparse
import statistics
import time

import numpy as np

import pycnn
from pycnn import Graph, Node

FNS = (None, "clip", "hardswish", "sigmoid", "silu", "gelu")


def graph(fn, C, K, H, rng):
    w = rng.standard_normal((K, C, 1, 1)).astype(np.float32) / np.sqrt(C)
    nodes = [Node("c", "conv2d", ["x"], params={"weight": w, "bias": np.zeros(K, np.float32)})]
    if fn:
        attrs = {"fn": fn, "lo": 0.0, "hi": 6.0} if fn == "clip" else {"fn": fn}
        nodes.append(Node("a", "unary", ["c"], attrs=attrs))
    return Graph({"x": (None, C, H, H)}, nodes, [nodes[-1].output])


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--channels", type=int, nargs=2, default=(16, 96), metavar=("C", "K"))
    ap.add_argument("--size", type=int, default=112)
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args(argv)
    pycnn.set_num_threads(2)
    rng = np.random.default_rng(0)
    C, K = args.channels
    x = rng.standard_normal((1, C, args.size, args.size)).astype(np.float32)
    gs = {fn: graph(fn, C, K, args.size, rng) for fn in FNS}
    for fn, g in gs.items():
        assert len(g.plan_steps) == 1, fn  # the function runs in the conv's step
        g(x)
    ts = {fn: [] for fn in FNS}
    for _ in range(args.rounds):
        for fn, g in gs.items():
            for _ in range(3):
                g(x)
            for _ in range(10):
                t = time.perf_counter()
                g(x)
                ts[fn].append(time.perf_counter() - t)
    base = statistics.median(ts[None]) * 1e3
    print(f"{C}->{K} 1x1 at {args.size}x{args.size}, ISA {pycnn._C.get_isa()}, 2 threads: conv alone {base:.3f} ms")
    for fn in FNS[1:]:
        m = statistics.median(ts[fn]) * 1e3
        print(f"  + {fn:<10} {m:.3f} ms (+{m - base:.3f})")


if __name__ == "__main__":
    main()
