"""The fixed cost of one plan step: bound calls on tensors so small that the arithmetic is
nothing, best of 5 repeats of many calls, microseconds per call (docs/performance.md, Whole
networks). `python -m bench.step_cost [--threads T]`. What a network of small steps (MobileNet V3
Small at batch 1: ~75 steps in ~1.3 ms) pays per step besides its arithmetic. The "in a plan
runner" rows are what Graph.run pays: a chain of 100 such steps run by one _C.PlanRunner call
(kernels/bindings/bind_plan_runner.cpp), per step."""

import argparse
import timeit

import numpy as np

import pycnn
from pycnn import _C, layout

CHAIN = 100  # steps of the plan-runner rows


def chain(call, x):
    """CHAIN copies of a same-shape bound call, each reading the one before, as one PlanRunner;
    returns a callable running it."""
    r = _C.PlanRunner([(call, [i], i + 1, [i] if i else []) for i in range(CHAIN)], CHAIN + 1, [0], [CHAIN])
    return lambda: r([x])


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
    square = pycnn.prepare_conv(w16, algo="direct_oc").bind([x.shape], None)  # 16 -> 16: chains
    rows = [
        ("np.empty((1, 8, 1, 1))", lambda: np.empty((1, 8, 1, 1), np.float32)),
        ("bound 1x1 conv 16->8 on 1x1, NCHW", lambda: nchw(x)),
        ("the same into a given out", lambda: nchw(x, None, y)),
        ("bound 1x1 conv 16->16 on 1x1, blocked", lambda: blocked(xb)),
    ]
    per_step = [
        ("16->16 NCHW in a plan runner, per step", chain(square, x)),
        ("16->16 blocked in a plan runner, per step", chain(blocked, xb)),
    ]
    print(f"ISA {pycnn._C.get_isa()}, {args.threads} threads; best of 5, microseconds per call")
    for name, f in rows:
        print(f"{name:<42} {per_call_us(f, args.number):6.2f}")
    for name, f in per_step:
        print(f"{name:<42} {per_call_us(f, max(1, args.number // CHAIN)) / CHAIN:6.2f}")


if __name__ == "__main__":
    main()
