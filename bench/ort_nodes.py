"""Where a torchvision network's time goes, pycnn against onnxruntime, node by node, in one process:
pycnn's Graph.profile (median per plan step) beside onnxruntime's own profiler (median per node over
the same number of runs). `python -m bench.ort_nodes NAME [--batch B] [--threads T] [--runs R]
[--top K]`. onnxruntime's profiler adds a few microseconds to each node it times, so its per-node
sum overstates its run; pycnn's step sum adds per-step medians, and each step's times skew right,
so it understates its run (docs/performance.md, torchvision's networks). The whole-run medians are
the comparison; the rows say where the gaps are.

A step is matched to the onnxruntime nodes named after one of its nodes or their outputs (its
NCHWc convs are named "<output>_nchwc"); the layout reorders onnxruntime inserts match no step and
are summed apart. The rows are pycnn's plan steps, biggest gap first."""

from __future__ import annotations

import argparse
import json
import os
import re
import tempfile
import time
from collections import defaultdict

import numpy as np

import pycnn


def _ort_profile(data, x, threads, runs):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    plain = ort.InferenceSession(data, so, providers=["CPUExecutionProvider"])
    whole = []
    for i in range(runs + 2):
        t0 = time.perf_counter()
        plain.run(None, {"x": x})
        if i >= 2:
            whole.append(time.perf_counter() - t0)
    with tempfile.TemporaryDirectory() as d:
        so.enable_profiling = True
        so.profile_file_prefix = os.path.join(d, "ort")
        sess = ort.InferenceSession(data, so, providers=["CPUExecutionProvider"])
        for _ in range(runs + 2):
            sess.run(None, {"x": x})
        path = sess.end_profiling()
        with open(path) as f:
            events = json.load(f)
    per = defaultdict(list)
    ops = {}
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
            name = e["name"][: -len("_kernel_time")]
            per[name].append(e["dur"] * 1e-6)
            ops[name] = e.get("args", {}).get("op_name", "?")
    # the first two runs are warm-up
    med = {k: float(np.median(v[2 * len(v) // (runs + 2) :] or v)) for k, v in per.items()}
    return float(np.median(whole)), med, ops


def _base(ort_name):
    # "<output>_nchwc" (its blocked-layout convs), "<node>_token_<n>" (nodes its fusions made)
    return re.sub(r"(_token_\d+|_nchwc)$", "", ort_name)


def compare(name, batch, threads, runs):
    from . import torchvision_zoo as zoo

    pycnn.set_num_threads(threads)
    m = zoo.torch_model(name)
    data = zoo.export_onnx(m, name)
    g = pycnn.load_onnx(data, name=name)
    x = np.random.default_rng(0).standard_normal(zoo.input_shape(name, batch), dtype=np.float32)
    prof = g.profile(x, runs=runs, warmup=2)
    ort_total, ort_med, ort_ops = _ort_profile(data, x, threads, runs)
    owner = {}  # onnxruntime names a node after the node, or (its NCHWc nodes) after its output
    node_by_name = {n.name: n for n in g.nodes}
    for i, row in enumerate(prof.rows):
        for n in row[0].split("+"):
            owner[n] = i
            if n in node_by_name:
                owner[node_by_name[n].output] = i
    matched = defaultdict(float)
    what = defaultdict(list)
    unmatched = 0.0
    for k, t in ort_med.items():
        i = owner.get(_base(k), owner.get(k))
        if i is None:
            unmatched += t
            continue
        matched[i] += t
        what[i].append(ort_ops[k])
    rows = []
    carry, carry_ops = 0.0, []  # steps fused into a later one (no time of their own): their nodes go there
    for i, (step, op, out, t, _fl, algo, _live) in enumerate(prof.rows):
        if t == 0.0 and "fused" in algo:
            carry += matched.get(i, 0.0)
            carry_ops += what[i]
            continue
        o = matched.get(i, 0.0) + carry
        rows.append((step, op, out, t, o, algo, ",".join(sorted(set(what[i] + carry_ops)))))
        carry, carry_ops = 0.0, []
    return prof, ort_total, rows, unmatched


def main(argv=None):
    from . import torchvision_zoo as zoo

    ap = argparse.ArgumentParser()
    ap.add_argument(
        "name",
        choices=sorted(zoo.NETWORKS) + sorted(zoo.PER_NODE_ONLY),
        help="a torchvision network of bench/torchvision_zoo.py (tv_resnet50, tv_alexnet, "
        "tv_googlenet: torchvision's exports of the lecture's networks)",
    )
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--top", type=int, default=25)
    args = ap.parse_args(argv)
    prof, ort_total, rows, unmatched = compare(args.name, args.batch, args.threads, args.runs)
    py_sum = sum(r[3] for r in rows)
    ort_sum = sum(r[4] for r in rows) + unmatched
    print(
        f"{args.name} batch {args.batch}, {args.threads} threads, ISA {pycnn._C.get_isa()}: whole run pycnn "
        f"{prof.total_s * 1e3:.3f} ms, onnxruntime {ort_total * 1e3:.3f} ms (ratio {ort_total / prof.total_s:.3f}); "
        f"step sums pycnn {py_sum * 1e3:.3f}, onnxruntime (profiled) {ort_sum * 1e3:.3f} ms, "
        f"unmatched onnxruntime nodes {unmatched * 1e3:.3f} ms"
    )
    by_op = defaultdict(lambda: [0.0, 0.0])
    for r in rows:
        by_op[r[1]][0] += r[3]
        by_op[r[1]][1] += r[4]
    ops_line = ", ".join(f"{k} {a * 1e3:.3f}/{b * 1e3:.3f}" for k, (a, b) in sorted(by_op.items()))
    print("per op, pycnn/onnxruntime ms: " + ops_line)
    by_algo = defaultdict(lambda: [0.0, 0.0, 0])
    for r in rows:
        a = by_algo[r[5].split(" ")[0]]
        a[0], a[1], a[2] = a[0] + r[3], a[1] + r[4], a[2] + 1
    print(
        "per algorithm, pycnn/onnxruntime ms (steps): "
        + ", ".join(f"{k} {a * 1e3:.3f}/{b * 1e3:.3f} ({n})" for k, (a, b, n) in sorted(by_algo.items()))
    )
    rows.sort(key=lambda r: r[4] - r[3])
    w = max(len(r[0][:60]) for r in rows)
    print(f"{'step':<{w}}  {'output':<16} {'pycnn us':>9} {'ort us':>8} {'gap us':>8}  algorithm | ort ops")
    for step, _op, out, t, o, algo, oo in rows[: args.top]:
        shape = "x".join(map(str, out))
        print(f"{step[:60]:<{w}}  {shape:<16} {t * 1e6:9.1f} {o * 1e6:8.1f} {(t - o) * 1e6:8.1f}  {algo} | {oo}")


if __name__ == "__main__":
    main()
