"""python -m pycnn: run a network from the command line.

    python -m pycnn list
    python -m pycnn run MODEL [--batch N] [--algo A] [--weights F] [--input F.npy] [--threads T]
                              [--runs R] [--top K] [--show S] [--profile] [--quiet]
    python -m pycnn summary MODEL [--batch N]

MODEL is a zoo name (python -m pycnn list), an .onnx file or a graph file written by
Graph.save. Without --input the input is random (seeded): normal floats, or token ids for Kim's
CNN. run prints the top classes of the first samples and the median time per batch over --runs
runs after one warm-up run; what it is doing goes to stderr as it goes (--quiet: nothing).

Bad input (an unknown model, a missing or unreadable file, a shape the network refuses, a
missing optional package) ends with one line on stderr naming the option, and exit status 2.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

import pycnn


class UsageError(Exception):
    """Bad input from the command line: printed as one line, exit status 2."""


def _at_least(minimum):
    """An argparse type: a whole number >= minimum."""

    def parse(text):
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if v < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {v}")
        return v

    return parse


_positive, _count = _at_least(1), _at_least(0)


def _threads(text):
    v = _positive(text)
    if v > pycnn.ops.MAX_THREADS:
        raise argparse.ArgumentTypeError(f"must be <= {pycnn.ops.MAX_THREADS}, got {v}")
    return v


class _Progress:
    """Steps of a long command on stderr: 'building resnet152 ... 2.1 s'."""

    def __init__(self, quiet):
        self.quiet = quiet

    def note(self, text):
        if not self.quiet:
            print(text, file=sys.stderr, flush=True)

    def step(self, text, fn):
        if not self.quiet:
            print(f"{text} ...", end="", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        try:
            out = fn()
        finally:
            if not self.quiet:
                print(f" {time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)
        return out


def _option(name, fn):
    """fn() with a user error re-raised as a UsageError naming the option."""
    try:
        return fn()
    except (ValueError, TypeError, OSError) as e:
        raise UsageError(f"{name}: {e}") from None


def _load(model, algo, weights, progress):
    if model.endswith(".onnx"):
        if not os.path.exists(model):
            raise UsageError(f"MODEL: no such file {model!r}")
        g = _option("MODEL", lambda: progress.step(f"importing {model}", lambda: pycnn.load_onnx(model)))
        _option("--algo", lambda: g.set_algo(algo))
    elif os.path.sep in model or model.endswith((".npz", ".pycnn")):
        if not os.path.exists(model):
            raise UsageError(f"MODEL: no such file {model!r}")
        g = _option("MODEL", lambda: progress.step(f"loading {model}", lambda: pycnn.load(model)))
        _option("--algo", lambda: g.set_algo(algo))
    else:
        if model not in pycnn.models.names():
            raise UsageError(
                f"MODEL: unknown model {model!r}; `python -m pycnn list` shows the zoo "
                f"({', '.join(pycnn.models.names())}), or pass an .onnx file"
            )
        if algo not in pycnn.algorithms():
            raise UsageError(f"--algo: expected one of {pycnn.algorithms()}, got {algo!r}")
        g = progress.step(f"building {model} and preparing its weights", lambda: pycnn.models.get(model, algo=algo))
        if not weights:
            progress.note(
                f"note: {model} has seeded random weights (its classes mean nothing); --weights FILE loads trained ones"
            )
    if weights:
        if not os.path.exists(weights):
            raise UsageError(f"--weights: no such file {weights!r}")
        _option(
            "--weights", lambda: progress.step(f"loading weights from {weights}", lambda: g.load_state_dict(weights))
        )
    return g


def _input(g, batch, path, seed=0):
    if path:
        if not os.path.exists(path):
            raise UsageError(f"--input: no such file {path!r}")
        x = _option("--input", lambda: np.load(path, allow_pickle=False))
        if not isinstance(x, np.ndarray):
            raise UsageError(f"--input: {path!r} holds several arrays (an .npz); pass one .npy array")
        return x
    rng = np.random.default_rng(seed)
    name, shape = next(iter(g.inputs.items()))
    if any(d is None for d in shape[1:]):
        raise UsageError(f"--input: input {name!r} has free dimensions {shape}; pass --input FILE.npy")
    if g.input_dtypes[name] == "int64":
        vocab = next(n.params["weight"].shape[0] for n in g.nodes if n.op == "embedding")
        return rng.integers(0, vocab, (batch,) + shape[1:])
    return rng.standard_normal((batch,) + shape[1:]).astype(np.float32)


def cmd_run(a):
    progress = _Progress(a.quiet)
    if a.threads:
        pycnn.set_num_threads(a.threads)
    g = _load(a.model, a.algo, a.weights, progress)
    x = _input(g, a.batch, a.input)
    opt = "--input" if a.input else "--batch"
    where = f"{pycnn.get_num_threads()} threads"
    run = g
    if a.device != "cpu" or a.cuda_graph:
        if not pycnn.device.available(a.device):
            raise UsageError(f"--device: {a.device!r} is not available here ({pycnn.cuda.why_not(a.device)})")
        be = pycnn.backend(a.device)
        run = _option(
            "--cuda-graph" if a.cuda_graph else "--device",
            lambda: progress.step(f"moving {g.name} to {a.device}", lambda: g.to(a.device, cuda_graph=a.cuda_graph)),
        )
        x = be.memory.from_host(x) if g.input_dtypes[next(iter(g.inputs))] == "float32" else x
        where = f"on {a.device}" + (" (CUDA graph)" if a.cuda_graph else "")
    y = _option(opt, lambda: progress.step(f"first run, batch {x.shape[0]} (binds the plan)", lambda: run(x)))
    times = []

    def timed():
        for _ in range(a.runs):
            if run is g:
                t0 = time.perf_counter()
                g(x)
                times.append(time.perf_counter() - t0)
            else:  # device work is asynchronous: CUDA events (the host clock on the emulator)
                times.append(run.backend.time_ms(lambda: run(x)) / 1e3)

    progress.step(f"timing {a.runs} runs", timed)
    if run is not g:
        y = (
            {k: run.backend.memory.to_host(v) for k, v in y.items()}
            if isinstance(y, dict)
            else run.backend.memory.to_host(y)
        )
        x = run.backend.memory.to_host(x)
    if isinstance(y, dict):
        y = next(iter(y.values()))
    scores = y.reshape(y.shape[0], -1)
    is_prob = g.nodes[-1].op == "softmax"
    if not is_prob and scores.size:
        scores = pycnn.softmax(scores, dim=1)
    print(f"{g.name}: input {x.shape} {x.dtype}, output {y.shape}, algo {a.algo}, {where}")
    for i in range(min(len(scores), a.show)):
        top = np.argsort(-scores[i])[: a.top]
        print(f"  sample {i}: " + ", ".join(f"class {int(c)} ({scores[i, c]:.3f})" for c in top))
    med = float(np.median(times))
    print(
        f"time per batch: median {med * 1e3:.2f} ms over {a.runs} runs (min {min(times) * 1e3:.2f} ms); "
        f"{x.shape[0] / med:.1f} samples/s"
    )
    if a.profile:
        print(progress.step("profiling", lambda: run.profile(x, runs=a.runs, warmup=1)))
    return 0


def cmd_summary(a):
    g = _load(a.model, "auto", None, _Progress(quiet=True))
    print(g.summary(batch=a.batch))
    return 0


def cmd_list(a):
    for n in pycnn.models.names():
        info = pycnn.models.info(n)
        shape = "(" + ", ".join("N" if d is None else str(d) for d in info.input_shape) + ")"
        print(f"{n:<20} input {shape:<18} {info.about}")
    print("(python -m pycnn summary NAME: layers, parameters, FLOPs and peak memory)")
    return 0


def parser():
    ap = argparse.ArgumentParser(prog="python -m pycnn", description="Run pycnn networks.")
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="run a model and print its top classes and time per batch")
    r.add_argument("model", help="zoo name (python -m pycnn list), an .onnx file or a Graph.save file")
    r.add_argument("--batch", type=_positive, default=1, help="batch size of the random input (default 1)")
    r.add_argument("--algo", default="auto", help="conv algorithm: auto, direct, direct_oc, im2col, winograd, ...")
    r.add_argument("--weights", help=".npz or PyTorch .pt/.pth state_dict")
    r.add_argument("--input", help=".npy file with the input batch (default: random)")
    r.add_argument("--threads", type=_threads, default=0, help="OpenMP threads (default: all cores)")
    r.add_argument("--runs", type=_positive, default=10)
    r.add_argument("--top", type=_positive, default=5)
    r.add_argument("--show", type=_count, default=4, help="samples whose top classes are printed")
    r.add_argument("--profile", action="store_true", help="also print the per-layer profile")
    r.add_argument(
        "--device",
        default="cpu",
        choices=("cpu", "cuda", "cuda_emu"),
        help="where the network runs: cpu (default), cuda (a GPU, with CuPy), cuda_emu (the CUDA kernels on the "
        "CPU emulator, slowly)",
    )
    r.add_argument("--cuda-graph", action="store_true", help="with --device cuda: replay each run as a CUDA graph")
    r.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    s = sub.add_parser("summary", help="layers, shapes, parameters, FLOPs and peak memory")
    s.add_argument("model")
    s.add_argument("--batch", type=_positive, default=1)
    sub.add_parser("list", help="the model zoo (names, inputs; builds nothing)")
    return ap


def main(argv=None):
    a = parser().parse_args(argv)
    try:
        return {"run": cmd_run, "summary": cmd_summary, "list": cmd_list}[a.cmd](a)
    except UsageError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except ImportError as e:  # an optional dependency; the message names the pip command
        print(f"error: {e}", file=sys.stderr)
        return 2
    except (ValueError, TypeError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except MemoryError as e:
        print(f"error: out of memory ({e}); try a smaller --batch", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
