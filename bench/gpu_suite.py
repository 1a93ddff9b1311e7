"""The `gpu` suite (python -m bench gpu [--device cuda|cuda_emu]), side by side in one run:
  * the kernels (bench/gpu_kernels.py): SGEMM against cuBLAS, every conv algorithm on the
    lecture's layers against cuDNN through PyTorch (TF32 off, benchmark mode; TF32 on beside it),
    pooling in GB/s against a device copy;
  * whole networks at each batch: pycnn's DeviceGraph (plain, and replaying a CUDA graph) against
    PyTorch eager with cuDNN (TF32 off) and PyTorch with torch.compile where it compiles.
CUDA events after warm-up, medians; ratio = peer / pycnn (> 1: pycnn faster). Every engine's output
is checked against pycnn's before it is timed. On 'cuda_emu' (the CPU emulator) the same code runs
on small sizes without peers: a check that the suite works, not a measurement.
"""

from __future__ import annotations

import os
import statistics

import numpy as np

import pycnn

from . import gpu_kernels, networks

GPU_NETS = ("lenet5", "convnetjs", "kimcnn", "alphago", "alexnet", "googlenet", "resnet18", "resnet34", "resnet50",
            "resnet101", "resnet152")  # fmt: skip
EMU_NETS = ("lenet5", "convnetjs")
# torch.compile takes tens of seconds per network and batch: timed on these only, to keep the
# suite inside bench/gpu_check.sh's budget (PYCNN_BENCH_COMPILE="resnet18,googlenet" for others).
COMPILE_NETS = tuple(os.environ.get("PYCNN_BENCH_COMPILE", "resnet50").split(","))


def _net_row(be, name, N, reps, rng, peers: bool) -> dict:
    g = pycnn.models.get(name)
    x = networks._input(g, name, N, rng)  # the models suite's inputs: token ids for Kim's CNN
    m = be.memory
    xd = m.from_host(x) if x.dtype == np.float32 else m.xp.asarray(x)
    d = g.to(be.device)
    want = m.to_host(d(xd))
    row = {"suite": "gpu", "kind": "network", "net": name, "N": N, "device": be.device}
    row["pycnn_ms"] = gpu_kernels.median_ms(be, lambda: d(xd), reps)
    row["host_nodes"] = list(d.host_nodes)
    row["peak_mb"] = d.measure_peak(xd) / 2**20
    if be.device == "cuda" and not d.host_nodes:
        try:
            dg = g.to("cuda", cuda_graph=True)
            assert np.allclose(m.to_host(dg(xd)), want, rtol=1e-3, atol=1e-3 * np.abs(want).max())
            row["pycnn_graph_ms"] = gpu_kernels.median_ms(be, lambda: dg(xd), reps)
        except Exception as e:  # noqa: BLE001 - report why capture failed, keep the other numbers
            row["pycnn_graph_error"] = f"{type(e).__name__}: {e}"
    if peers:
        import torch

        from pycnn.models.torch_reference import torch_net

        tm = torch_net(name, g.state_dict()).cuda()
        tx = torch.from_dlpack(xd) if x.dtype == np.float32 else torch.from_numpy(x).cuda()
        torch.backends.cudnn.allow_tf32 = False
        with torch.inference_mode():
            y = tm(tx).float().cpu().numpy()
        ok = np.abs(y - want).max() <= 1e-3 * max(np.abs(want).max(), 1e-30)
        row["torch_ok"] = bool(ok)

        def eager():
            with torch.inference_mode():
                tm(tx)

        row["torch_ms"] = gpu_kernels.torch_ms(eager, reps)
        row["ratio_torch"] = row["torch_ms"] / row["pycnn_ms"]
        if name not in COMPILE_NETS:
            return row
        try:
            cm = torch.compile(tm)
            with torch.inference_mode():
                cm(tx)

            def compiled():
                with torch.inference_mode():
                    cm(tx)

            row["compile_ms"] = gpu_kernels.torch_ms(compiled, reps)
            row["ratio_compile"] = row["compile_ms"] / row["pycnn_ms"]
        except Exception as e:  # noqa: BLE001 - torch.compile fails on some machines: say why
            row["compile_error"] = f"{type(e).__name__}: {str(e)[:200]}"
    return row


def _gpu_name(be) -> str:
    if be.device != "cuda":
        return "the CPU emulator"
    cp = be.memory.xp
    name = cp.cuda.runtime.getDeviceProperties(cp.cuda.Device().id)["name"]
    return name.decode() if isinstance(name, bytes) else str(name)


def _progress(row: dict) -> dict:
    """One line per finished row, flushed: a run stopped at its time limit still shows what it measured."""
    keep = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in row.items() if k not in ("suite", "device")}
    print("gpu row:", keep, flush=True)
    return row


