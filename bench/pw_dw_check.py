"""The expand 1x1 -> depthwise pairs of MobileNet V2, EfficientNet-B0 and MNASNet, run as two
channel-blocked kernels (direct_oc then depthwise_c16, the expansion written to an array that is
allocated once) and as the fused kernel (kernels/cpu/conv2d_pw_dw_c16.inl), same process,
interleaved, medians: `python -m bench.pw_dw_check [--batch N] [--threads T]`
(docs/performance.md, Depthwise; PYCNN_ISA caps the ISA). A Graph fuses the pairs whose
expansion is at least pycnn.graph.fuse_pw_dw.MIN_EXPANSION_BYTES."""

import argparse

import numpy as np

import pycnn
from pycnn._shapes import ConvShape
from pycnn.graph.fuse_pw_dw import MIN_EXPANSION_BYTES, _PwDw

from .depthwise_check import _blocked
from .timing import compare

# (input channels, expansion, map size, depthwise kernel, stride)
PAIRS = [
    (16, 96, 112, 3, 2),
    (32, 144, 56, 3, 1),
    (32, 144, 56, 3, 2),
    (16, 48, 112, 3, 2),  # MNASNet
    (32, 80, 56, 3, 1),  # MNASNet's 72, padded
    (32, 192, 28, 3, 1),
    (48, 240, 28, 5, 1),
    (96, 576, 14, 3, 1),
    (192, 1152, 7, 5, 1),
]


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    pycnn.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    N = args.batch
    print(f"ISA {pycnn._C.get_isa()}, {args.threads} threads, batch {N}; medians in ms; ReLU6 after both")
    print(f"{'pair':<24} {'MiB':>6} {'separate':>9} {'ring':>8} {'split':>8} {'speed':>6} {'graph fuses':>11}")
    for C, K, H, R, st in PAIRS:
        x = rng.standard_normal((N, C, H, H), dtype=np.float32)
        w1 = rng.standard_normal((K, C, 1, 1), dtype=np.float32) / np.sqrt(C)
        w2 = rng.standard_normal((K, 1, R, R), dtype=np.float32)
        pw = pycnn.prepare_conv(w1, bias=rng.standard_normal(K).astype(np.float32), algo="direct_oc")
        dw = pycnn.prepare_conv(w2, padding=R // 2, stride=st, groups=K, algo="depthwise_c16")
        pw.post = dw.post = (pycnn.layers._C_UNARY["clip"], 0.0, 6.0)
        c1 = pw.bind([x.shape], None, layout=(3, "direct_oc"))
        c2 = dw.bind([(N, K, H, H)], None, layout=(3, "depthwise_c16"))
        Ho = (H + 2 * (R // 2) - R) // st + 1
        xb = _blocked(x)
        mid = np.empty((N, K // 16, H, H, 16), np.float32)
        out = np.empty((N, K // 16, Ho, Ho, 16), np.float32)
        dws = ConvShape((N, K, H, H), w2.shape, st, R // 2, 1, K)
        ring = _PwDw(pw, dw, dws, out.shape, split=False)
        split = _PwDw(pw, dw, dws, out.shape, split=True)
        np.testing.assert_allclose(ring(xb), c2(c1(xb)), rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(split(xb), c2(c1(xb)), rtol=1e-4, atol=1e-4)
        t = compare(
            {
                "separate": lambda: c2(c1(xb, out=mid), out=out),
                "ring": lambda: ring(xb, out=out),
                "split": lambda: split(xb, out=out),
            },
            rounds=5,
            min_samples=9,
        )
        a, r, b = (t[k]["median_s"] * 1e3 for k in ("separate", "ring", "split"))
        mib = 4 * N * K * H * H / 2**20
        name = f"{C}->{K}@{H} {R}x{R}/{st}"
        fuses = "yes" if mib * 2**20 >= MIN_EXPANSION_BYTES else "no"
        print(f"{name:<24} {mib:6.1f} {a:9.3f} {r:8.3f} {b:8.3f} {a / b:6.2f} {fuses:>11}")


if __name__ == "__main__":
    main()
