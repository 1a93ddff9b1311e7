"""The suites: sgemm, layers (conv algorithms vs peers per layer), pool.

Every candidate's output is checked against a trusted result before it is timed (correctness
before timing); a candidate that disagrees is reported as WRONG and not timed.
"""

from __future__ import annotations

import fnmatch
import sys
import time

import numpy as np

import pycnn
from pycnn import _C, policy, reference, registry
from pycnn.models import CONV_LAYERS, POOL_LAYERS

from . import gpu_suite, networks
from . import peers as P
from .layer_data import layer_arrays
from .timing import PAUSE_S, compare, geomean, time_once


def _close(y, ref, tol):
    y = np.asarray(y, np.float64)
    ref = np.asarray(ref, np.float64)
    return y.shape == ref.shape and bool(np.all(np.abs(y - ref) <= tol * (1 + np.abs(ref))))


def _progress(i, n, label):
    """A progress bar on a terminal; in a log (no TTY) nothing, so logs stay readable."""
    if not sys.stdout.isatty():
        return
    width = 30
    done = int(width * (i + 1) / n)
    print(f"\r  [{'#' * done}{'.' * (width - done)}] {i + 1}/{n} {label:<40}", end="", flush=True)
    if i + 1 == n:
        print()


# ----------------------------------------------------------------------------- sgemm
SGEMM_SHAPES = [
    ("square2048", 2048, 2048, 2048),
    ("alexnet.conv2", 256, 729, 2400),
    ("alexnet.conv3", 384, 169, 2304),
    ("alexnet.conv4", 384, 169, 3456),
    ("alexnet.conv5", 256, 169, 3456),
    ("resnet.3x3_64_56", 64, 3136, 576),
    ("resnet.3x3_128_28", 128, 784, 1152),
    ("resnet.3x3_256_14", 256, 196, 2304),
    ("resnet.3x3_512_7", 512, 49, 4608),
]


def run_sgemm(opts):
    rows = []
    shapes = [s for s in SGEMM_SHAPES if fnmatch.fnmatch(s[0], opts.filter or "*")]
    rng = np.random.default_rng(0)
    for i, (name, M, N, K) in enumerate(shapes):
        _progress(i, len(shapes), name)
        a = rng.standard_normal((M, K), dtype=np.float32)
        b = rng.standard_normal((K, N), dtype=np.float32)
        c = np.empty((M, N), np.float32)
        _C.sgemm(a, b, c)
        ref = a @ b
        if not _close(c, ref, 1e-3):
            rows.append(dict(suite="sgemm", name=name, status="WRONG"))
            continue
        t = compare({"pycnn": lambda: _C.sgemm(a, b, c), "numpy": lambda: a @ b}, rounds=opts.rounds)
        flops = 2.0 * M * N * K
        rows.append(
            dict(
                suite="sgemm",
                name=name,
                M=M,
                N=N,
                K=K,
                pycnn_ms=t["pycnn"]["median_s"] * 1e3,
                numpy_ms=t["numpy"]["median_s"] * 1e3,
                pycnn_gflops=flops / t["pycnn"]["median_s"] / 1e9,
                numpy_gflops=flops / t["numpy"]["median_s"] / 1e9,
                speed_vs_numpy=t["numpy"]["median_s"] / t["pycnn"]["median_s"],
            )
        )
    return rows


def print_sgemm(rows):
    print(f"\n{'SGEMM':<20}{'M':>6}{'N':>6}{'K':>6}{'pycnn GF/s':>12}{'numpy GF/s':>12}{'speed vs numpy':>16}")
    for r in rows:
        if r.get("status") == "WRONG":
            print(f"{r['name']:<20} WRONG RESULT")
            continue
        print(
            f"{r['name']:<20}{r['M']:>6}{r['N']:>6}{r['K']:>6}{r['pycnn_gflops']:>12.1f}"
            f"{r['numpy_gflops']:>12.1f}{r['speed_vs_numpy']:>15.2f}x"
        )


