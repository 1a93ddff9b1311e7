"""The `models` and `peers` suites: whole networks end to end.

models: every zoo network at each batch size through pycnn (algo auto, weights prepared when
the Graph is built), PyTorch eager (the same network written in PyTorch,
pycnn/models/torch_reference.py, inference mode), onnxruntime (that PyTorch network exported to
ONNX, all graph optimizations) and ncnn (the Graph's plan written as .param/.bin by
ncnn_export.py, FP32); median latency, images per second, the time ratio pycnn / peer (< 1:
pycnn is faster), and pycnn's per-layer breakdown (Graph.profile) at batch 1. Then torchvision's
CNN families as a user brings them (bench/torchvision_zoo.py): exported to ONNX once, loaded with
pycnn.load_onnx, against onnxruntime on the same ONNX file and PyTorch eager (torchvision's
module); `--all` runs the 14 at every batch size, the default the three whose depthwise layers
decide them (MobileNet V2, ShuffleNet V2, EfficientNet-B0) at the first batch size.
peers: the same side by side plus the NumPy reference (Graph.run_reference in float32, one timed
run: it is the oracle, not a contender), without the per-layer breakdown.

Every engine's output is checked against pycnn's before it is timed (normwise 1e-3 of the
largest output); an engine that disagrees is reported WRONG and not timed.
"""

from __future__ import annotations

import fnmatch
import io
import tempfile
import time
import warnings

import numpy as np

import pycnn

from .timing import compare, time_once

ENGINES = ("pycnn", "torch", "onnxruntime", "ncnn")


def _input(g, name, N, rng):
    if name == "kimcnn":
        vocab = g.nodes[0].params["weight"].shape[0]
        return rng.integers(0, vocab, (N,) + g.inputs["tokens"][1:])
    return rng.standard_normal((N,) + g.inputs["x"][1:], dtype=np.float32)


def _torch_engine(g, name, x, threads, built):
    import torch

    from pycnn.models.torch_reference import torch_net

    if "torch" not in built:
        built["torch"] = torch_net(name, g.state_dict())
    m = built["torch"]
    tx = torch.from_numpy(x)

    def run():
        with torch.inference_mode():
            return m(tx).numpy()

    return m, run


def export_onnx(m, x, input_name):
    """A PyTorch module as ONNX bytes (opset 17, the batch dimension dynamic, output "y"), traced
    on x (a NumPy array)."""
    import torch

    f = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            m,
            (torch.from_numpy(x),),
            f,
            dynamo=False,
            input_names=[input_name],
            output_names=["y"],
            dynamic_axes={input_name: {0: "N"}},
            opset_version=17,
        )
    return f.getvalue()


def _ort_engine(m, name, x, threads, built):
    """onnxruntime on m exported to ONNX with a dynamic batch: exported and its session made once
    per network (built), run at every batch size."""
    import onnxruntime as ort

    iname = "tokens" if name == "kimcnn" else "x"
    if "onnxruntime" not in built:
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        built["onnxruntime"] = ort.InferenceSession(export_onnx(m, x, iname), so, providers=["CPUExecutionProvider"])
    sess = built["onnxruntime"]
    return lambda: sess.run(None, {iname: x})[0]


def _engines(g, name, x, threads, folder, with_numpy, built):
    """Each engine as a call on x. built (a dict per network) keeps what is made once and run at
    every batch size: the PyTorch module, the onnxruntime session, the ncnn net (AlexNet's export
    and session took longer than its timing)."""
    out, notes = {"pycnn": lambda: g(x)}, {}
    try:
        m, out["torch"] = _torch_engine(g, name, x, threads, built)
        try:
            out["onnxruntime"] = _ort_engine(m, name, x, threads, built)
        except ImportError as e:
            notes["onnxruntime"] = f"not installed ({e})"
    except ImportError as e:
        notes["torch"] = notes["onnxruntime"] = f"not installed ({e})"
    try:
        from .ncnn_export import NcnnNet

        if "ncnn" not in built:
            built["ncnn"] = NcnnNet(g, threads, folder)
        net = built["ncnn"]
        out["ncnn"] = lambda: net(x)
    except ImportError as e:
        notes["ncnn"] = f"not installed ({e})"
    except NotImplementedError as e:
        notes["ncnn"] = str(e)
    if with_numpy:
        out["numpy"] = lambda: g.run_reference(x, np.float32)
    return out, notes


