"""One memory-bound pass on 1 thread against 2, blocks of calls taking turns (bench/timing.compare),
medians: the folded batch norm + ReLU on a channel-blocked tensor (what DenseNet runs before each
1x1, _C.channel_affine_blocked16) and the element-wise add, over sizes around the point where
kernels/cpu/eltwise.cpp's nt_for_bytes starts a second thread.

    python -m bench.eltwise_threads

Each line: elements, the op, 1-thread and 2-thread medians (us) and 1T / 2T. A size below the
threshold runs one thread both ways (then the two columns time the same call)."""

import argparse

import numpy as np

import pycnn

from .timing import compare

SHAPES = [(32, 28), (64, 28), (128, 28), (512, 14), (64, 56), (128, 56), (224, 56), (512, 28)]  # (C, H) at batch 1


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args(argv)
    _C = pycnn._C
    threads = pycnn.get_num_threads()
    rng = np.random.default_rng(0)
    print(f"ISA {_C.get_isa()}, threads 1 against 2")
    for C, H in SHAPES:
        x = rng.standard_normal((1, C // 16, H, H, 16), dtype=np.float32)
        b = rng.standard_normal(x.shape, dtype=np.float32)
        y = np.empty_like(x)
        scale, shift = np.ones(C, np.float32), np.zeros(C, np.float32)
        ops = {
            "batch_norm+relu": lambda: _C.channel_affine_blocked16(x, scale, shift, y, True),
            "add": lambda: _C.add(x.reshape(-1), b.reshape(-1), y.reshape(-1), False),
        }
        for name, op in ops.items():

            def on(n, op=op):
                def call():  # the binding's own setter: 0.05 us where pycnn.set_num_threads's checks take 0.4
                    _C.set_num_threads(n)
                    op()

                return call

            t = compare({"1": on(1), "2": on(2)}, rounds=args.rounds, min_samples=30)
            t1, t2 = t["1"]["median_s"] * 1e6, t["2"]["median_s"] * 1e6
            print(f"{x.size:>8} {name:<16} 1T {t1:7.1f} us  2T {t2:7.1f} us  {t1 / t2:.2f}x", flush=True)
    pycnn.set_num_threads(threads)


if __name__ == "__main__":
    main()