def run_gpu(opts) -> list:
    device = getattr(opts, "device", "cuda")
    if not pycnn.device.available(device):
        print(f"gpu suite: no {device!r} device here ({pycnn.cuda.why_not(device)}); "
              f"--device cuda_emu runs the suite's code on the CPU emulator")  # fmt: skip
        return []
    be = pycnn.backend(device)
    rng = np.random.default_rng(0)
    emu = device == "cuda_emu"
    peers = False
    if not emu:
        try:
            import torch

            peers = torch.cuda.is_available()
            torch.backends.cudnn.benchmark = True
        except ImportError:
            pass
    reps = 2 if emu else 20
    batches = [1] if emu else sorted(set(opts.batch) | {1, 32}) if opts.batch else [1, 32]
    rows = []
    for r in [gpu_kernels.bench_sgemm(be, 64 if emu else 4096, reps, rng)]:
        rows.append(_progress({"suite": "gpu", "kind": "sgemm", "device": device, "gpu": _gpu_name(be), **r}))
    layers = [la for la in pycnn.models.CONV_LAYERS if not emu or la.net in EMU_NETS]
    for N in [1] if emu else [1, 32]:
        for la in layers:
            row = gpu_kernels.bench_conv(be, la, N, reps, rng, peers)
            rows.append(_progress({"suite": "gpu", "kind": "conv", "device": device, **row}))
    for la in pycnn.models.POOL_LAYERS[: 2 if emu else None]:
        row = gpu_kernels.bench_pool(be, la, 1 if emu else 32, reps, rng)
        rows.append(_progress({"suite": "gpu", "kind": "pool", "device": device, **row}))
    for name in EMU_NETS if emu else GPU_NETS:
        for N in batches:
            rows.append(_progress(_net_row(be, name, N, reps, rng, peers)))
    return rows


def print_gpu(rows) -> None:
    if not rows:
        return
    for r in rows:
        if r["kind"] == "sgemm":
            extra = f", cuBLAS {r['cublas_ms']:.3f} ms, ratio {r['ratio']:.2f}" if "ratio" in r else ""
            where = f"{r['device']} ({r.get('gpu', '?')})"
            print(f"sgemm {r['M']}^3 on {where}: {r['pycnn_ms']:.3f} ms ({r['pycnn_tflops']:.2f} TFLOP/s){extra}")
    conv = [r for r in rows if r["kind"] == "conv"]
    print(f"\n{'layer':28s} {'N':>3s} {'best':>14s} {'ms':>9s} {'auto':>14s} {'cudnn':>9s} {'tf32':>9s} {'ratio':>6s}")
    for r in conv:
        extra = f"{r['cudnn_ms']:9.3f} {r['cudnn_tf32_ms']:9.3f} {r['ratio_best']:6.2f}" if "cudnn_ms" in r else ""
        print(f"{r['layer']:28s} {r['N']:3d} {r['best']:>14s} {r['algos'][r['best']]:9.3f} {r['auto']:>14s} {extra}")
    for N in sorted({r["N"] for r in conv}):
        ratios = [r["ratio_best"] for r in conv if r["N"] == N and "ratio_best" in r]
        if ratios:
            print(f"batch {N}: geomean cuDNN / best {gpu_kernels.geomean(ratios):.2f} over {len(ratios)} layers")
    for r in rows:
        if r["kind"] == "pool":
            extra = f", copy {r['copy_gbs']:.0f} GB/s ({r['fraction_of_copy']:.0%})" if "copy_gbs" in r else ""
            print(f"pool {r['layer']} N={r['N']}: {r['pycnn_gbs']:.1f} GB/s{extra}")
    nets = [r for r in rows if r["kind"] == "network"]
    print(f"\n{'network':12s} {'N':>3s} {'pycnn ms':>9s} {'graph ms':>9s} {'torch ms':>9s} {'compile':>9s} "
          f"{'torch/pycnn':>11s} {'peak MiB':>9s}")  # fmt: skip
    for r in nets:

        def f(k):
            return f"{r[k]:9.3f}" if k in r else f"{'-':>9s}"

        ratio = f"{r['ratio_torch']:11.2f}" if "ratio_torch" in r else f"{'-':>11s}"
        print(f"{r['net']:12s} {r['N']:3d} {f('pycnn_ms')} {f('pycnn_graph_ms')} {f('torch_ms')} {f('compile_ms')} "
              f"{ratio} {r['peak_mb']:9.1f}")  # fmt: skip
    med = [r["pycnn_ms"] for r in nets]
    if med:
        print(f"(median over networks of pycnn ms: {statistics.median(med):.3f})")


__all__ = ["run_gpu", "print_gpu", "GPU_NETS"]
