"""In-process A/B of the algorithms on one conv layer: each algorithm's prepared, bound call with
a channel-blocked output (as a Graph's conv writes it where the layout pass blocks it; NCHW with
--nchw or when an algorithm cannot write it), blocks of calls taking turns (bench/timing.compare), medians, GFLOP/s
(2*N*K*C*R*R*Ho*Wo) and each time over the first algorithm's.

    python -m bench.algo_ab 1,128,28,32,3,1,1 8,32,73,64,3,1,1 --algos direct_oc,winograd_f4

Each shape is N,C,H,K,R,stride,pad (H, R and pad may be HxW, RxS and PHxPW for a rectangular map
or window, e.g. 1,160,17,160,1x7,1,0x3 for Inception's 1x7, 8,300,50x1,100,3x1,1,0 for Kim's
height-3 filters as rows as channels), ReLU in the epilogue. --blocked-x
adds direct_oc reading a channel-blocked x (N, C/16, H, W, 16), 'direct_oc+x', beside the same
call on NCHW (16 | C; y in the others' layout). --mean adds direct_oc returning its maps' means,
'direct_oc+mean' (kDirectOcMeanY: a Graph's conv before a global average pool,
pycnn/graph/fuse_mean.py), beside 'direct_oc+pool': the same call writing its maps, then the
global average pool reading them (both on the blocked x with --blocked-x). --cold runs a 64 MiB
max pool before each timed call (timing.evicting_pool), so x, y and the weights come from memory
(as for the first step of a network run), and times the calls one by one instead. What
docs/performance.md quotes for the auto rule's Winograd / direct_oc thresholds and Winograd's two
phases on the VM."""

import argparse

import numpy as np

import pycnn
from pycnn import layout

from .depthwise_check import _blocked
from .timing import compare, evicting_pool, median_after

_WRITES_BLOCKED = ("direct_oc", "winograd_f2", "winograd_f4", "winograd_f6")  # else all NCHW


def _pair(v):
    """'A' -> (A, A), 'AxB' -> (A, B)."""
    a, b = v.split("x") if "x" in v else (v, v)
    return int(a), int(b)


def parse_shape(spec):
    """'N,C,H,K,R,stride,pad' (H, R and pad may be HxW, RxS and PHxPW) -> N, C, H, W, K, R, S,
    stride, (ph, pw)."""
    N, C, hw, K, win, st, pads = spec.split(",")
    return (int(N), int(C), *_pair(hw), int(K), *_pair(win), int(st), _pair(pads))


