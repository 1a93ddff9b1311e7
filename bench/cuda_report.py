"""Resources of every CUDA kernel for sm_90 without a GPU: `nvcc -Xptxas -v` per kernels/cuda/*.cu
(registers, shared memory, stack frame, spills), and from those the occupancy each kernel reaches
on an H200 at the block size its launcher uses. Fails (exit 1) when a kernel spills or a kernel has
no block size listed here.

    python -m bench.cuda_report [--out docs/cuda_resources.md] [--json FILE]     (make cuda-report)
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ARCH = "sm_90"

# sm_90 per multiprocessor (CUDA occupancy rules): the H200's Hopper SM.
SM = {"regs": 65536, "reg_unit": 256, "warps": 64, "blocks": 32, "smem": 228 * 1024, "smem_block_reserved": 1024}

# Threads per block each launcher uses (kernels/cuda/*.cu); a kernel missing here fails the report.
BLOCK = {
    "relu_kernel1": 256,
    "add_kernel1": 256,
    "bias_act_kernel1": 256,
    "channel_affine_kernel1": 256,
    "unary_kernel1": 256,
    "binary_kernel1": 256,
    "channel_norm_kernel1": 256,
    "sgemm_kernel1": 256,
    "sgemm_kernel2": 256,
    "im2col_kernel1": 256,
    "conv2d_igemm_kernel1": 256,
    "conv2d_direct_kernel1": 128,
    "winograd_filter_kernel1": 128,
    "winograd_input_kernel1": 128,
    "winograd_output_kernel1": 128,
    "max_pool2d_kernel1": 256,
    "avg_pool2d_kernel1": 256,
    "global_avg_pool_kernel1": 256,
    "lrn_kernel1": 256,
    "softmax_kernel1": 256,
    "concat_copy_kernel1": 256,
    "selftest_reverse_kernel": 256,
    "selftest_block_shared_kernel": 64,
    "selftest_warp_kernel": 64,
    "selftest_dynamic_shared_kernel": 256,
    "selftest_cp_async_kernel": 256,
    "selftest_atomic_kernel": 96,
}


def nvcc() -> str | None:
    for cand in (shutil.which("nvcc"), os.path.join(os.environ.get("CUDA_HOME", "/usr/local/cuda"), "bin", "nvcc")):
        if cand and os.path.exists(cand):
            return cand
    return None


def demangle(names: list) -> list:
    tool = shutil.which("c++filt")
    if not tool:
        return names
    out = subprocess.run([tool], input="\n".join(names), capture_output=True, text=True).stdout.split("\n")
    return out[: len(names)]


def compile_report(cu: Path, compiler: str, tmp: str) -> list:
    """[{kernel, file, registers, smem, stack, spill_stores, spill_loads}] of one source."""
    cmd = [compiler, f"-arch={ARCH}", "-O3", "-std=c++17", "-Xptxas", "-v", "-c", str(cu),
           "-I", str(ROOT / "kernels" / "include"), "-I", str(ROOT / "kernels" / "cuda"),
           "-o", os.path.join(tmp, cu.stem + ".o")]  # fmt: skip
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"nvcc failed on {cu.name}:\n{r.stderr}")
    rows, cur = [], None
    for line in r.stderr.splitlines():
        m = re.search(r"Compiling entry function '([^']+)' for '(\w+)'", line)
        if m:
            cur = {"mangled": m.group(1), "file": cu.name, "registers": 0, "smem": 0, "stack": 0,
                   "spill_stores": 0, "spill_loads": 0}  # fmt: skip
            rows.append(cur)
            continue
        if cur is None:
            continue
        m = re.search(r"(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads", line)
        if m:
            cur["stack"], cur["spill_stores"], cur["spill_loads"] = map(int, m.groups())
        m = re.search(r"Used (\d+) registers", line)
        if m:
            cur["registers"] = int(m.group(1))
            s = re.search(r"(\d+) bytes smem", line)
            cur["smem"] = int(s.group(1)) if s else 0
    for row, name in zip(rows, demangle([r["mangled"] for r in rows])):
        row["kernel"] = name
    return rows


def base_name(kernel: str) -> str:
    """pycnn::cuda::winograd_input_kernel1<4>(...) -> winograd_input_kernel1."""
    head = kernel.split("(")[0]
    head = re.sub(r"<.*>", "", head)
    return head.split("::")[-1].replace("void ", "").strip()


def occupancy(regs: int, smem: int, threads: int) -> dict:
    warps = -(-threads // 32)
    regs_per_warp = -(-max(regs, 1) * 32 // SM["reg_unit"]) * SM["reg_unit"]
    by_regs = SM["regs"] // (regs_per_warp * warps)
    by_smem = SM["smem"] // (smem + SM["smem_block_reserved"]) if smem else 1 << 30
    by_warps = SM["warps"] // warps
    blocks = min(by_regs, by_smem, by_warps, SM["blocks"])
    limiter = min(
        (("warps", by_warps), ("blocks", SM["blocks"]), ("registers", by_regs), ("shared memory", by_smem)),
        key=lambda t: t[1],
    )[0]
    return {"blocks_per_sm": blocks, "occupancy": blocks * warps / SM["warps"], "limited_by": limiter}


def report() -> list:
    compiler = nvcc()
    if compiler is None:
        raise SystemExit("cuda_report: nvcc not found (PATH or $CUDA_HOME/bin)")
    sources = sorted((ROOT / "kernels" / "cuda").glob("*.cu"))
    with tempfile.TemporaryDirectory() as tmp, ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        rows = [r for rs in pool.map(lambda cu: compile_report(cu, compiler, tmp), sources) for r in rs]
    for r in rows:
        r["name"] = base_name(r["kernel"])
        r["threads"] = BLOCK.get(r["name"])
        if r["threads"]:
            r.update(occupancy(r["registers"], r["smem"], r["threads"]))
    return sorted(rows, key=lambda r: (r["file"], r["kernel"]))


def markdown(rows: list) -> str:
    lines = [
        "# CUDA kernels: resources for sm_90 (generated by `make cuda-report`, bench/cuda_report.py)",
        "",
        "`nvcc -arch=sm_90 -O3 -Xptxas -v` per source; occupancy on an H200 multiprocessor (65536 registers,",
        "228 KiB shared memory, 64 warps, 32 blocks) at the block size the launcher uses. Static shared",
        "memory only (no kernel here takes dynamic shared memory but the emulator's self-test).",
        "",
        "| file | kernel | threads | registers | smem B | stack B | spills B | blocks/SM | occupancy | limited by |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for r in rows:
        kname = r["name"] + (re.search(r"<[^>]*>", r["kernel"]).group(0) if "<" in r["kernel"].split("(")[0] else "")
        lines.append(
            f"| {r['file']} | `{kname}` | {r['threads']} | {r['registers']} | {r['smem']} | {r['stack']} | "
            f"{r['spill_stores'] + r['spill_loads']} | {r['blocks_per_sm']} | {r['occupancy']:.0%} | "
            f"{r['limited_by']} |"
        )
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", help="write the Markdown table here")
    ap.add_argument("--json", help="write the rows as JSON here")
    args = ap.parse_args(argv)
    rows = report()
    missing = sorted({r["name"] for r in rows if r["threads"] is None})
    if missing:
        print(f"cuda_report: no block size listed for {missing} (bench/cuda_report.py BLOCK)", file=sys.stderr)
        return 1
    text = markdown(rows)
    print(text)
    if args.out:
        Path(args.out).write_text(text)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    spills = [r["kernel"] for r in rows if r["spill_stores"] or r["spill_loads"]]
    if spills:
        print(f"cuda_report: kernels that spill: {spills}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
