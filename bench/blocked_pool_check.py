"""The channel-blocked pools (pool2d_blocked.inl) on the shapes the networks give them: each bound
call timed alone on its blocked input (bench/timing.compare: blocks of calls taking turns,
medians), ms and GB/s
(bytes read + written). With --old DIR an older build's package (see bench/build_ab.py) runs
the same calls in the same process and the ratio old / new is printed (docs/performance.md,
Pooling). `python -m bench.blocked_pool_check [--old /tmp/oldpkg] [--threads T]`."""

import argparse
import importlib

import numpy as np

import pycnn

from . import old_build
from .timing import compare

# (kind, N, C, H, kernel, stride, pad): Inception v3's branch and stem pools, ResNet's and
# SqueezeNet's stride-2 max pools, DenseNet's transition average pool at batch 8.
SHAPES = [
    ("avg", 1, 288, 35, 3, 1, 1),
    ("avg", 1, 768, 17, 3, 1, 1),
    ("max", 1, 64, 147, 3, 2, 0),
    ("max", 1, 192, 71, 3, 2, 0),
    ("max", 1, 64, 112, 3, 2, 1),
    ("max", 8, 64, 112, 3, 2, 1),
    ("max", 8, 64, 111, 3, 2, 0),
    ("max", 8, 128, 55, 3, 2, 0),
    ("avg", 8, 256, 56, 2, 2, 0),
]


def bound_pool(P, kind, N, C, H, k, s, pad, x):
    """The pool step of identity 1x1 conv -> pool -> identity 1x1 conv, bound with blocked x and y
    (as in a Graph's blocked chain), and its blocked input."""
    w = np.eye(C, dtype=np.float32)[:, :, None, None]
    op = "avg_pool2d" if kind == "avg" else "max_pool2d"
    chains = importlib.import_module(P.__name__ + ".graph.chunk_chains")
    was, chains.POOLS = chains.POOLS, False  # the pool its own step, not a member of a chunked chain
    try:
        g = _graph(P, op, C, H, k, s, pad, w)
        y = g(x)
        env = g.feed(x)
        for fn, ins, out, *_ in g.bound_plan(env):  # (an older build's entries have a fifth element)
            env[out] = fn(*[env[t] for t in ins])
            if out == "p":
                return fn, env[ins[0]], y
    finally:
        chains.POOLS = was
    raise RuntimeError("no pool step")


def _graph(P, op, C, H, k, s, pad, w):
    return P.Graph(
        {"x": (None, C, H, H)},
        [
            P.Node("c", "conv2d", ["x"], params={"weight": w}),
            P.Node("p", op, ["c"], attrs=dict(kernel=k, stride=s, padding=pad)),
            P.Node("d", "conv2d", ["p"], params={"weight": w}),
        ],
        ["d"],
    )


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--old", help="a folder holding an older build's package named --name")
    ap.add_argument("--name", default="pycnn_old")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=9)
    args = ap.parse_args(argv)
    builds = old_build.builds(args.old, args.name, args.threads) if args.old else {"new": pycnn}
    pycnn.set_num_threads(args.threads)
    print(f"blocked pools, ISA {pycnn._C.get_isa()}, {args.threads} threads, medians (ms)")
    for kind, N, C, H, k, s, pad in SHAPES:
        x = np.random.default_rng(0).standard_normal((N, C, H, H), dtype=np.float32)
        calls, ys = {}, {}
        for name, P in builds.items():
            fn, a, ys[name] = bound_pool(P, kind, N, C, H, k, s, pad, x)
            calls[name] = (fn, a)
        if "old" in ys:
            np.testing.assert_allclose(ys["new"], ys["old"], rtol=1e-5, atol=1e-5)
        timed = compare(
            {name: (lambda fn=fn, a=a: fn(a)) for name, (fn, a) in calls.items()}, rounds=args.rounds, min_samples=30
        )
        med = {name: t["median_s"] for name, t in timed.items()}
        Ho = (H + 2 * pad - k) // s + 1
        nbytes = 4 * N * C * (H * H + Ho * Ho)
        cols = "  ".join(f"{name} {m * 1e3:.3f} ({nbytes / m / 1e9:.0f} GB/s)" for name, m in med.items())
        ratio = f"  old/new {med['old'] / med['new']:.2f}x" if "old" in med else ""
        print(f"{kind} {N}x{C}x{H}x{H} {k}x{k}/{s} pad {pad}: {cols}{ratio}", flush=True)


if __name__ == "__main__":
    main()
