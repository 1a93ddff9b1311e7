"""In-process A/B of one conv layer's prepared, bound call in two builds (this checkout against an
older build's package, as bench/build_ab.py loads it): blocks of calls taking turns, medians
(bench/timing.compare).

    python -m bench.conv_ab /tmp/oldpkg 1,48,19,192,5,1,2 8,96,27,256,5,1,2 --algo direct_oc

Each shape is N,C,H,K,R,stride,pad (H, R and pad may be HxW, RxS and PHxPW: bench/algo_ab.py);
ReLU in the epilogue. Prints both
times, their GFLOP/s (2*N*K*C*R*R*Ho*Wo, taps in the padding counted) and old / new. --blocked y
(x, xy) binds the call as a Graph's layout pass does (pycnn/layout.py): the output, x, or both
channel-blocked (N, C/16, H, W, 16), run by --algo; --threads sets both builds' threads. --cold
evicts the caches before each call with a 64 MiB max pool run by the same build
(timing.evicting_pool: its OpenMP team stays awake, as between a network's steps) and then
reads x, so the weights come from memory and the input from cache, as for a layer deep in a
network whose weights the other layers pushed out; the two builds' calls then alternate one by
one."""

import argparse
import statistics
import time

import numpy as np

from . import algo_ab, old_build
from .depthwise_check import _blocked
from .timing import compare, evicting_pool


def _cold_pair(old, new, x, reps, evict_old, evict_new):
    """Median seconds of old(x) and new(x), alternating, each after its build's evicting pool and
    reading x back in."""
    ts = {old: [], new: []}
    for i in range(2 * reps):
        f = old if i % 2 == 0 else new
        (evict_old if f is old else evict_new)()
        x.sum()
        t0 = time.perf_counter()
        f(x)
        ts[f].append(time.perf_counter() - t0)
    return statistics.median(ts[old]), statistics.median(ts[new])


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("old", help="a folder holding the older build's package, renamed (see --name)")
    ap.add_argument("shapes", nargs="+", help="N,C,H,K,R,stride,pad")
    ap.add_argument("--name", default="pycnn_old")
    ap.add_argument("--algo", default="auto")
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument(
        "--blocked", choices=("", "y", "x", "xy"), default="", help="channel-blocked y, x (y NCHW), or x and y"
    )
    ap.add_argument("--cold", action="store_true", help="weights evicted from the caches before each call")
    args = ap.parse_args(argv)
    builds = old_build.builds(args.old, args.name, args.threads)
    ev = {name: evicting_pool(P) for name, P in builds.items()} if args.cold else None
    bits = {"": 0, "y": 2, "x": 1, "xy": 3}[args.blocked]
    for spec in args.shapes:
        N, C, H, W, K, R, S, st, pad = algo_ab.parse_shape(spec)
        rng = np.random.default_rng(0)
        x = rng.standard_normal((N, C, H, W), dtype=np.float32)
        w = rng.standard_normal((K, C, R, S), dtype=np.float32) * 0.1
        b = rng.standard_normal(K, dtype=np.float32)
        calls = {}
        for name, P in builds.items():
            conv = P.prepare_conv(w, b, stride=st, padding=pad, algo=args.algo, activation="relu")
            calls[name] = conv.bind([x.shape], None, layout=(bits, args.algo) if bits else (0, None))
        if bits & 1:  # x as the layout pass hands it over: (N, C/16, H, W, 16)
            x = _blocked(x)
        np.testing.assert_allclose(calls["new"](x), calls["old"](x), rtol=1e-4, atol=1e-3)
        Ho, Wo = (H + 2 * pad[0] - R) // st + 1, (W + 2 * pad[1] - S) // st + 1
        flop = 2.0 * N * K * C * R * S * Ho * Wo
        if args.cold:
            mo, mn = _cold_pair(calls["old"], calls["new"], x, 10 * args.rounds, ev["old"], ev["new"])
        else:
            timed = compare({name: (lambda f=f: f(x)) for name, f in calls.items()}, rounds=args.rounds, min_samples=20)
            mo, mn = (timed[k]["median_s"] for k in ("old", "new"))
        print(
            f"N{N} {C}->{K} {R}x{S}/{st} pad {algo_ab.pair_str(*pad)} @{algo_ab.pair_str(H, W)} "
            f"({args.algo}{', blocked ' + args.blocked if bits else ''}, "
            f"{args.threads} threads{', weights cold' if args.cold else ''}): old {mo * 1e3:.3f} ms "
            f"({flop / mo / 1e9:.0f} GFLOP/s), new {mn * 1e3:.3f} ms ({flop / mn / 1e9:.0f} GFLOP/s), {mo / mn:.3f}x",
            flush=True,
        )


if __name__ == "__main__":
    main()
