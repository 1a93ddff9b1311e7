"""In-process A/B of the functional API in two builds (this checkout against an older build's
package, as bench/build_ab.py loads it): pycnn.conv2d(x, w, b, stride, padding) with default
arguments on every lecture layer (pycnn.models.CONV_LAYERS, --filter a glob of their ids), as a
user calls F.conv2d in a loop on the same weights, blocks of calls taking turns, medians
(bench/timing.compare). What a change to the functional call's Python side (validation, the
choice, the weight cache) or to the kernels it picks is worth per layer.

    python -m bench.functional_ab /tmp/oldpkg --batch 1 [--filter 'googlenet.*'] [--name pycnn_old]

Prints old and new ms and old / new per layer, then the geometric mean; the two builds' outputs
are compared first (a different choice may round differently: within 1e-4 relative)."""

import argparse
import fnmatch

import numpy as np

import pycnn.models

from . import old_build
from .layer_data import layer_arrays
from .timing import compare, geomean


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("old", help="a folder holding the older build's package, renamed (see --name)")
    ap.add_argument("--name", default="pycnn_old")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--filter", default="*", help="a glob of the layer ids (pycnn.models.CONV_LAYERS)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    builds = old_build.builds(args.old, args.name, args.threads)
    rng = np.random.default_rng(0)
    ratios = []
    for la in pycnn.models.CONV_LAYERS:
        if not fnmatch.fnmatch(la.id, args.filter):
            continue
        x, w, b = layer_arrays(la, args.batch, rng)
        calls = {name: (lambda P=P: P.conv2d(x, w, b, la.stride, la.pad, 1, la.groups)) for name, P in builds.items()}
        y_old, y_new = calls["old"](), calls["new"]()
        np.testing.assert_allclose(y_new, y_old, rtol=1e-4, atol=1e-4 * float(np.abs(y_old).max()))
        timed = compare(calls, rounds=args.rounds, engine=lambda name: "omp")  # one OpenMP runtime
        t_old, t_new = timed["old"]["median_s"], timed["new"]["median_s"]
        ratios.append(t_old / t_new)
        print(f"{la.id:<28} N={args.batch}: old {t_old * 1e3:.3f} ms, new {t_new * 1e3:.3f} ms, {t_old / t_new:.3f}x")
    if not ratios:
        ap.error(f"--filter {args.filter!r}: no lecture layer matches")
    print(f"{len(ratios)} layers, batch {args.batch}, {args.threads} threads: geomean {geomean(ratios):.3f}x")


if __name__ == "__main__":
    main()
