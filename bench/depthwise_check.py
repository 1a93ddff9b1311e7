"""The depthwise layers of MobileNet V2, EfficientNet-B0 and ConvNeXt-Tiny at batch 1: pycnn's
depthwise kernel (prepared, algo='depthwise') against PyTorch's F.conv2d with groups=C, same
process, 2 threads, medians: `python -m bench.depthwise_check` (docs/performance.md, Depthwise)."""

import numpy as np

import pycnn

from .timing import compare

# (channels, map size, kernel, stride)
LAYERS = [
    (32, 112, 3, 1),
    (96, 112, 3, 2),
    (144, 56, 3, 1),
    (144, 56, 3, 2),
    (384, 14, 3, 1),
    (960, 7, 3, 1),
    (240, 28, 5, 1),
    (96, 56, 7, 1),
    (768, 7, 7, 1),
]


def main():
    import torch

    torch.set_num_threads(2)
    pycnn.set_num_threads(2)
    rng = np.random.default_rng(0)
    print(f"ISA {pycnn._C.get_isa()}, 2 threads; speed = torch time / pycnn time")
    for C, H, R, st in LAYERS:
        x = rng.standard_normal((1, C, H, H), dtype=np.float32)
        w = rng.standard_normal((C, 1, R, R), dtype=np.float32)
        p = pycnn.prepare_conv(w, padding=R // 2, stride=st, groups=C, algo="depthwise")
        tx, tw = torch.from_numpy(x), torch.from_numpy(w)

        def peer():
            return torch.nn.functional.conv2d(tx, tw, padding=R // 2, stride=st, groups=C)

        t = compare({"pycnn": lambda: p(x), "torch": peer}, rounds=3, target_s=0.2, max_reps=50, min_samples=5)
        a, b = t["pycnn"]["median_s"] * 1e3, t["torch"]["median_s"] * 1e3
        gbs = (x.nbytes + x.nbytes / st / st) / 1e6 / a
        print(f"{C:4d}@{H:<3d} {R}x{R} s{st}: pycnn {a:.3f} ms, torch {b:.3f} ms, speed {b / a:.2f}x ({gbs:.1f} GB/s)")


if __name__ == "__main__":
    main()
