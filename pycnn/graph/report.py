"""Graph.summary() and Graph.profile(): what they measure, and the tables they return (rows as
data, str() as a table)."""

from __future__ import annotations

import time

import numpy as np

from .. import layout as _layout
from .. import ops
from .._validate import as_int
from ..layers import OPS


def _shape(s):
    return "x".join(str(d) for d in s)


def _mb(b):
    return f"{b / 2**20:.1f} MiB"


class Summary:
    """rows: (node, op, output shape, parameters, FLOPs); peak_bytes: the plan's peak activation
    memory at this batch (each intermediate freed after its last consumer); total_bytes: what
    keeping every activation would take."""

    def __init__(self, name, batch, rows, peak_bytes, total_bytes):
        self.name, self.batch, self.rows = name, batch, rows
        self.peak_bytes, self.total_bytes = peak_bytes, total_bytes
        self.params = sum(r[3] for r in rows)
        self.flops = sum(r[4] for r in rows)

    def __str__(self):
        w = max([len(r[0]) for r in self.rows] + [4])
        lines = [
            f"{self.name}, batch {self.batch}",
            f"{'node':<{w}}  {'op':<20} {'output':<18} {'params':>11} {'MFLOPs':>10}",
        ]
        for name, op, out, n, fl in self.rows:
            lines.append(f"{name:<{w}}  {op:<20} {_shape(out):<18} {n:>11,} {fl / 1e6:>10.1f}")
        lines.append(
            f"total: {self.params:,} parameters ({_mb(4 * self.params)}), {self.flops / 1e9:.3f} GFLOPs; "
            f"peak activations {_mb(self.peak_bytes)} (all activations {_mb(self.total_bytes)})"
        )
        return "\n".join(lines)

    __repr__ = __str__


class Profile:
    """rows: (plan step = fused node names, op, output shape, median seconds, FLOPs, algorithm,
    live bytes after the step); total_s: median of whole runs; threads: kernel threads."""

    def __init__(self, name, batch, rows, total_s, threads):
        self.name, self.batch, self.rows, self.total_s, self.threads = name, batch, rows, total_s, threads

    def __str__(self):
        w = max([len(r[0]) for r in self.rows] + [4])
        step_sum = sum(r[3] for r in self.rows) or 1.0
        where = f"on {self.where}" if getattr(self, "where", None) else f"{self.threads} threads"
        lines = [
            f"{self.name}, batch {self.batch}, {where}: {self.total_s * 1e3:.2f} ms per run (median)",
            f"{'step':<{w}}  {'op':<14} {'output':<16} {'ms':>8} {'%':>5} {'GFLOP/s':>8}  algorithm",
        ]
        for name, op, out, t, fl, algo, _live in self.rows:
            gf = f"{fl / t / 1e9:8.1f}" if fl and t > 0 else f"{'':>8}"
            lines.append(
                f"{name:<{w}}  {op:<14} {_shape(out):<16} {t * 1e3:8.3f} {100 * t / step_sum:5.1f} {gf}  {algo}"
            )
        return "\n".join(lines)

    __repr__ = __str__


def summarize(g, batch) -> Summary:
    """Per node of g: output shape, parameter count, FLOPs; totals; the peak activation memory of
    the plan's freeing schedule at this batch."""
    shapes = g.infer_shapes(g.example_shapes(batch))
    rows = []
    for n in g.nodes:
        ins = [shapes[t] for t in n.inputs]
        out = shapes[n.output]
        rows.append(
            (n.name, n.op, out, sum(int(p.size) for p in n.params.values()), OPS[n.op].flops(n.attrs, ins, out))
        )
    return Summary(g.name, batch, rows, g.peak_bytes(shapes), g.total_bytes(shapes))