# ----------------------------------------------------------------------------- conv layers
# Every native algorithm of the registry, and auto; --jit adds the Python-side ones (numba's JIT
# and the NumPy reference, 10-100x slower: not in the default).
ALGOS = registry.names(kind=registry.NATIVE) + ["auto"]
BASE_ALGOS = ("direct", "im2col")  # issue 2's "best of direct and im2col"
JIT_ALGOS = registry.names(kind=registry.PYTHON)
WINOGRAD_ALGOS = [a for a in ALGOS if a.startswith("winograd")]  # the "Winograd" columns of the report


def _layer_problems(opts):
    """(layer, N, x, w, b) for every lecture layer the options select, at each batch size, with a
    progress bar (the arrays: bench/layer_data.py)."""
    layers = [l for l in CONV_LAYERS if fnmatch.fnmatch(l.id, opts.filter or "*")]
    if opts.quick:
        layers = layers[::3]
    rng = np.random.default_rng(0)
    jobs = [(l, N) for N in opts.batch for l in layers]
    for i, (layer, N) in enumerate(jobs):
        _progress(i, len(jobs), f"{layer.id} N={N}")
        yield (layer, N, *layer_arrays(layer, N, rng))


LAYER_TARGET_S = 0.15  # timed seconds per engine and layer, over the rounds
LAYER_TARGET_S_DEFAULT_RUN = 0.1  # `make bench`'s 10-minute budget (bench/__main__.py)


def _engine_of_layer_candidate(name):
    """pycnn's native algorithms share one OpenMP team (no pause between their blocks); the
    peers and the JIT algorithms are engines of their own."""
    return "pycnn" if name in ALGOS else name


def run_layers(opts):
    rows = []
    for layer, N, x, w, b in _layer_problems(opts):
        # pycnn runs with weights prepared once (as a Graph, or an onnxruntime session, does).
        cands = {}
        shape = layer.shape(N)
        wino = registry.CONV["winograd"].supports(shape)
        for algo in ALGOS + (JIT_ALGOS if opts.jit else []):
            if not registry.CONV[algo].supports(shape):
                continue
            conv = pycnn.prepare_conv(w, b, layer.stride, layer.pad, groups=layer.groups, algo=algo)
            cands[algo] = (lambda c: lambda: c(x))(conv)
        cands.update(P.make_conv_peers(x, w, b, layer, opts.threads, with_numpy=not opts.no_numpy))
        # Correctness first: torch if present, else our reference.
        truth = (
            cands["torch"]()
            if "torch" in cands
            else reference.conv2d(x, w, b, layer.stride, layer.pad, 1, layer.groups)
        )
        status = {name: _close(fn(), truth, 1e-3) for name, fn in cands.items()}
        default_run = getattr(opts, "default_run", False)
        # The default run times the NumPy reference (the oracle, not a contender) by one call, as
        # the networks suite does, not in blocks beside the engines.
        once = {"numpy"} if default_run else set()
        timed = compare(
            {k: v for k, v in cands.items() if status[k] and k not in once},
            rounds=opts.rounds,
            target_s=LAYER_TARGET_S_DEFAULT_RUN if default_run else LAYER_TARGET_S,
            engine=_engine_of_layer_candidate,
        )
        for k in once & {k for k in cands if status[k]}:
            timed[k] = time_once(cands[k])
        flops = layer.flops(N)
        row = dict(suite="layers", layer=layer.id, N=N, gflop=flops / 1e9, auto_choice=policy.choose(shape))
        for name in cands:
            if not status[name]:
                row[f"{name}_ms"] = None
                row[f"{name}_status"] = "WRONG"
                continue
            row[f"{name}_ms"] = timed[name]["median_s"] * 1e3
            row[f"{name}_gflops"] = flops / timed[name]["median_s"] / 1e9
        best = min((row[f"{a}_ms"], a) for a in BASE_ALGOS if row.get(f"{a}_ms"))
        row["best_ms"], row["best_algo"] = best
        if wino:
            row["wino_best_ms"], row["wino_best_algo"] = min(
                (row[f"{a}_ms"], a) for a in WINOGRAD_ALGOS if row.get(f"{a}_ms")
            )
        for peer in P.PEER_NAMES:
            if row.get(f"{peer}_ms"):
                row[f"best_speed_vs_{peer}"] = row[f"{peer}_ms"] / row["best_ms"]
                row[f"auto_speed_vs_{peer}"] = row[f"{peer}_ms"] / row["auto_ms"]
                if wino:
                    row[f"wino_speed_vs_{peer}"] = row[f"{peer}_ms"] / row["wino_best_ms"]
        rows.append(row)
    return rows


