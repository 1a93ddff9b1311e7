"""The CUDA kernels against the GPU's libraries, side by side in one run (CUDA events, medians
after warm-up), as the CUDA kernels issue asks:
  * SGEMM at 4096^3 against cuBLAS FP32 (CuPy's matmul; CuPy leaves TF32 off unless CUPY_TF32=1);
  * the lecture's conv layers at batch 32, every pycnn algorithm that runs the shape, against cuDNN
    through PyTorch with TF32 off and benchmark mode on (TF32 on reported beside it);
  * pooling in GB/s against a device-to-device copy of the same input.
Ratios are peer time / pycnn time (> 1: pycnn faster). Writes results.json under --out.

    python -m bench.gpu_kernels --out DIR                     (on the GPU machine: bench/gpu_check.sh)
    python -m bench.gpu_kernels --device cuda_emu --quick     (the same code on the CPU emulator, tiny sizes)

On 'cuda_emu' the times are the emulator's (host clock), meaningful only as a check that the bench
runs; peers are skipped there.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path

import numpy as np

import pycnn
from pycnn import registry


def median_ms(be, fn, reps: int, warmup: int = 3) -> float:
    for _ in range(warmup):
        fn()
    return statistics.median(be.time_ms(fn) for _ in range(reps))


def torch_ms(fn, reps: int, warmup: int = 3) -> float:
    import torch

    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    ts = []
    for _ in range(reps):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        b.synchronize()
        ts.append(a.elapsed_time(b))
    return statistics.median(ts)


def random(be, shape, rng):
    return be.memory.from_host(rng.standard_normal(shape).astype(np.float32))


def bench_sgemm(be, n: int, reps: int, rng) -> dict:
    m = be.memory
    A, B = random(be, (n, n), rng), random(be, (n, n), rng)
    C = m.empty((n, n))
    nat, st = be.native, m.stream()

    def ours():
        nat.sgemm(2, n, n, n, m.ptr(A), n, 0, m.ptr(B), n, 0, False, m.ptr(C), n, 0, 1, 0, 0, 0, 0, 0, False, st)

    row = {"M": n, "N": n, "K": n, "pycnn_ms": median_ms(be, ours, reps)}
    row["pycnn_tflops"] = 2 * n**3 / row["pycnn_ms"] / 1e9
    want = m.to_host(A).astype(np.float64) @ m.to_host(B).astype(np.float64) if n <= 1024 else None
    if want is not None:
        row["rel_err"] = float(np.abs(m.to_host(C) - want).max() / np.abs(want).max())
    if be.device == "cuda":
        cp = m.xp
        row["cublas_ms"] = median_ms(be, lambda: cp.matmul(A, B, out=C), reps)
        row["ratio"] = row["cublas_ms"] / row["pycnn_ms"]
    return row


def bench_conv(be, layer, batch: int, reps: int, rng, torch_peer: bool) -> dict:
    x = random(be, (batch, layer.C, layer.H, layer.W), rng)
    w = random(be, (layer.K, layer.C // layer.groups, layer.R, layer.S), rng)
    s = layer.shape(batch)
    row = {"layer": f"{layer.net}.{layer.name}", "N": batch, "gflop": s.flops / 1e9, "algos": {}}
    for a in registry.conv_algos(be.device, registry.NATIVE):
        if not a.supports(s):
            continue
        conv = be.prepare_conv(w, None, layer.stride, layer.pad, 1, layer.groups, algo=a.name)
        row["algos"][a.name] = median_ms(be, lambda c=conv: c(x), reps)
    row["best"] = min(row["algos"], key=row["algos"].get)
    row["auto"] = be.prepare_conv(w, None, layer.stride, layer.pad, 1, layer.groups).resolve(s)
    if torch_peer:
        import torch

        tx, tw = torch.from_dlpack(x), torch.from_dlpack(w)
        conv = lambda: torch.nn.functional.conv2d(tx, tw, None, layer.stride, layer.pad, 1, layer.groups)  # noqa: E731
        for tf32 in (False, True):
            torch.backends.cudnn.allow_tf32 = tf32
            row["cudnn_tf32_ms" if tf32 else "cudnn_ms"] = torch_ms(conv, reps)
        torch.backends.cudnn.allow_tf32 = False
        row["ratio_best"] = row["cudnn_ms"] / row["algos"][row["best"]]
        if "winograd_f4" in row["algos"]:
            row["ratio_winograd_f4"] = row["cudnn_ms"] / row["algos"]["winograd_f4"]
    return row


def bench_pool(be, layer, batch: int, reps: int, rng) -> dict:
    m = be.memory
    x = random(be, (batch, layer.C, layer.H, layer.W), rng)
    if layer.kind == "max":
        fn = lambda: be.max_pool2d(x, layer.kernel, layer.stride, layer.pad, 1, layer.ceil_mode)  # noqa: E731
    else:
        fn = lambda: be.avg_pool2d(x, layer.kernel, layer.stride, layer.pad, layer.ceil_mode)  # noqa: E731
    y = fn()
    nbytes = 4 * (int(np.prod(x.shape)) + int(np.prod(y.shape)))
    row = {"layer": f"{layer.net}.{layer.name}", "N": batch, "pycnn_ms": median_ms(be, fn, reps)}
    row["pycnn_gbs"] = nbytes / row["pycnn_ms"] / 1e6
    if be.device == "cuda":
        dst = m.empty(x.shape)
        copy_ms = median_ms(be, lambda: m.xp.copyto(dst, x), reps)
        row["copy_gbs"] = 2 * 4 * int(np.prod(x.shape)) / copy_ms / 1e6
        row["fraction_of_copy"] = row["pycnn_gbs"] / row["copy_gbs"]
    return row


def geomean(xs):
    xs = [v for v in xs if v and v > 0]
    return math.exp(sum(map(math.log, xs)) / len(xs)) if xs else float("nan")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda", choices=("cuda", "cuda_emu"))
    ap.add_argument("--out", default=None, help="directory for results.json")
    ap.add_argument("--quick", action="store_true", help="small sizes and few layers (a check that it runs)")
    ap.add_argument("--batch", type=int, default=None)
    ap.add_argument("--reps", type=int, default=None)
    args = ap.parse_args(argv)
    be = pycnn.backend(args.device)
    rng = np.random.default_rng(0)
    quick = args.quick or args.device == "cuda_emu"
    batch = args.batch or (1 if quick else 32)
    reps = args.reps or (2 if quick else 20)
    torch_peer = False
    if args.device == "cuda":
        try:
            import torch

            torch_peer = torch.cuda.is_available()
            torch.backends.cudnn.benchmark = True
            torch.backends.cuda.matmul.allow_tf32 = False
        except ImportError:
            pass
    t0 = time.time()
    res = {"device": args.device, "batch": batch, "reps": reps, "quick": quick, "pycnn": pycnn.__version__}
    if args.device == "cuda":
        import cupy

        p = cupy.cuda.runtime.getDeviceProperties(0)
        res["gpu"] = p["name"].decode() if isinstance(p["name"], bytes) else str(p["name"])
        res["torch"] = torch.__version__ if torch_peer else None
    res["sgemm"] = [bench_sgemm(be, 64 if quick else 4096, reps, rng)]
    layers = pycnn.models.CONV_LAYERS
    if quick:
        layers = [la for la in layers if la.net in ("lenet5", "convnetjs")]
    res["conv"] = [bench_conv(be, la, batch, reps, rng, torch_peer) for la in layers]
    pools = pycnn.models.POOL_LAYERS[:2] if quick else pycnn.models.POOL_LAYERS
    res["pool"] = [bench_pool(be, la, batch, reps, rng) for la in pools]
    res["seconds"] = time.time() - t0

    for r in res["sgemm"]:
        print(f"sgemm {r['M']}^3: pycnn {r['pycnn_ms']:.3f} ms ({r['pycnn_tflops']:.1f} TFLOP/s)", end="")
        print(f", cuBLAS {r['cublas_ms']:.3f} ms, ratio {r['ratio']:.2f}" if "ratio" in r else "")
    print(f"{'layer':28s} {'N':>3s} {'best':>14s} {'ms':>9s} {'cudnn':>9s} {'tf32':>9s} {'ratio':>6s}")
    for r in res["conv"]:
        best = r["algos"][r["best"]]
        extra = f"{r['cudnn_ms']:9.3f} {r['cudnn_tf32_ms']:9.3f} {r['ratio_best']:6.2f}" if "cudnn_ms" in r else ""
        print(f"{r['layer']:28s} {r['N']:3d} {r['best']:>14s} {best:9.3f} {extra}")
    if torch_peer:
        res["geomean_ratio_best"] = geomean(r["ratio_best"] for r in res["conv"])
        res["geomean_ratio_winograd_f4"] = geomean(r.get("ratio_winograd_f4") for r in res["conv"])
        print(
            f"geomean cudnn/best {res['geomean_ratio_best']:.2f}, "
            f"cudnn/winograd_f4 {res['geomean_ratio_winograd_f4']:.2f}"
        )
    for r in res["pool"]:
        extra = f", copy {r['copy_gbs']:.0f} GB/s, {r['fraction_of_copy']:.0%}" if "copy_gbs" in r else ""
        print(f"pool {r['layer']} N={r['N']}: {r['pycnn_gbs']:.1f} GB/s{extra}")
    if args.out:
        Path(args.out).mkdir(parents=True, exist_ok=True)
        (Path(args.out) / "results.json").write_text(json.dumps(res, indent=1))
        print(f"results: {Path(args.out) / 'results.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
