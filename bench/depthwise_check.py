"""The depthwise layers of MobileNet V2, EfficientNet-B0, MNASNet, ShuffleNet V2 and ConvNeXt-Tiny:
pycnn's two depthwise kernels against PyTorch's F.conv2d with groups=C, same process, 2 threads unless told,
medians: `python -m bench.depthwise_check [--batch N] [--threads T]` (docs/performance.md, Depthwise; PYCNN_ISA
caps the ISA). Columns: depthwise (per NCHW plane), depthwise_c16 on NCHW tensors (transposed in
and out per 16-channel block), depthwise_c16 on channel-blocked x and y (what a Graph runs between
1x1 convs), and PyTorch. With --old DIR an older build's package (see bench/build_ab.py) runs the
blocked call in the same blocks and old / new is printed: `python -m bench.depthwise_check --old
/tmp/oldpkg`. --activation relu fuses a ReLU into every conv (PyTorch: F.relu after it)."""

import argparse

import numpy as np

import pycnn

from . import old_build
from .timing import compare

# (channels, map size, kernel, stride)
LAYERS = [
    (16, 112, 3, 2),  # MobileNet V3 Small's first: small enough to have run on one thread
    (16, 56, 3, 1),
    (32, 112, 3, 1),
    (96, 112, 3, 2),
    (144, 56, 3, 1),
    (144, 56, 3, 2),
    (192, 28, 3, 1),
    (384, 14, 3, 1),
    (576, 14, 3, 2),
    (960, 7, 3, 1),
    (240, 28, 5, 1),
    (672, 14, 5, 2),
    (1152, 7, 5, 1),
    (116, 28, 3, 1),  # ShuffleNet: not a multiple of 16
    (72, 56, 3, 1),  # MNASNet
    (96, 56, 7, 1),
    (768, 7, 7, 1),
    (80, 56, 3, 2),  # MobileNet V3 Small's 72 channels, padded in the network
    (96, 28, 5, 2),
    (288, 14, 5, 2),
    (48, 112, 3, 2),  # MNASNet
    (240, 28, 5, 2),
]


def _blocked(x):
    N, C, H, W = x.shape
    return np.ascontiguousarray(x.reshape(N, C // 16, 16, H, W).transpose(0, 1, 3, 4, 2))


def layer_check_args(argv, with_old=False, with_activation=False):
    """--batch and --threads of a layer check against PyTorch (this one, grouped_check): both
    engines told the thread count, the run's header line printed; with_old: --old and --name;
    with_activation: --activation."""
    import torch

    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    if with_old:
        ap.add_argument("--old", help="a folder holding an older build's package named --name")
        ap.add_argument("--name", default="pycnn_old")
    if with_activation:
        ap.add_argument("--activation", choices=("none", "relu"), default="none", help="fused into every conv")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    pycnn.set_num_threads(args.threads)
    isa, nt = pycnn._C.get_isa(), args.threads
    print(f"ISA {isa}, {nt} threads, batch {args.batch}; medians in ms; speed = torch / best pycnn")
    return args


def main(argv=None):
    import torch

    args = layer_check_args(argv, with_old=True, with_activation=True)
    act = None if args.activation == "none" else args.activation
    old = None
    if args.old:
        old = old_build.builds(args.old, args.name, args.threads)["old"]
    rng = np.random.default_rng(0)
    head = f"{'layer':<16} {'plane':>8} {'c16':>8} {'c16 blk':>8} {'torch':>8} {'speed':>6}"
    print(head + (f"  {'old blk':>8} old/new" if old else ""))
    for C, H, R, st in LAYERS:
        x = rng.standard_normal((args.batch, C, H, H), dtype=np.float32)
        w = rng.standard_normal((C, 1, R, R), dtype=np.float32)
        cands = {}
        for algo in ("depthwise", "depthwise_c16"):
            call = pycnn.prepare_conv(w, padding=R // 2, stride=st, groups=C, algo=algo, activation=act).bind(
                [x.shape], None
            )
            cands[algo] = lambda call=call: call(x)
        if C % 16 == 0:
            conv = pycnn.prepare_conv(w, padding=R // 2, stride=st, groups=C, algo="depthwise_c16", activation=act)
            blk = conv.bind([x.shape], None, layout=(3, "depthwise_c16"))
            xb = _blocked(x)
            cands["blocked"] = lambda: blk(xb)
            if old is not None:
                oconv = old.prepare_conv(w, padding=R // 2, stride=st, groups=C, algo="depthwise_c16", activation=act)
                oblk = oconv.bind([x.shape], None, layout=(3, "depthwise_c16"))
                np.testing.assert_allclose(oblk(xb), blk(xb), rtol=1e-5, atol=1e-5)
                cands["old blocked"] = lambda: oblk(xb)
        tx, tw = torch.from_numpy(x), torch.from_numpy(w)
        F = torch.nn.functional
        if act:
            cands["torch"] = lambda: F.relu(F.conv2d(tx, tw, padding=R // 2, stride=st, groups=C), inplace=True)
        else:
            cands["torch"] = lambda: F.conv2d(tx, tw, padding=R // 2, stride=st, groups=C)
        t = compare(cands, rounds=5 if old else 3, target_s=0.2, max_reps=50, min_samples=5)
        ms = {k: v["median_s"] * 1e3 for k, v in t.items()}
        best = min(v for k, v in ms.items() if k not in ("torch", "old blocked"))
        blk_ms = f"{ms['blocked']:8.3f}" if "blocked" in ms else f"{'-':>8}"
        ab = f"  {ms['old blocked']:8.3f} {ms['old blocked'] / ms['blocked']:.3f}x" if "old blocked" in ms else ""
        print(
            f"{C:4d}@{H:<3d} {R}x{R} s{st}  {ms['depthwise']:8.3f} {ms['depthwise_c16']:8.3f} {blk_ms} "
            f"{ms['torch']:8.3f} {ms['torch'] / best:6.2f}{ab}",
            flush=True,
        )


if __name__ == "__main__":
    main()
