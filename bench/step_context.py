"""Each plan step inside its network against the same bound call alone: where a network run loses
to its steps' standalone times (docs/performance.md, Whole networks).
`python -m bench.step_context NAME [--batch B] [--threads T] [--top K] [--step I]`.

In sequence: the plan run as Graph.run runs it (its arena installed), every step timed, medians
over --runs runs. Alone: each step's bound call repeated on the inputs that run gave it, medians
(the first two calls dropped). Printed: both sums, and the steps that lose most in sequence. With
--step I, that step alone, after its producer step, after a 64 MiB flush of the caches (a max
pool over a buffer of that size), and after the flush with its inputs read back: which of its
operands cost it the time it loses in sequence. With --probe I, that step timed inside the plan's
run (the steps before it run as the plan runs them): as it is, after its array inputs are read by
the calling thread (x then comes from that core's caches), and after its call is first made on
copies of its inputs (its weights, code and workspace warm; the copies read x too). Lecture
networks (pycnn.models) and the torchvision networks of bench/torchvision_zoo.py."""

import argparse
import statistics
import time

import numpy as np

import pycnn
import pycnn.models

from . import networks
from . import torchvision_zoo as zoo


def _graph(name, batch):
    """(graph, input) for a lecture or torchvision network."""
    if name in zoo.NETWORKS:
        g = pycnn.load_onnx(zoo.export_onnx(zoo.torch_model(name), name), name=name)
        x = np.random.default_rng(0).standard_normal(zoo.input_shape(name, batch), dtype=np.float32)
        return g, x
    g = pycnn.models.get(name)
    return g, networks._input(g, name, batch, np.random.default_rng(0))


class _Plan:
    """A graph's bound plan for x, run step by step as Graph.run runs it."""

    def __init__(self, g, x):
        self.env0 = g.feed(x)
        self.plan = g.bound_plan(self.env0)
        self.entries = list(zip(self.plan.index, self.plan))

    def run(self, times=None, keep=None, hook=None):
        """One run; times[i] gets step i's seconds, keep[i] its (fn, args) as that run called it;
        hook(i, fn, args), when given, runs just before each step's timed call."""
        env = dict(self.env0)
        arena = self.plan.arena
        prev = arena.enter() if arena is not None else None
        try:
            for i, (fn, ins, out, free) in self.entries:
                args = [env[t] for t in ins]
                if hook is not None:
                    hook(i, fn, args)
                t0 = time.perf_counter()
                env[out] = fn(*args)
                t1 = time.perf_counter()
                if times is not None:
                    times.setdefault(i, []).append(t1 - t0)
                if keep is not None:
                    keep[i] = (fn, args)
                for t in free:
                    del env[t]
        finally:
            if arena is not None:
                arena.exit(prev)


def _median_call(fn, args, reps, before=None):
    ts = []
    for _ in range(reps):
        if before is not None:
            before()
        t0 = time.perf_counter()
        fn(*args)
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts[2:] if before is None else ts)


def measure(g, x, runs=15, reps=12):
    """({step: median s in sequence}, {step: median s alone}, {step: (fn, args)})."""
    p = _Plan(g, x)
    for _ in range(3):
        p.run()
    times = {}
    for _ in range(runs):
        p.run(times)
    keep = {}
    p.run(keep=keep)  # the inputs each step had in a run, kept alive for the alone calls
    seq = {i: statistics.median(v) for i, v in times.items()}
    alone = {i: _median_call(fn, args, reps) for i, (fn, args) in keep.items()}
    return seq, alone, keep


def pair(keep, i, reps=25):
    """Step i alone, after step i - 1, after a 64 MiB flush, after the flush and its inputs read."""
    big = np.ones(16 << 20, np.float32)
    flush = lambda: pycnn.max_pool2d(big.reshape(1, 16, 1024, 1024), 2)  # noqa: E731
    fn, args = keep[i]
    fp, ap = keep[i - 1]
    arrays = [a for a in args if isinstance(a, np.ndarray)]
    return {
        "alone": _median_call(fn, args, reps),
        "after its producer": _median_call(fn, args, reps, lambda: fp(*ap)),
        "after a flush": _median_call(fn, args, reps, flush),
        "after a flush, inputs read": _median_call(fn, args, reps, lambda: (flush(), [a.sum() for a in arrays])),
    }


def probe(g, x, i, runs=25):
    """Step i's median seconds inside the plan's run: as it is, after its array inputs are read
    on the calling thread, and after its call is first made on copies of its inputs."""

    def read_inputs(fn, args):
        for a in args:
            if isinstance(a, np.ndarray):
                (a.base if a.base is not None else a).sum()

    def call_on_copies(fn, args):
        fn(*[a.copy() if isinstance(a, np.ndarray) else a for a in args])

    ways = {"in sequence": None, "inputs read first": read_inputs, "called on copies first": call_on_copies}
    p = _Plan(g, x)
    for _ in range(3):
        p.run()
    times = {w: {} for w in ways}
    for _ in range(runs):
        for w, f in ways.items():
            hook = None if f is None else (lambda j, fn, args, f=f: f(fn, args) if j == i else None)
            p.run(times[w], hook=hook)
    return {w: statistics.median(t[i]) for w, t in times.items()}


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("network", choices=sorted(zoo.NETWORKS) + pycnn.models.names())
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--top", type=int, default=12)
    ap.add_argument("--step", type=int, help="the pair test for this step (an index the table prints)")
    ap.add_argument("--probe", type=int, help="this step timed inside the plan's run, three ways (see above)")
    args = ap.parse_args(argv)
    pycnn.set_num_threads(args.threads)
    g, x = _graph(args.network, args.batch)
    seq, alone, keep = measure(g, x, args.runs)
    steps = g.plan_steps
    print(
        f"{args.network} batch {args.batch}, {args.threads} threads, ISA {pycnn._C.get_isa()}: sum of steps in "
        f"sequence {sum(seq.values()) * 1e3:.3f} ms, alone {sum(alone.values()) * 1e3:.3f} ms"
    )
    print(f"{'step':>5} {'seq us':>9} {'alone us':>9}  names")
    for i in sorted(seq, key=lambda k: alone[k] - seq[k])[: args.top]:
        print(f"{i:5d} {seq[i] * 1e6:9.1f} {alone[i] * 1e6:9.1f}  {'+'.join(steps[i].names)[:80]}")
    if args.step is not None:
        if args.step not in keep or args.step - 1 not in keep:
            ap.error(f"--step: expected a step index with a step before it, 1 .. {max(keep)}")
        for what, t in pair(keep, args.step).items():
            print(f"  step {args.step} {what}: {t * 1e6:.1f} us")
    if args.probe is not None:
        if args.probe not in keep:
            ap.error(f"--probe: expected a step index, 0 .. {max(keep)}")
        for what, t in probe(g, x, args.probe, args.runs).items():
            print(f"  step {args.probe} {what}: {t * 1e6:.1f} us")


if __name__ == "__main__":
    main()