def print_layers(rows):
    """One row per (layer, batch, pycnn algorithm): its median time, GFLOP/s and speed ratio to
    each peer measured in the same run (peer time / our time: > 1 means pycnn is faster)."""
    peers = ("numpy", "torch", "onnxruntime", "ncnn")
    print(
        f"\n{'layer':<28}{'N':>3}{'GFLOP':>8} {'algo':<14}{'ms':>9}{'GF/s':>8}"
        f"{'numpy ms':>10}{'torch ms':>10}{'ort ms':>10}{'ncnn ms':>10}{'x numpy':>9}{'x torch':>9}{'x ort':>8}"
        f"{'x ncnn':>8}"
    )
    for r in rows:
        for algo in ALGOS + JIT_ALGOS:
            if f"{algo}_ms" not in r:
                continue
            ms = r.get(f"{algo}_ms")
            name = f"{algo}>{r['auto_choice']}" if algo == "auto" else algo
            if not ms:
                print(f"{r['layer']:<28}{r['N']:>3}{r['gflop']:8.3f} {name:<14}{'WRONG':>9}")
                continue
            cells = ""
            for peer in peers:
                pm = r.get(f"{peer}_ms")
                cells += f"{pm:10.3f}" if pm else f"{'-':>10}"
            ratios = ""
            for peer, w in zip(peers, (9, 9, 8, 8)):
                pm = r.get(f"{peer}_ms")
                ratios += f"{pm / ms:{w - 1}.2f}x" if pm else f"{'-':>{w}}"
            print(
                f"{r['layer']:<28}{r['N']:>3}{r['gflop']:8.3f} {name:<14}{ms:9.3f}{r['gflop'] * 1e3 / ms:8.1f}"
                f"{cells}{ratios}"
            )
    for N in sorted({r["N"] for r in rows}):
        sub = [r for r in rows if r["N"] == N]
        parts = []
        for peer in P.PEER_NAMES:
            g = geomean([r.get(f"best_speed_vs_{peer}") for r in sub])
            ga = geomean([r.get(f"auto_speed_vs_{peer}") for r in sub])
            parts.append(f"vs {peer}: best {g:.2f}x, auto {ga:.2f}x")
        print(
            f"geomean speed at batch {N} ({len(sub)} layers; best = faster of direct and im2col per layer; "
            f">1 means pycnn is faster): " + "; ".join(parts)
        )
        wsub = [r for r in sub if "wino_best_ms" in r]
        if wsub:
            parts = [
                f"vs {peer}: {geomean([r.get(f'wino_speed_vs_{peer}') for r in wsub]):.2f}x "
                f"(min {min(r.get(f'wino_speed_vs_{peer}', 99) for r in wsub):.2f}x)"
                for peer in ("torch", "onnxruntime", "ncnn")
                if any(f"{peer}_ms" in r for r in wsub)
            ]
            print(f"  3x3 stride-1 layers ({len(wsub)}), best Winograd tile: " + "; ".join(parts))


