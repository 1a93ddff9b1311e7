"""In-process A/B of one channel-blocked layout rule on a torchvision network exported to ONNX or
a lecture network (pycnn.models, the same weights in both): the same network bound with the rule
off (A) and on (B), blocks of runs taking turns, medians.
`python -m bench.layout_ab efficientnet_b0 --batch 1 --off gate` (docs/performance.md, Whole
networks). --off: gate (squeeze-and-excitation's pool and x * gate read the layout), depthwise
(depthwise convs read and write it), per_channel (batch norms, average pools and LayerNorms over
channels read and write it: DenseNet, Inception v3, ConvNeXt), pad_channels (widths that are not
multiples of 16 padded so their chains stay blocked: pycnn/graph/pad_channels.py), pw_dw (blocked
expand 1x1 -> depthwise pairs fused: pycnn/graph/fuse_pw_dw.py), pw_dw_split (those pairs run as
their two kernels a few images at a time rather than as the ring kernel), pw_dw_project (those
split calls run the project 1x1 after the depthwise conv too), chains (runs of consecutive conv
steps a few images at a time at batch > 1: pycnn/graph/chunk_chains.py), chain_pools (max and
average pools members of those runs), se (squeeze-and-excitation's four
steps as one call: pycnn/graph/fuse_se.py), mean (a conv read only by the global average pool
after it returns the pool's means: pycnn/graph/fuse_mean.py), grouped (grouped convs of 2-8 channels per group run
grouped_c16 instead of the dense kernels per group: pycnn/select.py), concat_prefix (at batch 1
a concat of the first inputs of a longer one is a view of its output: DenseNet's dense blocks,
pycnn/graph/binding.py), concat_strided (at batch > 1 the producers of a blocked concat's parts
write into its output, the images of their slices strided), ck_per_tile (3x3 convs with
Cg * Kg / (Cg + Kg) at most the ISA's max_ck_per_tile run direct_oc rather than Winograd:
pycnn/select.py), ck_per_tile_isa (that threshold at the base 16 on every ISA: what AVX-512's
26 adds), small_maps_f2 (Winograd-eligible 3x3 layers on maps of at most 64 pixels with many
channels run F2 rather than direct_oc where the rule set says so: AVX2 and avx512_256,
pycnn/select.py), small_map_ck (Winograd-eligible 3x3 layers on at most 196 output pixels with
Cg * Kg / (Cg + Kg) at most the rule set's small_map_direct_oc_max_ck run direct_oc: the avx512
set, pycnn/select.py), pointwise_max_map (unpadded 1x1 convs on NCHW maps larger than the rule
set's pointwise_direct_oc_max_map run the SGEMM rather than direct_oc: the avx512 set,
pycnn/select.py), f2_at_16_tiles (3x3 layers whose F4 tiling makes exactly 16 tiles run F2
rather than F4: the avx512 set's f4_min_tiles of 17, pycnn/select.py), windowed (convs with a
window that run direct_oc read a blocked x, so the 1x1 before them writes its output blocked:
pycnn/layout.py), windowed_concats (such a conv also reads
blocked a concat of conv outputs, which those convs then write blocked: Inception's Mixed_5d),
winograd_5x5 (stride-1 5x5 convs run F(4x4,5x5), or F(2x2,5x5), where the rule says so,
pycnn/select.py; `--set f2_5x5_max_lane_pct=none` turns off the F(2x2,5x5) rule alone),
winograd_1d (1 x r and r x 1 convs with many channels and tiles run the one-dimensional F(1x4,1xr) / F(4x1,rx1)),
winograd_1d_short (the same for r = 3, 4, 5 only: Inception's 1x3 / 3x1, Kim's rows as channels),
all (pycnn.layout.ENABLED). Not all are layout rules; each is a switch of the bound plan.
--steps RUNS also prints, from Graph.profile of both, the steps whose algorithm the switch changes
and their times (`python -m bench.layout_ab squeezenet1_1 --off mean --steps 60`: the conv and pool
steps against the fused one). --set KEY=VALUE instead compares every rule set with one
select.ISA_RULES threshold at VALUE (A) against the rule sets as they are (B): `python -m
bench.layout_ab googlenet --set small_map_direct_oc_max_ck=200`. Printed: A's and B's medians and
A / B (> 1: B, as they are, faster)."""

import argparse
import statistics
import time

import numpy as np

