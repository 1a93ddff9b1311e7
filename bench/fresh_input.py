"""A bound blocked 1x1 conv (direct_oc, x and y channel-blocked, as a Graph runs it) whose input
was just written, against the same call on an input last written long ago: what a step pays for
reading its producer's fresh output (docs/performance.md, direct_oc). Medians of --reps calls,
each after the writer named (none; x's lines read by the calling thread; the rows of the first
or second half of every channel block, or all of x, rewritten by the calling thread; a conv of
the same split, 16 -> C channels, writing x on the threads).

    python -m bench.fresh_input 1,512,14,128

Each shape is N,C,H,K (C a multiple of 16)."""

import argparse

import numpy as np

import pycnn

from .depthwise_check import _blocked
from .timing import median_after


def measure(N, C, H, K, reps=200, rounds=3):
    """{writer: the conv's median us after it}, the best round of each."""
    rng = np.random.default_rng(0)
    shape = (N, C, H, H)
    w = rng.standard_normal((K, C, 1, 1), dtype=np.float32) * 0.05
    conv = pycnn.prepare_conv(w, None, algo="direct_oc").bind([shape], None, layout=(3, "direct_oc"))
    w16 = rng.standard_normal((C, 16, 1, 1), dtype=np.float32) * 0.1
    writer = pycnn.prepare_conv(w16, None, algo="direct_oc").bind([(N, 16, H, H)], None, layout=(3, "direct_oc"))
    x16 = _blocked(rng.standard_normal((N, 16, H, H), dtype=np.float32))
    x = writer(x16)  # the conv's input, (N, C/16, H, H, 16)
    other = x.copy()
    half = H // 2
    ways = {
        "none": lambda: None,
        "x read": lambda: x.sum(),
        "rows [0, H/2) rewritten": lambda: np.copyto(x[:, :, :half], other[:, :, :half]),
        "rows [H/2, H) rewritten": lambda: np.copyto(x[:, :, half:], other[:, :, half:]),
        "all of x rewritten": lambda: np.copyto(x, other),
        "x written by a conv": lambda: writer(x16, out=x),
    }
    best = {}
    for _ in range(rounds):
        for name, before in ways.items():
            t = median_after(lambda: conv(x), before, reps) * 1e6
            best[name] = min(best.get(name, t), t)
    return best


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("shapes", nargs="+", help="N,C,H,K")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=200)
    args = ap.parse_args(argv)
    pycnn.set_num_threads(args.threads)
    for spec in args.shapes:
        N, C, H, K = (int(v) for v in spec.split(","))
        if C % 16:
            ap.error(f"shape {spec}: C must be a multiple of 16")
        r = measure(N, C, H, K, args.reps)
        parts = ", ".join(f"{k} {v:.1f}" for k, v in r.items())
        print(f"N{N} {C}->{K} 1x1 @{H} (direct_oc, blocked xy, {args.threads} threads, us after): {parts}")


if __name__ == "__main__":
    main()