# ----------------------------------------------------------------------------- pooling
def run_pool(opts):
    rows = []
    layers = [l for l in POOL_LAYERS if fnmatch.fnmatch(l.id, opts.filter or "*")]
    rng = np.random.default_rng(0)
    jobs = [(l, N) for N in opts.batch for l in layers]
    for i, (l, N) in enumerate(jobs):
        _progress(i, len(jobs), f"{l.id} N={N}")
        x = rng.standard_normal((N, l.C, l.H, l.W), dtype=np.float32)
        if l.kind == "max":
            ours = lambda: pycnn.max_pool2d(x, l.kernel, l.stride, l.pad, ceil_mode=l.ceil_mode)
            ref = reference.max_pool2d(x, l.kernel, l.stride, l.pad, l.ceil_mode)
        else:
            ours = lambda: pycnn.avg_pool2d(x, l.kernel, l.stride, l.pad, l.ceil_mode)
            ref = reference.avg_pool2d(x, l.kernel, l.stride, l.pad, l.ceil_mode)
        cands = {"pycnn": ours, "copy": lambda: x.copy()}
        if P.torch is not None:
            tx = P.torch.from_numpy(x)
            fn = P.TF.max_pool2d if l.kind == "max" else P.TF.avg_pool2d
            cands["torch"] = lambda: fn(tx, l.kernel, l.stride, l.pad, ceil_mode=l.ceil_mode).numpy()
        if not _close(ours(), ref, 1e-5):
            rows.append(dict(suite="pool", layer=l.id, N=N, status="WRONG"))
            continue
        t = compare(cands, rounds=opts.rounds)
        y = ours()
        nbytes = x.nbytes + y.nbytes
        row = dict(suite="pool", layer=l.id, N=N, kind=l.kind, bytes=nbytes)
        for k, v in t.items():
            row[f"{k}_ms"] = v["median_s"] * 1e3
        row["pycnn_gbs"] = nbytes / t["pycnn"]["median_s"] / 1e9
        row["copy_gbs"] = 2 * x.nbytes / t["copy"]["median_s"] / 1e9
        if "torch" in t:
            row["speed_vs_torch"] = t["torch"]["median_s"] / t["pycnn"]["median_s"]
        rows.append(row)
    return rows


def print_pool(rows):
    print(f"\n{'pool layer':<22}{'N':>3}{'pycnn ms':>10}{'torch ms':>10}{'GB/s':>8}{'copy GB/s':>11}{'vs torch':>10}")
    for r in rows:
        if r.get("status") == "WRONG":
            print(f"{r['layer']:<22}{r['N']:>3} WRONG RESULT")
            continue
        vt = f"{r['speed_vs_torch']:9.2f}x" if "speed_vs_torch" in r else f"{'-':>10}"
        tm = f"{r['torch_ms']:10.3f}" if "torch_ms" in r else f"{'-':>10}"
        print(f"{r['layer']:<22}{r['N']:>3}{r['pycnn_ms']:10.3f}{tm}{r['pycnn_gbs']:8.1f}{r['copy_gbs']:11.1f}{vt}")
    g = geomean([r.get("speed_vs_torch") for r in rows])
    print(f"geomean speed vs torch: {g:.2f}x")


