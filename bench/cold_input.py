"""A network's first conv with its input in memory, not in cache: pycnn's bound call (direct_oc,
blocked y, ReLU) beside onnxruntime's Conv node (its NCHWc kernel, time from its profile), with
`--flush` MiB of other data written between calls (64: more than the L3, so x, y and the weights
come from memory; 0: everything cached). One thread unless told, medians.

    python -m bench.cold_input 1,3,224,32,3,2,1 1,3,299,32,3,2,0 --flush 64

Each shape is N,C,H,K,R,stride,pad. Also times pycnn with only x, only y, or both re-read into
cache just before the call (what the cold input costs on its own; docs/performance.md, direct_oc)."""

import argparse
import json
import os
import statistics
import tempfile
import time

import numpy as np

import pycnn
from pycnn import layout


def _ort_session(w, b, stride, pad, x_shape, threads):
    """Conv + ReLU, then a 1x1 conv so that onnxruntime keeps the first conv's output NCHWc."""
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    K = w.shape[0]
    w2 = np.ones((16, K, 1, 1), np.float32)
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[pad] * 4, strides=[stride, stride]),
        helper.make_node("Relu", ["c"], ["first"]),
        helper.make_node("Conv", ["first", "w2"], ["y"]),
    ]
    inits = [numpy_helper.from_array(a, n) for a, n in ((w, "w"), (b, "b"), (w2, "w2"))]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(x_shape))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.enable_profiling = True
    so.profile_file_prefix = os.path.join(tempfile.mkdtemp(), "ort")
    return ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])


def _ort_node_us(sess, skip):
    path = sess.end_profiling()
    with open(path) as f:
        events = json.load(f)
    os.remove(path)
    d = [e["dur"] for e in events if e.get("cat") == "Node" and e["name"] == "first_nchwc_kernel_time"]
    return statistics.median(d[skip:]) if len(d) > skip else float("nan")


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("shapes", nargs="+", help="N,C,H,K,R,stride,pad")
    ap.add_argument("--flush", type=int, default=64, help="MiB written between calls")
    ap.add_argument("--runs", type=int, default=100)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    pycnn.set_num_threads(args.threads)
    junk = np.ones(max(1, args.flush) << 18, np.float32)
    skip = max(1, args.runs // 10)
    print(f"ISA {pycnn._C.get_isa()}, {args.threads} threads, {args.flush} MiB written between calls; medians in us")
    for spec in args.shapes:
        N, C, H, K, R, st, pad = (int(v) for v in spec.split(","))
        rng = np.random.default_rng(0)
        x = rng.standard_normal((N, C, H, H), dtype=np.float32)
        w = (rng.standard_normal((K, C, R, R)) / np.sqrt(C * R * R)).astype(np.float32)
        b = rng.standard_normal(K, dtype=np.float32)
        conv = pycnn.prepare_conv(w, b, stride=st, padding=pad, algo="direct_oc", activation="relu")
        call = conv.bind([x.shape], None, layout=(layout.Y_BLOCKED, "direct_oc"))
        Ho = (H + 2 * pad - R) // st + 1
        ys = [np.empty((N, K // 16, Ho, Ho, 16), np.float32) for _ in range(4)]  # rotated: none stays cached
        sess = _ort_session(w, b, st, pad, x.shape, args.threads)
        np.testing.assert_allclose(
            np.moveaxis(call(x), 4, 2).reshape(N, K, Ho, Ho),
            np.maximum(pycnn.reference.conv2d(x, w, b, st, pad, 1, 1, None), 0),
            rtol=1e-3,
            atol=1e-3,
        )
        times = {"pycnn": [], "x cached": [], "y cached": [], "both cached": []}
        for i in range(args.runs):
            y = ys[i % 4]
            for what, t in times.items():
                if args.flush:
                    junk += 1.0
                if what in ("x cached", "both cached"):
                    x.sum()
                if what in ("y cached", "both cached"):
                    y.fill(0.0)
                t0 = time.perf_counter()
                call(x, None, y)
                t.append(time.perf_counter() - t0)
            if args.flush:
                junk += 1.0
            sess.run(None, {"x": x})
        med = {k: statistics.median(v[skip:]) * 1e6 for k, v in times.items()}
        ort_us = _ort_node_us(sess, skip)
        print(
            f"N{N} {C}->{K} {R}x{R}/{st} pad {pad} @{H}: pycnn {med['pycnn']:.1f}, onnxruntime {ort_us:.1f} "
            f"(ratio {ort_us / med['pycnn']:.2f}); pycnn with x cached {med['x cached']:.1f}, y cached "
            f"{med['y cached']:.1f}, both {med['both cached']:.1f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
