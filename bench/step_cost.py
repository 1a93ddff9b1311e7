"""The fixed cost of one plan step: bound calls on tensors so small that the arithmetic is
nothing, best of 5 repeats of many calls, microseconds per call (docs/performance.md, Whole
networks). `python -m bench.step_cost [--threads T]`. What a network of small steps (MobileNet V3
Small at batch 1: ~75 steps in ~1.3 ms) pays per step besides its arithmetic: the Python loop's
share is on top (Graph.profile's total against the sum of its steps)."""

import argparse
import timeit

import numpy as np

import pycnn
from pycnn import layout


def per_call_us(f, number=20000):
    return min(timeit.repeat(f, number=number, repeat=5)) / number * 1e6


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--number", type=int, default=20000, help="calls per repeat")
    args = ap.parse_args(argv)
    pycnn.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 16, 1, 1), dtype=np.float32)
    conv = pycnn.prepare_conv(rng.standard_normal((8, 16, 1, 1), dtype=np.float32), algo="direct_oc")
    nchw = conv.bind([x.shape], None)
    w16 = rng.standard_normal((16, 16, 1, 1), dtype=np.float32)
    blocked = pycnn.prepare_conv(w16, algo="direct_oc").bind(
        [x.shape], None, layout=(layout.X_BLOCKED | layout.Y_BLOCKED, "direct_oc")
    )
    xb = x.reshape(1, 1, 1, 1, 16)
    y = nchw(x)
    rows = [
        ("np.empty((1, 8, 1, 1))", lambda: np.empty((1, 8, 1, 1), np.float32)),
        ("bound 1x1 conv 16->8 on 1x1, NCHW", lambda: nchw(x)),
        ("the same into a given out", lambda: nchw(x, None, y)),
        ("bound 1x1 conv 16->16 on 1x1, blocked", lambda: blocked(xb)),
    ]
    print(f"ISA {pycnn._C.get_isa()}, {args.threads} threads; best of 5, microseconds per call")
    for name, f in rows:
        print(f"{name:<42} {per_call_us(f, args.number):6.2f}")


if __name__ == "__main__":
    main()