import pycnn
import pycnn.models
from pycnn import layout, select
from pycnn.graph import binding, chunk_chains, fuse_mean, fuse_pw_dw, fuse_se, pad_channels

from . import networks
from . import torchvision_zoo as zoo

_FLAGS = {
    "pw_dw": (fuse_pw_dw, "ENABLED"),
    "pw_dw_split": (fuse_pw_dw, "SPLIT"),
    "pw_dw_project": (fuse_pw_dw, "PROJECT"),
    "chains": (chunk_chains, "ENABLED"),
    "chain_pools": (chunk_chains, "POOLS"),
    "se": (fuse_se, "ENABLED"),
    "mean": (fuse_mean, "ENABLED"),
    "pad_channels": (pad_channels, "ENABLED"),
    "concat_prefix": (binding, "PREFIX_CONCATS"),
    "concat_strided": (binding, "STRIDED_CONCATS"),
    "windowed": (layout, "WINDOWED_READERS"),
    "windowed_concats": (layout, "WINDOWED_CONCATS"),
}


def _set_rule(key, value):
    """Sets threshold key of every rule set (select.ISA_RULES) to value; returns the callable
    that puts each set's own back."""
    orig = {isa: r[key] for isa, r in select.ISA_RULES.items()}
    for r in select.ISA_RULES.values():
        r[key] = value

    def restore():
        for isa, v in orig.items():
            select.ISA_RULES[isa][key] = v

    return restore


