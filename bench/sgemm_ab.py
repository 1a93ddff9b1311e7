"""In-process A/B of `_C.sgemm` (C = A B, A packed per call as NumPy's matmul does) in two builds
(this checkout against an older build's package, as bench/build_ab.py loads it), with NumPy's
OpenBLAS in the same blocks: medians (bench/timing.compare).

    PYCNN_ISA=avx2 OPENBLAS_CORETYPE=Haswell python -m bench.sgemm_ab /tmp/oldpkg resnet.3x3_512_7 64,49,576

Shapes are names from the sgemm suite (bench/suites.py SGEMM_SHAPES) or M,N,K; none = all of the
suite's. Prints GFLOP/s of old, new and NumPy, new / NumPy and old / new (> 1: new faster)."""

import argparse

import numpy as np

import pycnn

from . import old_build
from .suites import SGEMM_SHAPES
from .timing import compare


def _shapes(specs):
    named = {s[0]: s[1:] for s in SGEMM_SHAPES}
    if not specs:
        return list(SGEMM_SHAPES)
    out = []
    for spec in specs:
        if spec in named:
            out.append((spec,) + named[spec])
        else:
            M, N, K = (int(v) for v in spec.split(","))
            out.append((spec, M, N, K))
    return out


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("old", help="a folder holding the older build's package, renamed (see --name)")
    ap.add_argument("shapes", nargs="*", help="suite names or M,N,K (default: the sgemm suite's)")
    ap.add_argument("--name", default="pycnn_old")
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args(argv)
    builds = old_build.builds(args.old, args.name)
    print(f"ISA {pycnn._C.get_isa()}, 2 threads (NumPy: {np.__version__}, its BLAS as configured)")
    rng = np.random.default_rng(0)
    for name, M, N, K in _shapes(args.shapes):
        a = rng.standard_normal((M, K), dtype=np.float32)
        b = rng.standard_normal((K, N), dtype=np.float32)
        ref = a @ b
        cs = {}
        for bname, P in builds.items():
            c = cs[bname] = np.empty((M, N), np.float32)
            P._C.sgemm(a, b, c)
            np.testing.assert_allclose(c, ref, rtol=1e-3, atol=1e-2 * np.sqrt(K))
        calls = {bname: (lambda P=P, c=c: P._C.sgemm(a, b, c)) for (bname, P), c in zip(builds.items(), cs.values())}
        calls["numpy"] = lambda: a @ b
        t = {k: v["median_s"] for k, v in compare(calls, rounds=args.rounds, min_samples=20).items()}
        gf = {k: 2.0 * M * N * K / v / 1e9 for k, v in t.items()}
        print(
            f"{name:<20} {M}x{N}x{K}: old {gf['old']:.1f}, new {gf['new']:.1f}, numpy {gf['numpy']:.1f} GFLOP/s; "
            f"new/numpy {t['numpy'] / t['new']:.3f}x, old/new {t['old'] / t['new']:.3f}x",
            flush=True,
        )


if __name__ == "__main__":
    main()
