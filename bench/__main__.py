"""python -m bench SUITE [options]

Suites: sgemm, layers, functional (pycnn.conv2d with default arguments vs F.conv2d), pool,
threads, models (whole networks vs PyTorch, onnxruntime, ncnn, with the per-layer breakdown),
peers (the same plus the NumPy reference), default (= sgemm, layers, pool, threads, models;
batch 1 and 8), gpu (the CUDA kernels and networks against cuBLAS, cuDNN and PyTorch on a GPU;
--device cuda_emu runs its code on the CPU emulator).
Results: a table on stdout and results.json (machine, threads, versions, command line, rows)
in --out.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path


def main(argv=None):
    ap = argparse.ArgumentParser(
        prog="python -m bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("suite", nargs="+", help="sgemm, layers, functional, pool, threads, models, peers, gpu or default")
    ap.add_argument(
        "--device", default="cuda", choices=("cuda", "cuda_emu"), help="gpu suite: the device (default cuda)"
    )
    ap.add_argument("--threads", type=int, default=2, help="threads for pycnn and every peer (default 2)")
    ap.add_argument("--batch", type=int, nargs="+", default=None, help="batch sizes (default 1 8)")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds per comparison (default 3)")
    ap.add_argument("--filter", default=None, help="glob on layer ids, e.g. 'resnet.*'")
    ap.add_argument("--quick", action="store_true", help="every third layer, batch 1 only")
    ap.add_argument(
        "--all",
        action="store_true",
        help="models: every torchvision network through ONNX (default: the depthwise-bound three at batch 1)",
    )
    ap.add_argument("--no-numpy", action="store_true", help="leave the NumPy im2col baseline out")
    ap.add_argument(
        "--jit", action="store_true", help="layers: also time algo='numba', 'numba_im2col' and 'reference' (slow)"
    )
    ap.add_argument("--out", default="bench/results/latest", help="folder for results.json")
    ap.add_argument(
        "--compare",
        metavar="OLD.json",
        default=None,
        help="show the change of every pycnn time against an earlier results.json",
    )
    opts = ap.parse_args(argv)
    if opts.batch is None:
        opts.batch = [1] if opts.quick else [1, 8]

    # Threads are fixed before any engine (NumPy's OpenBLAS included) starts its pool (OpenBLAS's
    # spin after each call: bench/__init__.py).
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, str(opts.threads))
    import numpy as np  # noqa: F401  (after the environment above)

    import pycnn

    from . import peers, suites

    pycnn.set_num_threads(opts.threads)
    peers.set_threads(opts.threads)

    names = []
    for s in opts.suite:
        names += suites.DEFAULT if s == "default" else [s]
    # `make bench`'s 10-minute budget (venv, build and this run, 2 cores): the default run leaves
    # ResNet-101/152 and torchvision's AlexNet out of the models suite (`python -m bench models`
    # runs every network), times each layer for 0.1 s per engine instead of 0.15 (medians of at
    # least 3 calls either way) and the layers' NumPy reference by one call.
    opts.default_run = "default" in opts.suite
    unknown = [s for s in names if s not in suites.SUITES]
    if unknown:
        ap.error(f"unknown suite(s) {unknown}; choose from {sorted(suites.SUITES)} or default")

    meta = dict(
        started=suites.now(),
        command=" ".join([sys.executable, "-m", "bench", *sys.argv[1:]]),
        machine=platform.machine(),
        processor=_cpu_name(),
        cores=os.cpu_count(),
        threads=opts.threads,
        pycnn_isa=pycnn._C.get_isa(),
        rule_set=pycnn.select.rule_set(),  # the auto rule's thresholds (pycnn/select.py)
        cpu_isa=pycnn._C.cpu_isa(),
        l2_bytes=pycnn._C.l2_cache_bytes(),  # one core's L2: direct_oc's weight groups fit it
        # The ISA caps the run was made under (the AVX2 path measured on an AVX-512 machine: pycnn,
        # OpenBLAS and oneDNN each capped; onnxruntime cannot be).
        caps={k: os.environ[k] for k in ("PYCNN_ISA", "OPENBLAS_CORETYPE", "ONEDNN_MAX_CPU_ISA") if k in os.environ},
        isa_peak_gflops=_fma_peaks(pycnn, opts.threads),
        python=platform.python_version(),
        versions=peers.available(),
        batch=opts.batch,
    )
    print(
        f"pycnn bench: {meta['processor']}, {opts.threads} threads, ISA {meta['pycnn_isa']} "
        f"(auto rule set {meta['rule_set']}), peers {meta['versions']}"
    )
    peaks, caps = meta["isa_peak_gflops"], meta["caps"] or "none"
    print(f"FMA peak per ISA (GFLOP/s, {opts.threads} threads): {peaks}; caps {caps}")
    results = {"meta": meta, "rows": []}
    t_all = time.perf_counter()
    for name in names:
        print(f"\n== {name}")
        t0 = time.perf_counter()
        run, show = suites.SUITES[name]
        rows = run(opts)
        show(rows)
        print(f"({name}: {time.perf_counter() - t0:.0f} s)")
        results["rows"] += rows
    meta["elapsed_s"] = time.perf_counter() - t_all
    sg = [r[k] for r in results["rows"] if r["suite"] == "sgemm" for k in ("pycnn_gflops", "numpy_gflops") if k in r]
    if sg:  # the FP32 peak as measured in this run: the best SGEMM rate, ours or NumPy's
        meta["peak_gflops"] = max(sg)
        print(f"\nFP32 peak measured in this run (best SGEMM, pycnn or NumPy): {max(sg):.0f} GFLOP/s")
    out = Path(opts.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=1, default=_json_default))
    print(f"\nresults: {out / 'results.json'}")
    try:
        from .plots import draw

        for f in draw(json.loads(json.dumps(results, default=_json_default)), out):
            print(f"plot: {f}")
    except ImportError as e:  # matplotlib is in the [bench] extra
        print(f"no plots: {e}")
    if opts.compare:
        from .compare import compare

        with open(opts.compare) as f:
            print("\n" + compare(json.load(f), json.loads(json.dumps(results, default=_json_default))))


def _fma_peaks(pycnn, threads) -> dict:
    """The FP32 FMA peak of each ISA this CPU runs, on `threads` threads (pycnn._C.fma_peak: 12
    independent FMA chains per thread), measured now."""
    out = {}
    for isa in ("generic", "avx2", "avx512"):
        if pycnn._config.ISAS.index(isa) <= pycnn._config.ISAS.index(pycnn._C.cpu_isa()):
            out[isa] = round(max(pycnn._C.fma_peak(threads, 10_000_000, isa) for _ in range(3)), 1)
    return out


def _json_default(o):
    import numpy as np

    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    raise TypeError(type(o))


def _cpu_name():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


if __name__ == "__main__":
    main()