def _check(row, engines, truth):
    """Each engine's output against pycnn's (normwise 1e-3 of the largest output): its error in
    row, WRONG where it disagrees; returns engine -> agrees."""
    scale = float(np.abs(truth).max())
    ok = {}
    for k, fn in engines.items():
        err = float(np.abs(np.asarray(fn()).reshape(truth.shape) - truth).max()) / scale
        ok[k] = err <= 1e-3
        row[f"{k}_max_rel_err"] = err
        if not ok[k]:
            row[f"{k}_status"] = "WRONG"
    return ok


def _time(engines, ok, opts):
    """The agreeing engines timed in interleaved rounds (bench/timing.py)."""
    return compare(
        {k: v for k, v in engines.items() if ok[k]}, rounds=opts.rounds, target_s=0.6, max_reps=20, min_samples=7
    )


def _record(row, timed, N):
    """Median ms, images/s and the speed of pycnn against each other engine, into row."""
    for k, v in timed.items():
        row[f"{k}_ms"] = v["median_s"] * 1e3
        row[f"{k}_img_s"] = N / v["median_s"]
        if k != "pycnn" and "pycnn" in timed:
            row[f"speed_vs_{k}"] = v["median_s"] / timed["pycnn"]["median_s"]


def profile_rows(prof):
    """A Graph.profile's rows as the results JSON keeps them. A step fused into a later one has
    FLOPs but no time of its own (fuse_mean's conv, a chained step): no GFLOP/s."""
    return [
        dict(step=r[0], op=r[1], ms=r[3] * 1e3, gflops=(r[4] / r[3] / 1e9 if r[4] and r[3] else None), algo=r[5])
        for r in prof.rows
    ]


def run_networks(opts, suite="models"):
    names = [n for n in pycnn.models.names() if fnmatch.fnmatch(n, opts.filter or "*")]
    if opts.quick:
        names = [n for n in names if n not in ("resnet101", "resnet152", "resnet34", "alexnet_torchvision")]
    elif getattr(opts, "default_run", False):  # make bench's time budget
        names = [n for n in names if n not in ("resnet101", "resnet152", "alexnet_torchvision")]
    rng = np.random.default_rng(0)
    rows = []
    folder = tempfile.mkdtemp(prefix="pycnn-bench-ncnn-")
    for name in names:
        g, built = pycnn.models.get(name), {}  # one Graph and one of each peer at every batch size
        for N in opts.batch:
            t0 = time.perf_counter()
            x = _input(g, name, N, rng)
            engines, notes = _engines(g, name, x, opts.threads, folder, suite == "peers", built)
            truth = engines["pycnn"]()
            row = dict(suite=suite, model=name, N=N, gflop=g.summary(N).flops / 1e9)
            ok = _check(row, engines, truth)
            slow = {k: engines.pop(k) for k in ("numpy",) if k in engines}
            timed = _time(engines, ok, opts)
            for k, fn in slow.items():
                if ok[k]:
                    timed[k] = time_once(fn)
            _record(row, timed, N)
            for k, v in notes.items():
                row[f"{k}_status"] = v
            if suite == "models" and N == opts.batch[0]:
                row["profile"] = profile_rows(g.profile(x, runs=3, warmup=1))
            row["bench_s"] = time.perf_counter() - t0
            rows.append(row)
            print(
                f"  {name} N={N}: "
                + ", ".join(f"{k} {row[k + '_ms']:.2f} ms" for k in ENGINES + ("numpy",) if row.get(k + "_ms")),
                flush=True,
            )
    if suite == "models":
        rows += run_onnx_networks(opts, rng)
    return rows


