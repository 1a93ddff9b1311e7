"""python -m pycnn: run a network from the command line.

    python -m pycnn list
    python -m pycnn run MODEL [--batch N] [--algo A] [--weights F] [--input F.npy] [--threads T]
                              [--runs R] [--top K] [--profile]
    python -m pycnn summary MODEL [--batch N]

MODEL is a zoo name (python -m pycnn list) or an .onnx file. Without --input the input is
random (seeded): normal floats, or token ids for Kim's CNN. run prints the top classes of the
first samples and the median time per batch over --runs runs after one warm-up run.
"""
from __future__ import annotations

import argparse
import sys
import time

import numpy as np


def _load(model, algo, weights):
    import pycnn

    if model.endswith(".onnx"):
        g = pycnn.load_onnx(model)
        g.set_algo(algo)
    else:
        g = pycnn.models.get(model, algo=algo)
    if weights:
        g.load_state_dict(weights)
    return g


def _input(g, batch, path, seed=0):
    if path:
        return np.load(path)
    rng = np.random.default_rng(seed)
    name, shape = next(iter(g.inputs.items()))
    if any(d is None for d in shape[1:]):
        raise SystemExit(f"input {name!r} has free dimensions {shape}: pass --input")
    if g.input_dtypes[name] == "int64":
        vocab = next(n.params["weight"].shape[0] for n in g.nodes if n.op == "embedding")
        return rng.integers(0, vocab, (batch,) + shape[1:])
    return rng.standard_normal((batch,) + shape[1:]).astype(np.float32)


def cmd_run(a):
    import pycnn

    if a.threads:
        pycnn.set_num_threads(a.threads)
    g = _load(a.model, a.algo, a.weights)
    x = _input(g, a.batch, a.input)
    y = g(x)  # warm-up
    times = []
    for _ in range(a.runs):
        t0 = time.perf_counter()
        y = g(x)
        times.append(time.perf_counter() - t0)
    if isinstance(y, dict):
        y = next(iter(y.values()))
    scores = y.reshape(y.shape[0], -1)
    is_prob = g.nodes[-1].op == "softmax"
    if not is_prob:
        scores = pycnn.softmax(scores, axis=1)
    print(f"{g.name}: input {x.shape} {x.dtype}, output {y.shape}, algo {a.algo}, {pycnn.get_num_threads()} threads")
    for i in range(min(len(scores), a.show)):
        top = np.argsort(-scores[i])[:a.top]
        print(f"  sample {i}: " + ", ".join(f"class {int(c)} ({scores[i, c]:.3f})" for c in top))
    med = float(np.median(times))
    print(f"time per batch: median {med * 1e3:.2f} ms over {a.runs} runs (min {min(times) * 1e3:.2f} ms); "
          f"{a.batch / med:.1f} samples/s")
    if a.profile:
        print(g.profile(x, runs=a.runs, warmup=1))
    return 0


def cmd_summary(a):
    print(_load(a.model, "auto", None).summary(batch=a.batch))
    return 0


def cmd_list(a):
    import pycnn

    for n in pycnn.models.names():
        g = pycnn.models.get(n)
        s = g.summary()
        print(f"{n:<20} input {next(iter(g.inputs.values()))}  {s.params / 1e6:7.2f} M parameters  "
              f"{s.flops / 1e9:7.3f} GFLOPs")
    return 0


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m pycnn", description="Run pycnn networks.")
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="run a model and print its top classes and time per batch")
    r.add_argument("model", help="zoo name (python -m pycnn list) or an .onnx file")
    r.add_argument("--batch", type=int, default=1)
    r.add_argument("--algo", default="auto", help="conv algorithm: auto, direct, direct_oc, im2col, winograd, ...")
    r.add_argument("--weights", help=".npz or PyTorch .pt/.pth state_dict")
    r.add_argument("--input", help=".npy file with the input batch (default: random)")
    r.add_argument("--threads", type=int, default=0)
    r.add_argument("--runs", type=int, default=10)
    r.add_argument("--top", type=int, default=5)
    r.add_argument("--show", type=int, default=4, help="samples whose top classes are printed")
    r.add_argument("--profile", action="store_true", help="also print the per-layer profile")
    s = sub.add_parser("summary", help="layers, shapes, parameters, FLOPs and peak memory")
    s.add_argument("model")
    s.add_argument("--batch", type=int, default=1)
    sub.add_parser("list", help="the model zoo")
    a = ap.parse_args(argv)
    if a.cmd == "run" and (a.batch < 1 or a.runs < 1):
        ap.error("--batch and --runs must be >= 1")
    try:
        return {"run": cmd_run, "summary": cmd_summary, "list": cmd_list}[a.cmd](a)
    except (ValueError, TypeError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