def _rule_off(name):
    """A callable that switches the rule off and returns a callable that switches it back on."""
    if name == "gate":
        orig = layout.gate_input
        layout.gate_input = lambda *a: None
        return lambda: setattr(layout, "gate_input", orig)
    if name == "depthwise":
        orig = layout._depthwise_reader
        layout._depthwise_reader = lambda *a: False
        return lambda: setattr(layout, "_depthwise_reader", orig)
    if name == "per_channel":
        orig = layout.PER_CHANNEL_OPS
        layout.PER_CHANNEL_OPS = ("max_pool2d",)
        return lambda: setattr(layout, "PER_CHANNEL_OPS", orig)
    if name in _FLAGS:  # a module's switch, True when on
        module, attr = _FLAGS[name]
        setattr(module, attr, False)
        return lambda: setattr(module, attr, True)
    if name == "grouped":
        return _set_rule("grouped_c16_max_group", 0)
    if name == "f2_at_16_tiles":
        return _set_rule("f4_min_tiles", select.WINOGRAD_F4_MIN_TILES)
    if name == "pointwise_max_map":
        return _set_rule("pointwise_direct_oc_max_map", None)
    if name == "small_map_ck":
        return _set_rule("small_map_direct_oc_max_ck", None)
    if name == "small_maps_f2":
        return _set_rule("small_map_f2_min_ck", None)
    if name in ("winograd_5x5", "winograd_1d"):  # the rules' thresholds out of reach
        attrs = (
            ("WINOGRAD_5X5_MIN_TILES", "WINOGRAD_5X5_F2_MIN_TILES")
            if name == "winograd_5x5"
            else ("WINOGRAD_1D_MIN_CK",)
        )
        orig = {a: getattr(select, a) for a in attrs}
        for a in attrs:
            setattr(select, a, float("inf"))

        def restore():
            for a, v in orig.items():
                setattr(select, a, v)

        return restore
    if name == "winograd_1d_short":
        orig = select.WINOGRAD_1D_TAPS
        select.WINOGRAD_1D_TAPS = (7,)
        return lambda: setattr(select, "WINOGRAD_1D_TAPS", orig)
    if name in ("ck_per_tile", "ck_per_tile_isa"):  # every ISA's at 0, or at the base threshold
        return _set_rule("max_ck_per_tile", 0 if name == "ck_per_tile" else select.DIRECT_OC_MAX_CK_PER_TILE)
    layout.ENABLED = False
    return lambda: setattr(layout, "ENABLED", True)


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("network", choices=sorted(zoo.NETWORKS) + pycnn.models.names())
    ap.add_argument("--batch", type=int, default=1)
    rules = (
        "gate",
        "depthwise",
        "per_channel",
        "pad_channels",
        "pw_dw",
        "pw_dw_split",
        "pw_dw_project",
        "chains",
        "chain_pools",
        "se",
        "mean",
        "grouped",
        "concat_prefix",
        "concat_strided",
        "ck_per_tile",
        "ck_per_tile_isa",
        "small_maps_f2",
        "small_map_ck",
        "pointwise_max_map",
        "f2_at_16_tiles",
        "windowed",
        "windowed_concats",
        "winograd_5x5",
        "winograd_1d",
        "winograd_1d_short",
        "all",
    )
    ap.add_argument("--off", choices=rules, help="the switch turned off in A (default: gate)")
    ap.add_argument(
        "--set",
        metavar="KEY=VALUE",
        help="instead of --off: A is every rule set (select.ISA_RULES) with KEY at VALUE (an integer or none)",
    )
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument(
        "--steps",
        type=int,
        default=0,
        metavar="RUNS",
        help="also Graph.profile both (RUNS runs each) and print the steps whose algorithm the switch changes",
    )
    args = ap.parse_args(argv)
    if args.set is not None and args.off is not None:
        ap.error("--set and --off: give one")
    args.off = args.off or "gate"
    if args.set is not None:
        key, _, value = args.set.partition("=")
        if key not in select.ISA_RULES["avx512"] or not value:
            ap.error(f"--set: expected KEY=VALUE with KEY one of {sorted(select.ISA_RULES['avx512'])}")
        if value.lower() != "none" and not value.lstrip("-").isdigit():
            ap.error(f"--set: VALUE must be an integer or none, got {value!r}")
        set_value = None if value.lower() == "none" else int(value)
    pycnn.set_num_threads(2)
    if args.network in zoo.NETWORKS:
        onnx_bytes = zoo.export_onnx(zoo.torch_model(args.network), args.network)
        x = np.random.default_rng(0).standard_normal(zoo.input_shape(args.network, args.batch), dtype=np.float32)
        make = lambda: pycnn.load_onnx(onnx_bytes)  # noqa: E731
    else:
        weights = pycnn.models.get(args.network).state_dict()

        def make():
            g = pycnn.models.get(args.network)
            g.load_state_dict(weights)
            return g

        x = networks._input(make(), args.network, args.batch, np.random.default_rng(0))
    if args.set is not None:
        restore = _set_rule(key, set_value)
        label, as_is = f"rule sets with {key}={value}", "as they are"
    else:
        restore = _rule_off(args.off)
        label, as_is = f"rule '{args.off}' off", "on"
    try:
        off = make()
        y_off = off(x)  # bound (the layout planned) with the rule off
    finally:
        restore()
    on = make()
    # relative to the largest output (a switch may change the algorithm, so the rounding: random
    # weights give Inception v3 outputs of ~1e12 where some are near 0)
    err = float(np.abs(on(x) - y_off).max() / max(np.abs(y_off).max(), 1e-30))
    assert err < 1e-4, f"the rule off and on differ: max |on - off| / max |off| = {err:.2e}"

    def block(g, n):
        ts = []
        for _ in range(n):
            t = time.perf_counter()
            g(x)
            ts.append(time.perf_counter() - t)
        return ts

    a, b = [], []
    for _ in range(args.rounds):
        block(off, 2)
        a += block(off, 6)
        block(on, 2)
        b += block(on, 6)
    ma, mb = statistics.median(a) * 1e3, statistics.median(b) * 1e3
    if args.steps:
        _print_changed_steps(off.profile(x, runs=args.steps), on.profile(x, runs=args.steps))
    print(
        f"{args.network} batch {args.batch}, ISA {pycnn._C.get_isa()}, 2 threads: {label} "
        f"{ma:.2f} ms, {as_is} {mb:.2f} ms (medians of {len(a)}), {ma / mb:.3f}x"
    )


def _print_changed_steps(p_off, p_on):
    """The plan steps whose algorithm (Graph.profile's column) differs with the switch off and on,
    each step's median time off -> on, and their sums (a fused step's partner shows 0 on)."""
    changed = [i for i, (r0, r1) in enumerate(zip(p_off.rows, p_on.rows)) if r0[5] != r1[5]]
    for i in changed:
        r0, r1 = p_off.rows[i], p_on.rows[i]
        print(f"  {r0[0][:60]:<60} {r0[3] * 1e6:9.1f} -> {r1[3] * 1e6:9.1f} us  {r0[5][:40]} -> {r1[5][:40]}")
    s0, s1 = (sum(p.rows[i][3] for i in changed) * 1e6 for p in (p_off, p_on))
    print(f"  steps changed: {len(changed)}, their sum off {s0:.1f} us, on {s1:.1f} us (Graph.profile medians)")


if __name__ == "__main__":
    main()