def profile(g, x, runs=10, warmup=2) -> Profile:
    """Run x through g runs times after warmup; per plan step the median time, GFLOP/s and
    algorithm, and the live bytes after the step."""
    runs, warmup = as_int(runs, "runs", 1), as_int(warmup, "warmup", 0)
    env0 = g.feed(x)
    plan = g.bound_plan(env0)
    if plan.empty_outputs is not None:
        raise ValueError(f"x: profile needs a batch of at least 1, got shape {next(iter(env0.values())).shape}")
    shapes = g.infer_shapes({k: v.shape for k, v in env0.items()})  # logical: what the rows show
    stored = g._stored_shapes(shapes)  # what the kernels run on (pycnn/graph/pad_channels.py)
    steps = g.plan_steps
    node_by_name = {n.name: n for n in g.nodes}
    times = [[] for _ in steps]
    se_parts = {k for ks in plan.fused_se.values() for k in ks}
    fused_into = {a: k for k, ks in plan.fused.items() for a in ks}  # fuse_pw_dw: step -> the step doing it
    chunked_into = {a: k for k, ks in plan.chunked.items() for a in ks}  # chunk_chains: likewise
    mean_convs = set(plan.fused_mean.values())  # fuse_mean: convs whose pool runs them
    totals = []
    live_trace = {}
    for it in range(warmup + runs):
        env = dict(env0)
        t_start = time.perf_counter()
        trace = {}
        prev = plan.arena.enter() if plan.arena is not None else None
        try:
            for i, (fn, ins, out, free) in zip(plan.index, plan):
                args = [env[t] for t in ins]
                t0 = time.perf_counter()
                env[out] = fn(*args)
                t1 = time.perf_counter()
                for t in free:
                    del env[t]
                if it >= warmup:
                    times[i].append(t1 - t0)
                    if it == warmup:
                        trace[i] = _live_bytes(env)
        finally:
            if plan.arena is not None:
                plan.arena.exit(prev)
        if it >= warmup:
            totals.append(time.perf_counter() - t_start)
            if it == warmup:
                live_trace = trace
    rows = []
    live = 0
    for i, s in enumerate(steps):
        live = live_trace.get(i, live)  # a step fused into a later one: what the last one left
        ins = [shapes[t] for t in s.inputs]
        flops = 0.0
        for part in s.parts or [s]:  # a conv bank: its convs' FLOPs
            head = node_by_name.get(part.names[0])
            if head is not None:
                flops += OPS[head.op].flops(head.attrs, [shapes[t] for t in part.inputs], shapes[head.output])
        algo = s.fn.algo_for(stored[s.inputs[0]]) or s.op
        if i in plan.layouts:
            algo = _layout.describe(plan.layouts[i][1], plan.layouts[i][0], s.op)
        if i in plan.fused:
            two = len(plan.fused[i]) > 1
            algo += " (+ the 1x1 and the depthwise conv before it, fused)" if two else " (+ the 1x1 before it, fused)"
        elif i in fused_into:
            algo = "fused into the next step" if fused_into[i] == i + 1 else "fused into a later step"
        elif i in plan.chunked:
            algo += f" (+ the {len(plan.chunked[i])} steps before it, a few images at a time)"
        elif i in chunked_into:
            algo = "fused into a later step (a chain run a few images at a time)"
        elif i in plan.fused_se:
            algo = "se_block (+ its pool and two 1x1 convs, fused)"
        elif i in se_parts:
            algo = "fused into se_block"
        elif i in plan.fused_mean:
            algo = "direct_oc (+ the conv before it, its maps' means summed in the kernel)"
        elif i in mean_convs:
            algo = "fused into the next step (its global average pool)"
        if s.output in g._padded:
            algo += f" [C {shapes[s.output][1]}->{g._padded[s.output]}]"
        rows.append(
            (
                "+".join(s.names),
                s.op,
                shapes[s.output],
                float(np.median(times[i])) if times[i] else 0.0,  # none: fused into a later step
                flops,
                algo,
                live,
            )
        )
    out0 = shapes[g.outputs[0]]
    return Profile(g.name, out0[0] if out0 else 1, rows, float(np.median(totals)), ops.get_num_threads())


def _live_bytes(env):
    seen = {}
    for a in env.values():
        base = a
        while isinstance(base, np.ndarray) and base.base is not None:
            base = base.base
        if isinstance(base, np.ndarray):
            seen[id(base)] = base.nbytes
    return sum(seen.values())
