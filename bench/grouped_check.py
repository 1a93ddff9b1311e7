"""The grouped 3x3 layers of ResNeXt-50 32x4d and RegNetY-400MF: pycnn's dense kernels run per
group (im2col, direct_oc) against grouped_c16 and PyTorch's F.conv2d with the same groups, same
process, 2 threads unless told, medians: `python -m bench.grouped_check [--batch N] [--threads T]`
(docs/performance.md, Grouped conv2d; PYCNN_ISA caps the ISA). Columns: im2col, direct_oc,
grouped_c16 on NCHW tensors, grouped_c16 on channel-blocked x and y (what a Graph runs between
1x1 convs), PyTorch; GFLOP/s of the best pycnn column."""

import numpy as np

import pycnn

from .depthwise_check import _blocked, layer_check_args
from .timing import compare

# (channels, channels per group, map size, stride): the input map; output = size / stride
LAYERS = [
    (128, 4, 56, 1),  # ResNeXt-50 layer1
    (256, 8, 56, 2),  # layer2.0
    (256, 8, 28, 1),  # layer2
    (48, 8, 112, 2),  # RegNetY-400MF stage 1
    (112, 8, 28, 1),  # stage 2 (104 padded to 112)
    (208, 8, 28, 2),  # stage 3, first block
    (208, 8, 14, 1),  # stage 3
    (448, 8, 7, 1),  # stage 4 (440 padded to 448)
]


def main(argv=None):
    import torch

    args = layer_check_args(argv)
    rng = np.random.default_rng(0)
    cols = ("im2col", "direct_oc", "grouped_c16", "blocked", "torch")
    print(f"{'layer':<18} " + " ".join(f"{c:>11}" for c in cols) + f" {'GFLOP/s':>8} {'speed':>6}")
    for C, G, H, st in LAYERS:
        x = rng.standard_normal((args.batch, C, H, H), dtype=np.float32)
        w = (rng.standard_normal((C, G, 3, 3)) / np.sqrt(9 * G)).astype(np.float32)
        cands = {}
        for algo in ("im2col", "direct_oc", "grouped_c16"):
            call = pycnn.prepare_conv(w, padding=1, stride=st, groups=C // G, algo=algo).bind([x.shape], None)
            cands[algo] = lambda call=call: call(x)
        conv = pycnn.prepare_conv(w, padding=1, stride=st, groups=C // G, algo="grouped_c16")
        blk = conv.bind([x.shape], None, layout=(3, "grouped_c16"))
        xb = _blocked(x)
        cands["blocked"] = lambda: blk(xb)
        tx, tw = torch.from_numpy(x), torch.from_numpy(w)
        cands["torch"] = lambda: torch.nn.functional.conv2d(tx, tw, padding=1, stride=st, groups=C // G)
        t = compare(cands, rounds=3, target_s=0.2, max_reps=50, min_samples=5)
        ms = {k: v["median_s"] * 1e3 for k, v in t.items()}
        best = min(v for k, v in ms.items() if k != "torch")
        Ho = (H - 1) // st + 1
        gflops = 2.0 * args.batch * C * G * 9 * Ho * Ho / (best * 1e-3) / 1e9
        print(
            f"{C:4d}/{G}@{H:<3d} s{st}      " + " ".join(f"{ms[c]:11.3f}" for c in cols) + f" {gflops:8.1f}"
            f" {ms['torch'] / best:6.2f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
