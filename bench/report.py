"""Markdown summary of a bench results.json: `python -m bench.report [results.json]`.

The README's "Measured" section is this output for the run named in its first line.
"""

from __future__ import annotations

import json
import sys

from .timing import geomean


def _f(v, fmt="{:.2f}"):
    return fmt.format(v) if isinstance(v, (int, float)) else "-"


def render(res) -> str:
    m = res["meta"]
    out = [
        f"`{m['command'].split(' -m ')[-1].replace('bench', 'python -m bench', 1)}` on {m['processor']}, "
        f"{m['threads']} threads, pycnn ISA {m['pycnn_isa']}, {m['started']}; peers: "
        + ", ".join(f"{k} {v}" for k, v in m["versions"].items() if v)
        + ". Medians; ratios are "
        "peer time / pycnn time (> 1: pycnn faster), measured in the same run."
    ]
    rows = res["rows"]
    sg = [r for r in rows if r["suite"] == "sgemm" and "pycnn_gflops" in r]
    if sg:
        out += [
            "",
            "**SGEMM** (GFLOP/s)",
            "",
            "| shape (M x N x K) | pycnn | NumPy (OpenBLAS) | speed vs NumPy |",
            "|---|---:|---:|---:|",
        ]
        out += [
            f"| {r['name']} ({r['M']}x{r['N']}x{r['K']}) | {r['pycnn_gflops']:.0f} | {r['numpy_gflops']:.0f} | "
            f"{r['speed_vs_numpy']:.2f}x |"
            for r in sg
        ]
    ly = [r for r in rows if r["suite"] == "layers"]
    if ly:
        out += [
            "",
            "**Conv layers**: geometric mean over the lecture's layers of the speed ratio; "
            "best = the faster of direct and im2col per layer, auto = what `algo='auto'` chose",
            "",
            "| batch | layers | vs PyTorch (best / auto) | vs onnxruntime (best / auto) | vs ncnn (best / auto) "
            "| vs NumPy im2col (best / auto) |",
            "|---:|---:|---:|---:|---:|---:|",
        ]
        for N in sorted({r["N"] for r in ly}):
            sub = [r for r in ly if r["N"] == N]
            cells = []
            for peer in ("torch", "onnxruntime", "ncnn", "numpy"):
                cells.append(
                    f"{geomean([r.get(f'best_speed_vs_{peer}') for r in sub]):.2f}x / "
                    f"{geomean([r.get(f'auto_speed_vs_{peer}') for r in sub]):.2f}x"
                )
            out.append(f"| {N} | {len(sub)} | " + " | ".join(cells) + " |")
        wl = [r for r in ly if "wino_best_ms" in r]
        if wl:
            out += [
                "",
                "**Winograd on the 3x3 stride-1 layers** (best tile per layer; speed = peer time / ours)",
                "",
                "| layer | N | C->K | best tile | ms | vs onnxruntime | vs PyTorch | vs ncnn | auto chose |",
                "|---|---:|---|---|---:|---:|---:|---:|---|",
            ]
            from pycnn.models import CONV_LAYERS

            ck = {l.id: f"{l.C}->{l.K}" for l in CONV_LAYERS}
            for r in wl:
                out.append(
                    f"| {r['layer']} | {r['N']} | {ck.get(r['layer'], '')} | {r['wino_best_algo']} | "
                    f"{r['wino_best_ms']:.3f} | {_f(r.get('wino_speed_vs_onnxruntime'))}x | "
                    f"{_f(r.get('wino_speed_vs_torch'))}x | {_f(r.get('wino_speed_vs_ncnn'))}x | "
                    f"{r['auto_choice']} |"
                )
        peak = m.get("peak_gflops") or max(
            [r[k] for r in rows if r["suite"] == "sgemm" for k in ("pycnn_gflops", "numpy_gflops") if k in r],
            default=None,
        )
        out += [
            "",
            "<details><summary>Per layer (best of direct and im2col; % of the FP32 peak measured in "
            f"the same run{f', {peak:.0f} GFLOP/s' if peak else ''})</summary>",
            "",
            "| layer | N | best | ms | GFLOP/s | % peak | vs PyTorch | vs onnxruntime | vs ncnn | vs NumPy |",
            "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for r in ly:
            gf = r["gflop"] * 1e3 / r["best_ms"]
            out.append(
                f"| {r['layer']} | {r['N']} | {r['best_algo']} | {r['best_ms']:.3f} | {gf:.0f} | "
                f"{_f(100 * gf / peak if peak else None, '{:.0f}')} | {_f(r.get('best_speed_vs_torch'))} | "
                f"{_f(r.get('best_speed_vs_onnxruntime'))} | {_f(r.get('best_speed_vs_ncnn'))} | "
                f"{_f(r.get('best_speed_vs_numpy'))} |"
            )
        out += ["", "</details>"]
    po = [r for r in rows if r["suite"] == "pool" and "pycnn_ms" in r]
    if po:
        out += [
            "",
            "**Pooling** (max unless noted)",
            "",
            "| layer | N | pycnn ms | PyTorch ms | GB/s | copy GB/s | vs PyTorch |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        out += [
            f"| {r['layer']}{' (avg)' if r.get('kind') == 'avg' else ''} | {r['N']} | {r['pycnn_ms']:.3f} | "
            f"{_f(r.get('torch_ms'), '{:.3f}')} | {r['pycnn_gbs']:.1f} | {r['copy_gbs']:.1f} | "
            f"{_f(r.get('speed_vs_torch'))}x |"
            for r in po
        ]
        out.append(f"\nGeomean vs PyTorch: {geomean([r.get('speed_vs_torch') for r in po]):.2f}x")
    th = [r for r in rows if r["suite"] == "threads"]
    if th:
        out += [
            "",
            "**Two Python threads** (GIL released in kernels): the same calls serially with 1 OpenMP "
            "thread, from 2 Python threads with 1 OpenMP thread each, and serially with 2 OpenMP threads",
            "",
            "| layer | calls | serial, 1 thread (s) | 2 Python threads (s) | speed-up | 2 OpenMP threads speed-up |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        out += [
            f"| {r['layer']} | {r['calls']} | {r['serial_1omp_s']:.3f} | {r['2py_threads_1omp_s']:.3f} | "
            f"{r['speedup_2py']:.2f}x | {r['speedup_2omp']:.2f}x |"
            for r in th
        ]
    mo = [r for r in rows if r["suite"] in ("models", "peers") and "pycnn_ms" in r]
    if mo:
        out += [
            "",
            "**Whole networks** (median latency per batch in ms; speed = peer time / pycnn time, "
            "> 1: pycnn faster; PyTorch eager, onnxruntime on the network exported to ONNX, ncnn on the "
            "Graph written as .param/.bin, all FP32, same weights)",
            "",
            "| model | N | pycnn | PyTorch | onnxruntime | ncnn | vs PyTorch | vs onnxruntime | vs ncnn | img/s |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]

        def speed(r, k):  # from the times, so results.json files written before speed_vs_* read the same
            return f"{r[k + '_ms'] / r['pycnn_ms']:.2f}x" if r.get(k + "_ms") else "-"

        for r in mo:
            out.append(
                f"| {r['model']} | {r['N']} | {r['pycnn_ms']:.2f} | {_f(r.get('torch_ms'))} | "
                f"{_f(r.get('onnxruntime_ms'))} | {_f(r.get('ncnn_ms'))} | {speed(r, 'torch')} | "
                f"{speed(r, 'onnxruntime')} | {speed(r, 'ncnn')} | {r['pycnn_img_s']:.1f} |"
            )
    return "\n".join(out)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    path = argv[0] if argv else "bench/results/latest/results.json"
    with open(path) as f:
        print(render(json.load(f)))


if __name__ == "__main__":
    main()
