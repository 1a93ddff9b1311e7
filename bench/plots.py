"""PNG plots of a bench run: `python -m bench.plots results.json [outdir]` (make bench draws them).

gflops_b<N>.png   GFLOP/s per conv layer: pycnn's algorithms and the peers, batch N;
roofline.png      achieved GFLOP/s against arithmetic intensity (FLOPs / bytes of input, weights
                  and output) for pycnn auto and the peers, under the roofs of the FP32 peak
                  (the best SGEMM rate in the same run) and the memory bandwidth (the copy speed
                  of the largest pooling input in the same run).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from pycnn.models import CONV_LAYERS  # noqa: E402

SERIES = ["direct", "im2col", "winograd_f4", "auto", "torch", "onnxruntime", "ncnn"]


def _bytes(layer, N):
    Ho, Wo = layer.out_size()
    return 4.0 * (
        N * layer.C * layer.H * layer.W + layer.K * layer.C // layer.groups * layer.R * layer.S + N * layer.K * Ho * Wo
    )


def draw(res, outdir) -> list[str]:
    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    rows = [r for r in res["rows"] if r["suite"] == "layers"]
    files = []
    for N in sorted({r["N"] for r in rows}):
        sub = [r for r in rows if r["N"] == N]
        fig, ax = plt.subplots(figsize=(18, 6))
        width = 0.8 / len(SERIES)
        for i, name in enumerate(SERIES):
            ys = [r["gflop"] * 1e3 / r[f"{name}_ms"] if r.get(f"{name}_ms") else 0 for r in sub]
            ax.bar([j + i * width for j in range(len(sub))], ys, width, label=name)
        ax.set_xticks([j + 0.4 for j in range(len(sub))])
        ax.set_xticklabels([r["layer"] for r in sub], rotation=90, fontsize=7)
        ax.set_ylabel("GFLOP/s (effective: direct-convolution FLOPs / time)")
        ax.set_title(f"conv layers, batch {N}, {res['meta']['threads']} threads, {res['meta']['processor']}")
        ax.legend(ncol=len(SERIES), fontsize=7)
        fig.tight_layout()
        f = out / f"gflops_b{N}.png"
        fig.savefig(f, dpi=90)
        plt.close(fig)
        files.append(str(f))

    sg = [r.get("pycnn_gflops", 0) for r in res["rows"] if r["suite"] == "sgemm"]
    sg += [r.get("numpy_gflops", 0) for r in res["rows"] if r["suite"] == "sgemm"]
    pool = [r for r in res["rows"] if r["suite"] == "pool" and "copy_gbs" in r]
    if rows and sg and pool:
        peak = max(sg)
        bw = max(pool, key=lambda r: r["bytes"])["copy_gbs"]
        layers = {l.id: l for l in CONV_LAYERS}
        fig, ax = plt.subplots(figsize=(8, 6))
        for name, marker in (("auto", "o"), ("torch", "s"), ("onnxruntime", "^"), ("ncnn", "v")):
            pts = [
                (r["gflop"] * 1e9 / _bytes(layers[r["layer"]], r["N"]), r["gflop"] * 1e3 / r[f"{name}_ms"])
                for r in rows
                if r.get(f"{name}_ms") and r["layer"] in layers
            ]
            if pts:
                ax.scatter(*zip(*pts), marker=marker, s=18, label=f"{'pycnn auto' if name == 'auto' else name}")
        xs = [0.1, peak / bw, 1e4]
        ax.plot(
            xs,
            [min(peak, x * bw) for x in xs],
            "k-",
            lw=1,
            label=f"roof: {peak:.0f} GFLOP/s, {bw:.0f} GB/s (measured in this run)",
        )
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("arithmetic intensity (FLOP / byte of input + weights + output)")
        ax.set_ylabel("GFLOP/s (effective)")
        ax.set_title(
            "roofline: every lecture conv layer, batch 1 and 8\n"
            "(effective rates count direct-conv FLOPs: Winograd can pass the roof)",
            fontsize=10,
        )
        ax.legend(fontsize=8)
        fig.tight_layout()
        f = out / "roofline.png"
        fig.savefig(f, dpi=90)
        plt.close(fig)
        files.append(str(f))
    files += _draw_gpu(res, out)
    return files


def _draw_gpu(res, out) -> list[str]:
    """The gpu suite: per network and batch, pycnn's time beside PyTorch eager's (and the CUDA
    graph replay and torch.compile where measured)."""
    nets = [r for r in res["rows"] if r["suite"] == "gpu" and r.get("kind") == "network"]
    if not nets:
        return []
    series = [k for k in ("pycnn_ms", "pycnn_graph_ms", "torch_ms", "compile_ms") if any(k in r for r in nets)]
    fig, ax = plt.subplots(figsize=(max(6, len(nets)), 5))
    width = 0.8 / len(series)
    for i, k in enumerate(series):
        ax.bar([j + i * width for j in range(len(nets))], [r.get(k, 0) for r in nets], width, label=k[:-3])
    ax.set_xticks([j + 0.4 for j in range(len(nets))])
    ax.set_xticklabels([f"{r['net']} b{r['N']}" for r in nets], rotation=60, fontsize=7)
    ax.set_yscale("log")
    ax.set_ylabel("ms per batch (median, CUDA events)")
    ax.set_title(f"networks on {nets[0]['device']}")
    ax.legend(fontsize=7)
    fig.tight_layout()
    f = out / "gpu_networks.png"
    fig.savefig(f, dpi=90)
    plt.close(fig)
    return [str(f)]


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    path = argv[0] if argv else "bench/results/latest/results.json"
    outdir = argv[1] if len(argv) > 1 else str(Path(path).parent)
    with open(path) as f:
        for name in draw(json.load(f), outdir):
            print(name)


if __name__ == "__main__":
    main()