# ----------------------------------------------------------------------------- threads
def run_threads(opts):
    """GIL release: the same number of conv calls made (a) one after another in one Python thread
    with 1 OpenMP thread, (b) by two Python threads at once, each with 1 OpenMP thread, (c) in
    one Python thread with 2 OpenMP threads. (b) only scales if the kernels release the GIL."""
    import threading

    rng = np.random.default_rng(0)
    rows = []
    for lid in ("alphago.conv2-12", "resnet.3x3_64_56", "alexnet.conv2"):
        layer = next(l for l in CONV_LAYERS if l.id == lid)
        x = rng.standard_normal((1, layer.C, layer.H, layer.W), dtype=np.float32)
        w = rng.standard_normal((layer.K, layer.C, layer.R, layer.S), dtype=np.float32)
        conv = pycnn.prepare_conv(w, None, layer.stride, layer.pad)
        calls = 40

        def serial():
            for _ in range(calls):
                conv(x)

        def two_python_threads():
            ts = [threading.Thread(target=lambda: [conv(x) for _ in range(calls // 2)]) for _ in range(2)]
            for t in ts:
                t.start()
            for t in ts:
                t.join()

        res = {}
        for name, fn, omp in (
            ("serial_1omp", serial, 1),
            ("2py_threads_1omp", two_python_threads, 1),
            ("serial_2omp", serial, 2),
        ):
            pycnn.set_num_threads(omp)
            fn()
            ts = []
            for _ in range(opts.rounds):
                time.sleep(PAUSE_S)
                t0 = time.perf_counter()
                fn()
                ts.append(time.perf_counter() - t0)
            res[name] = float(np.median(ts))
        pycnn.set_num_threads(opts.threads)
        rows.append(
            dict(
                suite="threads",
                layer=lid,
                calls=calls,
                **{f"{k}_s": v for k, v in res.items()},
                speedup_2py=res["serial_1omp"] / res["2py_threads_1omp"],
                speedup_2omp=res["serial_1omp"] / res["serial_2omp"],
            )
        )
    return rows


def print_threads(rows):
    print(
        f"\n{'layer':<22}{'calls':>6}{'1 thread s':>12}{'2 py thr s':>12}{'2 OMP thr s':>13}"
        f"{'2 py speed-up':>15}{'2 OMP speed-up':>16}"
    )
    for r in rows:
        print(
            f"{r['layer']:<22}{r['calls']:>6}{r['serial_1omp_s']:12.3f}{r['2py_threads_1omp_s']:12.3f}"
            f"{r['serial_2omp_s']:13.3f}{r['speedup_2py']:14.2f}x{r['speedup_2omp']:15.2f}x"
        )


# ----------------------------------------------------------------------------- functional conv2d
def run_functional(opts):
    """pycnn.conv2d(x, w, b, stride, padding) with default arguments, called in a loop on the same
    weights as a user calls F.conv2d, against torch.nn.functional.conv2d in the same run. The
    weights' transformed copy is kept between calls (pycnn/_weight_cache.py), so each call pays
    the content hash of w and the kernel; the first call (the transform) is in the warm-up."""
    rows = []
    for layer, N, x, w, b in _layer_problems(opts):
        cands = {"pycnn": lambda: pycnn.conv2d(x, w, b, layer.stride, layer.pad, 1, layer.groups)}
        peers = P.make_conv_peers(x, w, b, layer, opts.threads, with_numpy=False)
        if "torch" not in peers:
            continue
        cands["torch"] = peers["torch"]
        if not _close(cands["pycnn"](), cands["torch"](), 1e-3):
            rows.append(dict(suite="functional", layer=layer.id, N=N, status="WRONG"))
            continue
        timed = compare(cands, rounds=opts.rounds)
        row = dict(suite="functional", layer=layer.id, N=N, gflop=layer.flops(N) / 1e9)
        for k, v in timed.items():
            row[f"{k}_ms"] = v["median_s"] * 1e3
        row["speed_vs_torch"] = row["torch_ms"] / row["pycnn_ms"]
        rows.append(row)
    return rows


def print_functional(rows):
    print(
        "\nFunctional conv2d (pycnn.conv2d with defaults vs F.conv2d, same weights every call; speed = torch / pycnn)"
    )
    print(f"{'layer':<28}{'N':>3}{'pycnn ms':>10}{'torch ms':>10}{'speed':>8}")
    for r in rows:
        if r.get("status"):
            print(f"{r['layer']:<28}{r['N']:>3}  {r['status']}")
            continue
        print(f"{r['layer']:<28}{r['N']:>3}{r['pycnn_ms']:10.3f}{r['torch_ms']:10.3f}{r['speed_vs_torch']:7.2f}x")
    for N in sorted({r["N"] for r in rows}):
        sub = [r["speed_vs_torch"] for r in rows if r["N"] == N and "speed_vs_torch" in r]
        if sub:
            print(f"batch {N}: geomean {geomean(sub):.2f}x, worst {min(sub):.2f}x over {len(sub)} layers")


SUITES = {
    "sgemm": (run_sgemm, print_sgemm),
    "functional": (run_functional, print_functional),
    "layers": (run_layers, print_layers),
    "pool": (run_pool, print_pool),
    "threads": (run_threads, print_threads),
    "models": (networks.run_networks, networks.print_networks),
    "peers": (networks.run_peers, networks.print_networks),
    "gpu": (gpu_suite.run_gpu, gpu_suite.print_gpu),
}
DEFAULT = ["sgemm", "layers", "pool", "threads", "models"]


def now():
    return time.strftime("%Y-%m-%d %H:%M:%S")