def at_offset(a, offset):
    """A copy of a whose data starts offset bytes past a 64-byte cache line (a multiple of 4)."""
    raw = np.empty(a.size + 16 + offset // 4, np.float32)
    skip = (-raw.ctypes.data % 64) // 4 + offset // 4
    out = raw[skip : skip + a.size].reshape(a.shape)
    out[...] = a
    return out


def pair_str(a, b):
    """(A, A) -> 'A', (A, B) -> 'AxB' (what _pair parses)."""
    return f"{a}" if a == b else f"{a}x{b}"


def _add_mean_calls(calls, inputs, w, stride, pad, x, x_blocked, y_blocked):
    """calls['direct_oc+mean']: direct_oc returning the maps' means (N, K, 1, 1);
    calls['direct_oc+pool']: direct_oc writing its maps (blocked where y_blocked), then the global
    average pool reading them into (N, K, 1, 1)."""
    conv = pycnn.prepare_conv(w, None, stride=stride, padding=pad, algo="direct_oc", activation="relu")
    xbits = layout.X_BLOCKED if x_blocked else 0
    xa = _blocked(x) if x_blocked else x
    calls["direct_oc+mean"] = conv.bind([x.shape], None, layout=(xbits | layout.MEAN_Y, "direct_oc"))
    maps = conv.bind([x.shape], None, layout=(xbits | (layout.Y_BLOCKED if y_blocked else 0), "direct_oc"))
    pool = pycnn._C.global_avg_pool2d_blocked16 if y_blocked else pycnn._C.global_avg_pool2d

    def conv_then_pool(xa, maps=maps, pool=pool, K=w.shape[0]):
        y = np.empty((xa.shape[0], K, 1, 1), np.float32)
        pool(maps(xa), y)
        return y

    calls["direct_oc+pool"] = conv_then_pool
    inputs["direct_oc+mean"] = inputs["direct_oc+pool"] = xa


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("shapes", nargs="+", help="N,C,H,K,R,stride,pad (H, R, pad: or HxW, RxS, PHxPW)")
    ap.add_argument("--algos", default="direct_oc,winograd_f4")
    ap.add_argument("--nchw", action="store_true", help="NCHW output (default: channel-blocked where 16 | K)")
    ap.add_argument("--cold", action="store_true", help="caches flushed before each call")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument(
        "--offset",
        type=int,
        help="x and y (written through out=, one array per algorithm) this many bytes past a cache line "
        "(a Graph's arena aligns them: 0; NumPy's allocator gives 16 bytes); default: as NumPy allocates",
    )
    ap.add_argument(
        "--blocked-x",
        action="store_true",
        help="also direct_oc reading a channel-blocked x (as a Graph's layout pass hands it over), as 'direct_oc+x'",
    )
    ap.add_argument(
        "--mean",
        action="store_true",
        help="also direct_oc returning its maps' means ('direct_oc+mean') and writing them, then pooled "
        "('direct_oc+pool')",
    )
    args = ap.parse_args(argv)
    if args.mean and args.offset is not None:
        ap.error("--mean and --offset: give one")
    pycnn.set_num_threads(args.threads)
    algos = args.algos.split(",")
    evict = evicting_pool(pycnn) if args.cold else None
    for spec in args.shapes:
        N, C, H, W, K, R, S, st, pad = parse_shape(spec)
        ph, pw = pad
        rng = np.random.default_rng(0)
        x = rng.standard_normal((N, C, H, W), dtype=np.float32)
        w = rng.standard_normal((K, C, R, S), dtype=np.float32) / np.sqrt(C * R * S)
        blocked = not args.nchw and K % 16 == 0 and all(a in _WRITES_BLOCKED for a in algos)
        calls = {}
        for a in algos:
            conv = pycnn.prepare_conv(w, None, stride=st, padding=pad, algo=a, activation="relu")
            lay = (layout.Y_BLOCKED, a) if blocked else (0, None)
            calls[a] = conv.bind([x.shape], None, layout=lay)
        inputs = dict.fromkeys(calls, x)
        if args.blocked_x and "direct_oc" in algos and C % 16 == 0:
            conv = pycnn.prepare_conv(w, None, stride=st, padding=pad, algo="direct_oc", activation="relu")
            bits = layout.X_BLOCKED | (layout.Y_BLOCKED if blocked else 0)
            calls["direct_oc+x"] = conv.bind([x.shape], None, layout=(bits, "direct_oc"))
            inputs["direct_oc+x"] = _blocked(x)
        ref = calls[algos[0]](x)
        for a in list(calls)[1:]:
            np.testing.assert_allclose(calls[a](inputs[a]), ref, rtol=1e-3, atol=1e-3)
        if args.mean:
            _add_mean_calls(calls, inputs, w, st, pad, x, args.blocked_x and C % 16 == 0, blocked)
            ref_mean = (pycnn._C.from_blocked16(ref) if blocked else ref).mean(axis=(2, 3), keepdims=True)
            for a in ("direct_oc+mean", "direct_oc+pool"):
                np.testing.assert_allclose(calls[a](inputs[a]), ref_mean, rtol=1e-3, atol=1e-3)
        if args.offset is None:
            fns = {a: (lambda f=f, xa=inputs[a]: f(xa)) for a, f in calls.items()}
        else:
            fns = {}
            for a, f in calls.items():
                xa = at_offset(inputs[a], args.offset)
                ya = at_offset(f(xa), args.offset)
                fns[a] = lambda f=f, xa=xa, ya=ya: f(xa, out=ya)
        if args.cold:
            med = {a: median_after(f, evict, 10 * args.rounds) for a, f in fns.items()}
        else:
            med = {a: v["median_s"] for a, v in compare(fns, rounds=args.rounds, min_samples=10).items()}
        Ho, Wo = (H + 2 * ph - R) // st + 1, (W + 2 * pw - S) // st + 1
        flop = 2.0 * N * K * C * R * S * Ho * Wo
        first = med[algos[0]]
        cols = "  ".join(
            f"{a} {t * 1e3:.3f} ms ({flop / t / 1e9:.0f} GFLOP/s, {t / first:.2f})" for a, t in med.items()
        )
        where = ("cold" if args.cold else "warm") + (", blocked y" if blocked else ", NCHW y")
        if args.offset is not None:
            where += f", x and y {args.offset} bytes past a line"
        print(
            f"N{N} {C}->{K} {R}x{S}/{st} pad {pair_str(ph, pw)} @{pair_str(H, W)}, "
            f"ISA {pycnn._C.get_isa()}, {args.threads} threads, {where}: {cols}",
            flush=True,
        )


if __name__ == "__main__":
    main()
