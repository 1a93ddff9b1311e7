"""Fair timing of several candidates in one run.

Each candidate runs in blocks (untimed warm-up calls for at least WARMUP_S, then timed calls) and
the blocks take turns for a few rounds, so a ratio survives the machine's speed drifting, and no
engine's spinning worker threads steal cores from the one being timed (interleaving single calls
on 2 cores is unfair: see shared/notes/peers.md). Before each block the harness sleeps briefly so
that the previous engine's spinning workers (OpenMP, OpenBLAS, onnxruntime) have gone idle;
without the pause, medians of the same kernel were seen to differ 10x depending on what ran before
it. The figure reported is the median of all timed calls.
"""

from __future__ import annotations

import statistics
import time

import numpy as np

PAUSE_S = 0.03  # longer than the spin-wait of libgomp, OpenBLAS and onnxruntime's pool
# After such a pause this machine (a VM) runs slowly for a few milliseconds whatever runs: a 0.1
# ms conv on two threads took 5 ms as the first call after 30 ms idle and 0.8 ms as the second,
# and ConvNetJS's 0.08 ms runs stayed 10-30% slow for the next ~2 ms of calls. So each block
# warms up for at least WARMUP_S of calls, not just `warmup` calls, and times the steady state.
WARMUP_S = 0.01


def time_block(fn, reps: int, warmup: int = 2, warmup_s: float = WARMUP_S, pause: bool = True) -> list[float]:
    if pause:
        time.sleep(PAUSE_S)
    t_end = time.perf_counter() + warmup_s
    done = 0
    while done < warmup or time.perf_counter() < t_end:
        fn()
        done += 1
    out = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def compare(
    cands: dict,
    rounds: int = 3,
    target_s: float = 0.15,
    max_reps: int = 50,
    min_samples: int = 1,
    engine=None,
) -> dict:
    """cands: name -> zero-argument callable. Returns name -> {'median_s', 'samples'}.

    Each candidate gets at least min_samples timed calls: calls too slow for more than one per
    block get more rounds (a whole network at batch 8 is one call per block; a median of three
    moved by +-4% between runs). engine(name) names the thread pool a candidate runs on (default:
    each its own): the pause before a block, there for the previous engine's spinning workers,
    is skipped where the previous block ran on the same engine (pycnn's algorithms one after
    another share one OpenMP team; the warm-up still runs)."""
    engine = engine or (lambda name: name)
    reps = {}
    for name, fn in cands.items():
        fn()  # first call: JIT, allocation, lazy init
        t0 = time.perf_counter()
        fn()
        dt = max(time.perf_counter() - t0, 1e-6)
        reps[name] = int(max(1, min(max_reps, target_s / rounds / dt)))
    rounds = max([rounds] + [-(-min_samples // r) for r in reps.values()])
    samples = {name: [] for name in cands}
    last = None
    for _ in range(rounds):
        for name, fn in cands.items():
            samples[name] += time_block(fn, reps[name], warmup=1, pause=engine(name) != last)
            last = engine(name)
    return {name: {"median_s": statistics.median(s), "samples": len(s)} for name, s in samples.items()}


def time_once(fn) -> dict:
    """One timed call, in compare()'s result form: for the NumPy reference, the oracle and not a
    contender, whose seconds-long calls a block of their own would spend the run on."""
    t0 = time.perf_counter()
    fn()
    return {"median_s": time.perf_counter() - t0, "samples": 1}


def median_after(fn, before, reps: int) -> float:
    """Median seconds of fn() over reps calls, before() run untimed ahead of each (an eviction,
    a write of fn's input: what the call is measured after)."""
    ts = []
    for _ in range(reps):
        before()
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


EVICT_SHAPE = (1, 64, 512, 512)  # 64 MiB, more than the L2s and the L3 together


def evicting_pool(P):
    """A call of build P (pycnn, or an older build's package) that pushes x, y and weights out of
    every cache level: a 2x2 max pool over 64 MiB (and its 16 MiB output), run by P's own threads,
    so its OpenMP team stays awake as between a network's steps (a NumPy sum in its place let the
    worker sleep, and the timed call then paid its wake-up)."""
    big = np.ones(EVICT_SHAPE, np.float32)
    out = [EVICT_SHAPE[0], EVICT_SHAPE[1], EVICT_SHAPE[2] // 2, EVICT_SHAPE[3] // 2]
    pool = P._C.bind_pool2d(list(EVICT_SHAPE), out, 2, 2, 2, 2, 0, 0, True, False)
    return lambda: pool(big)


def geomean(xs):
    xs = [x for x in xs if x and x > 0]
    if not xs:
        return float("nan")
    p = 1.0
    for x in xs:
        p *= x
    return p ** (1.0 / len(xs))
