"""In-process A/B of the bound linear call (a Graph's fully connected step: y = x W^T + b) in two
builds, with onnxruntime's Gemm node on the same weights beside them: blocks of calls taking
turns, medians (bench/timing.compare).

    python -m bench.linear_ab OLD_DIR 8,1280,1000 8,9216,4096 --threads 2

Each shape is N,In,Out. OLD_DIR holds the older build's package renamed (bench/old_build.py);
prints the three times, old / new and onnxruntime / new. Warm: W stays where repeated calls leave
it (in the L3 up to its size, from memory beyond)."""

import argparse

import numpy as np

from . import old_build
from .timing import compare


def _ort_gemm(w, b, threads):
    """onnxruntime session of one Gemm (transB) with W and b as initializers, or None without it."""
    try:
        import onnxruntime as ort
        from onnx import TensorProto, helper, numpy_helper
    except ImportError:
        return None
    Out, In = w.shape
    g = helper.make_graph(
        [helper.make_node("Gemm", ["x", "w", "b"], ["y"], transB=1)],
        "linear",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", In])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", Out])],
        [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")],
    )
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    return ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("old", help="a folder holding the older build's package, renamed (see --name)")
    ap.add_argument("shapes", nargs="+", help="N,In,Out")
    ap.add_argument("--name", default="pycnn_old")
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    builds = old_build.builds(args.old, args.name, args.threads)
    isa = builds["new"]._C.get_isa()
    for spec in args.shapes:
        N, In, Out = (int(v) for v in spec.split(","))
        rng = np.random.default_rng(0)
        w = (rng.standard_normal((Out, In)) / np.sqrt(In)).astype(np.float32)
        b = rng.standard_normal(Out, dtype=np.float32)
        x = rng.standard_normal((N, In), dtype=np.float32)
        calls = {name: P._C.bind_linear(w, b, N, False) for name, P in builds.items()}
        np.testing.assert_allclose(calls["new"](x), calls["old"](x), rtol=1e-4, atol=1e-4)
        cands = {name: (lambda f=f: f(x)) for name, f in calls.items()}
        sess = _ort_gemm(w, b, args.threads)
        if sess is not None:
            cands["onnxruntime"] = lambda: sess.run(None, {"x": x})
        t = {k: v["median_s"] for k, v in compare(cands, rounds=args.rounds, min_samples=20).items()}
        peer = f", onnxruntime {t['onnxruntime'] * 1e6:.1f} us ({t['onnxruntime'] / t['new']:.3f}x)" if sess else ""
        print(
            f"linear N{N} {In}->{Out} ({isa}, {args.threads} threads): old {t['old'] * 1e6:.1f} us, "
            f"new {t['new'] * 1e6:.1f} us, {t['old'] / t['new']:.3f}x{peer}",
            flush=True,
        )


if __name__ == "__main__":
    main()
