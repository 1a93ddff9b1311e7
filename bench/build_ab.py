"""In-process A/B of two builds of pycnn on a torchvision network exported to ONNX or a lecture
network (pycnn.models, the same weights in both): this checkout (new) against an older build
(old) imported under another name, blocks of runs taking turns,
medians (bench/timing.compare). For compiled changes, where a switch in Python cannot turn the change off.

    git worktree add /tmp/old <commit> && make -C /tmp/old build
    mkdir -p /tmp/oldpkg && cp -r /tmp/old/pycnn /tmp/oldpkg/pycnn_old
    python -m bench.build_ab /tmp/oldpkg mnasnet1_0 --batch 1

(the package imports itself relatively, so the copy runs as pycnn_old beside pycnn). Both builds
load the same ONNX file; their outputs are compared before timing (docs/performance.md)."""

import argparse
import importlib

import numpy as np

import pycnn
import pycnn.models

from . import networks, old_build
from . import torchvision_zoo as zoo
from .timing import compare


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("old", help="a folder holding the older build's package, renamed (see --name)")
    ap.add_argument("network", choices=sorted(zoo.NETWORKS) + pycnn.models.names())
    ap.add_argument("--name", default="pycnn_old", help="the older package's name in that folder")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args(argv)
    old = old_build.builds(args.old, args.name)["old"]
    if args.network in zoo.NETWORKS:
        onnx_bytes = zoo.export_onnx(zoo.torch_model(args.network), args.network)
        g_new, g_old = pycnn.load_onnx(onnx_bytes), old.load_onnx(onnx_bytes)
        x = np.random.default_rng(0).standard_normal(zoo.input_shape(args.network, args.batch), dtype=np.float32)
    else:
        g_new = pycnn.models.get(args.network)
        g_old = importlib.import_module(args.name + ".models").get(args.network)
        g_old.load_state_dict(g_new.state_dict())
        x = networks._input(g_new, args.network, args.batch, np.random.default_rng(0))
    # within 1e-4 of the output's scale: with random weights Inception's logits reach 1e12, and
    # an element that cancels to 1e9 differs in its 4th digit between summation orders
    want = g_old(x)
    np.testing.assert_allclose(g_new(x), want, rtol=1e-4, atol=1e-5 + 1e-4 * float(np.abs(want).max()))

    t = compare({"old": lambda: g_old(x), "new": lambda: g_new(x)}, rounds=args.rounds, target_s=0.5, min_samples=20)
    ma, mb = t["old"]["median_s"] * 1e3, t["new"]["median_s"] * 1e3
    print(
        f"{args.network} batch {args.batch}, ISA {pycnn._C.get_isa()}, 2 threads: old {ma:.3f} ms, "
        f"new {mb:.3f} ms (medians of {t['old']['samples']}), {ma / mb:.3f}x"
    )


if __name__ == "__main__":
    main()
