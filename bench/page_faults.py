"""Minor page faults per run of a torchvision network exported to ONNX, and the steps that take
them: what showed the Graph's caching allocator keeping the wrong blocks (docs/performance.md,
Whole networks). `python -m bench.page_faults efficientnet_b0 --batch 8`. Linux and macOS
(resource.getrusage); the counts are the process's, so nothing else may run in it meanwhile."""

import argparse
import resource

import numpy as np

import pycnn

from . import torchvision_zoo as zoo


def _faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def count(g, x, runs=3):
    """(faults per run, {step index: faults per run}) over runs of g's bound plan for x, each
    step called as Graph.run calls it (with the graph's arena installed)."""
    env = g.feed(x)
    plan = g.bound_plan(env)
    per_step = {}
    for _ in range(runs):
        env = g.feed(x)
        prev = plan.arena.enter() if plan.arena is not None else None
        try:
            for k, (fn, ins, out, free) in zip(plan.index, plan):  # k: the entry's step
                f0 = _faults()
                env[out] = fn(*[env[t] for t in ins])
                per_step[k] = per_step.get(k, 0) + _faults() - f0
                for t in free:
                    del env[t]
        finally:
            if plan.arena is not None:
                plan.arena.exit(prev)
    per_step = {k: v / runs for k, v in per_step.items()}
    return sum(per_step.values()), per_step


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("network", choices=sorted(zoo.NETWORKS))
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--top", type=int, default=8)
    args = ap.parse_args(argv)
    g = pycnn.load_onnx(zoo.export_onnx(zoo.torch_model(args.network), args.network))
    x = np.random.default_rng(0).standard_normal(zoo.input_shape(args.network, args.batch), dtype=np.float32)
    for _ in range(3):
        g(x)  # bound, and the arena's cache filled as in a steady state
    total, per_step = count(g, x)
    print(f"{args.network} batch {args.batch}: {total:.0f} minor page faults per run")
    steps = g.plan_steps
    for k, v in sorted(per_step.items(), key=lambda kv: -kv[1])[: args.top]:
        if v > 0:
            print(f"  {v:8.0f}  {steps[k].op:<18} {steps[k].names[0]}")


if __name__ == "__main__":
    main()
