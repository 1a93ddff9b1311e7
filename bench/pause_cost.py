"""What a pause costs the next call: a memory-bound step (Inception v3's stem max pool, 3x3/2 on a
blocked 64 x 147 x 147 input, 5.5 MB read, 1.4 MB written) timed back to back and after a sleep of
each length, on 1 and 2 threads, medians (docs/performance.md, The machines and how to measure).
On the shared VM the first call after an idle of a few ms runs several times slower than back to
back, on one thread as on two: what a Graph step timed "alone" (back to back) does not see.
`python -m bench.pause_cost [--runs R]`."""

import argparse
import statistics
import time

import numpy as np

import pycnn

from .blocked_pool_check import bound_pool

PAUSES_MS = (0.0, 0.2, 1.0, 2.0, 5.0, 20.0)


def median_us(call, pause_s, runs):
    ts = []
    for _ in range(runs):
        if pause_s:
            time.sleep(pause_s)
        t0 = time.perf_counter()
        call()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts) * 1e6


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=40)
    args = ap.parse_args(argv)
    x = np.random.default_rng(0).random((1, 64, 147, 147), dtype=np.float32)
    fn, xb, _ = bound_pool(pycnn, "max", 1, 64, 147, 3, 2, 0, x)
    y = fn(xb)
    threads = pycnn.get_num_threads()
    print(f"max pool 3x3/2, blocked 64 x 147 x 147, ISA {pycnn._C.get_isa()}, medians of {args.runs} (us)")
    print("threads " + " ".join(f"{'after ' + str(p) + ' ms':>14}" for p in PAUSES_MS))
    try:
        for nt in sorted({1, threads}):
            pycnn.set_num_threads(nt)
            row = [median_us(lambda: fn(xb, out=y), p / 1e3, args.runs) for p in PAUSES_MS]
            print(f"{nt:>7} " + " ".join(f"{v:14.0f}" for v in row))
    finally:
        pycnn.set_num_threads(threads)


if __name__ == "__main__":
    main()