def _onnx_engines(name, N, threads, rng):
    """pycnn, onnxruntime and PyTorch on one torchvision network (bench/torchvision_zoo.py)."""
    import onnxruntime as ort

    from . import torchvision_zoo as zoo

    m = zoo.torch_model(name)
    data = zoo.export_onnx(m, name)
    g = pycnn.load_onnx(data, name=name)
    x = rng.standard_normal(zoo.input_shape(name, N), dtype=np.float32)
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    sess = ort.InferenceSession(data, so, providers=["CPUExecutionProvider"])
    engines = {
        "pycnn": lambda: g(x),
        "torch": lambda: zoo.torch_forward(m, x),
        "onnxruntime": lambda: sess.run(None, {"x": x})[0],
    }
    return g, x, engines


def run_onnx_networks(opts, rng):
    """torchvision's networks through ONNX; rows as run_networks', model 'onnx:<name>'."""
    from . import torchvision_zoo as zoo

    try:
        zoo.import_torchvision()
    except ImportError as e:
        print(f"  torchvision networks skipped: {e}")
        return []
    every = getattr(opts, "all", False)
    names = list(zoo.NETWORKS) if every else list(zoo.QUICK)
    names = [
        n for n in names if fnmatch.fnmatch(f"onnx:{n}", opts.filter or "*") or fnmatch.fnmatch(n, opts.filter or "*")
    ]
    rows = []
    for name in names:
        for N in opts.batch if every else opts.batch[:1]:
            t0 = time.perf_counter()
            g, x, engines = _onnx_engines(name, N, opts.threads, rng)
            truth = engines["pycnn"]()
            row = dict(suite="models", model=f"onnx:{name}", N=N, gflop=g.summary(N).flops / 1e9)
            _record(row, _time(engines, _check(row, engines, truth), opts), N)
            row["ncnn_status"] = "not run (ONNX)"
            row["bench_s"] = time.perf_counter() - t0
            rows.append(row)
            print(
                f"  onnx:{name} N={N}: "
                + ", ".join(f"{k} {row[k + '_ms']:.2f} ms" for k in engines if row.get(k + "_ms")),
                flush=True,
            )
    return rows


def print_networks(rows):
    print("\nWhole networks: median latency per batch (ms) and speed-up = peer time / pycnn time (> 1: pycnn faster)")
    print(
        f"{'model':<20}{'N':>3}{'pycnn':>10}{'torch':>10}{'onnxrt':>10}{'ncnn':>10}"
        f"{'xtorch':>8}{'xonnxrt':>8}{'xncnn':>8}{'img/s':>9}"
    )
    for r in rows:

        def ms(k):
            return f"{r[k + '_ms']:10.2f}" if r.get(k + "_ms") else f"{r.get(k + '_status', 'n/a')[:9]:>10}"

        def ratio(k):
            return f"{r['speed_vs_' + k]:8.2f}" if r.get("speed_vs_" + k) else f"{'-':>8}"

        print(
            f"{r['model']:<20}{r['N']:>3}{ms('pycnn')}{ms('torch')}{ms('onnxruntime')}{ms('ncnn')}"
            f"{ratio('torch')}{ratio('onnxruntime')}{ratio('ncnn')}{r.get('pycnn_img_s', 0):9.1f}"
        )
        if r.get("numpy_ms"):
            print(f"{'':<23}NumPy reference (float32, one run): {r['numpy_ms']:.1f} ms")
    for r in rows:
        if r.get("profile"):
            top = sorted(r["profile"], key=lambda s: -s["ms"])[:5]
            print(
                f"  {r['model']} N={r['N']} slowest steps: "
                + "; ".join(f"{s['step']} {s['ms']:.2f} ms ({s['algo']})" for s in top)
            )


def run_peers(opts):
    return run_networks(opts, "peers")
