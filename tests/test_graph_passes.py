"""Each rewrite pass of the Graph's plan on its own (pycnn/graph/passes.py), on small graphs
written for it, and the StepKernel interface every operator's kernel offers."""

import numpy as np
import pytest

import pycnn
from pycnn.graph import Node, pad_channels, passes
from pycnn.layers import OPS
from pycnn.step_kernel import StepKernel

RNG = np.random.default_rng(0)


def conv(name, x, cin, cout, k=3, **attrs):
    w = RNG.standard_normal((cout, cin, k, k)).astype(np.float32) / np.sqrt(cin * k * k)
    return Node(
        name,
        "conv2d",
        [x],
        attrs=dict(padding=k // 2, **attrs),
        params={"weight": w, "bias": RNG.standard_normal(cout).astype(np.float32)},
    )


def bn(name, x, c):
    return Node(
        name,
        "batch_norm",
        [x],
        params={
            "running_mean": RNG.uniform(-1, 1, c),
            "running_var": RNG.uniform(0.5, 2, c),
            "weight": RNG.uniform(0.5, 2, c),
            "bias": RNG.uniform(-1, 1, c),
        },
    )


def run_passes(nodes, outputs, upto, inputs=("x",), shape=(1, 4, 8, 8)):
    """The Graph of nodes, and its steps after the passes up to and including `upto` (run again
    here, on their own)."""
    g = pycnn.Graph(dict.fromkeys(inputs, (None,) + shape[1:]), nodes, outputs)
    ctx = passes.PlanContext(tuple(g.inputs), tuple(outputs), g.infer_shapes(), "auto")
    run_passes.transforms_before = pycnn._C.weight_transform_count()
    steps = passes.initial_steps(nodes)
    for p in passes.PLAN_PASSES[: passes.PLAN_PASSES.index(upto) + 1]:
        steps = p(steps, ctx)
    return g, steps


def summary(steps):
    return [(s.names, s.inputs, s.output, s.attrs.get("activation"), s.attrs.get("max_map")) for s in steps]


def test_alias_identities():
    nodes = [conv("c", "x", 4, 4), Node("d", "identity", ["c"]), Node("r", "relu", ["d"]), Node("o", "identity", ["r"])]
    _, steps = run_passes(nodes, ["o"], passes.alias_identities)
    assert summary(steps) == [
        (["c"], ["x"], "c", None, None),
        (["r"], ["c"], "r", None, None),
        (["o"], ["r"], "o", None, None),
    ]  # the graph output stays a step


def test_fold_batch_norm_only_for_a_sole_reader():
    nodes = [conv("c", "x", 4, 4), bn("b", "c", 4), conv("c2", "b", 4, 4), bn("b2", "c2", 4), Node("r", "relu", ["c2"])]
    g, steps = run_passes(nodes, ["b2", "r"], passes.fold_batch_norm)
    assert [s.names for s in steps] == [["c", "b"], ["c2"], ["b2"], ["r"]]  # c2 has two readers: not folded
    x = RNG.standard_normal((2, 4, 8, 8)).astype(np.float32)
    want = g.run_reference(x)
    for k, y in g(x).items():
        np.testing.assert_allclose(y, want[k], rtol=1e-4, atol=1e-4)


def test_fold_channel_scale_only_per_output_channel():
    g4 = RNG.uniform(0.5, 2, (4, 1, 1)).astype(np.float32)
    nodes = [
        conv("a", "x", 4, 4),
        Node("s", "binary", ["a"], attrs={"fn": "mul", "const_first": True}, params={"other": g4}),  # folded
        conv("b", "s", 4, 4, activation="relu"),
        Node("t", "binary", ["b"], attrs={"fn": "mul"}, params={"other": g4}),  # after a ReLU: kept
        conv("c", "t", 4, 4),
        Node("u", "binary", ["c"], attrs={"fn": "mul"}, params={"other": RNG.uniform(0.5, 2, (4, 8, 1))}),  # per row
    ]
    g, steps = run_passes(nodes, ["u"], passes.fold_channel_scale)
    assert [s.names for s in steps] == [["a", "s"], ["b"], ["t"], ["c"], ["u"]]
    x = RNG.standard_normal((2, 4, 8, 8)).astype(np.float32)
    np.testing.assert_allclose(g(x), g.run_reference(x), rtol=1e-4, atol=1e-4)


def test_fuse_residual_add_needs_the_other_operand_first():
    nodes = [
        conv("a", "x", 4, 4),
        conv("b", "a", 4, 4),
        Node("s", "add", ["b", "a"]),  # a made before b: fused
        conv("c", "s", 4, 4),
        conv("d", "s", 4, 4),
        Node("t", "add", ["c", "d"]),
    ]  # d after c: c not fused
    _, steps = run_passes(nodes, ["t"], passes.fuse_residual_add)
    assert [s.names for s in steps] == [["a"], ["b", "s"], ["c"], ["d", "t"]]
    assert steps[1].inputs == ["a", "a"] and steps[3].inputs == ["s", "c"]


def test_fuse_relu_chains_after_bn_and_add():
    nodes = [
        conv("a", "x", 4, 4),
        bn("n", "a", 4),
        Node("r", "relu", ["n"]),
        conv("b", "r", 4, 4),
        Node("s", "add", ["b", "r"]),
        Node("r2", "relu", ["s"]),
        Node("p", "max_pool2d", ["r2"], attrs=dict(kernel=2)),
        Node("r3", "relu", ["p"]),
    ]
    g, steps = run_passes(nodes, ["r3"], passes.fuse_relu)
    assert summary(steps) == [
        (["a", "n", "r"], ["x"], "r", "relu", None),
        (["b", "s", "r2"], ["r", "r"], "r2", "relu", None),
        (["p"], ["r2"], "p", None, None),
        (["r3"], ["p"], "r3", None, None),
    ]  # no ReLU in a pool


def test_fuse_activation_runs_in_the_conv_step():
    """ReLU6 after conv + bn + residual add, hard-swish after a 1x1 (blocked layout), GELU after a
    depthwise conv: each runs in its conv's step, and the results are the reference's."""
    nodes = [
        conv("a", "x", 16, 16),
        bn("n", "a", 16),
        Node("r6", "unary", ["n"], attrs=dict(fn="clip", lo=0.0, hi=6.0)),
        conv("b", "r6", 16, 32, k=1),
        Node("hs", "unary", ["b"], attrs=dict(fn="hardswish")),
        conv("c", "hs", 32, 32, k=1),
        Node("s", "add", ["c", "hs"]),
        Node("g", "unary", ["s"], attrs=dict(fn="gelu")),
        conv("d", "g", 1, 32, groups=32),
        Node("t", "unary", ["d"], attrs=dict(fn="tanh")),  # no C++ kernel: its own step
    ]
    g, steps = run_passes(nodes, ["t"], passes.fuse_activation, shape=(2, 16, 9, 9))
    assert [(s.names, s.attrs.get("post_act", (None,))[0]) for s in steps] == [
        (["a", "n", "r6"], "clip"),
        (["b", "hs"], "hardswish"),
        (["c", "s", "g"], "gelu"),
        (["d"], None),
        (["t"], None),
    ]
    x = RNG.standard_normal((2, 16, 9, 9)).astype(np.float32) * 3
    x[0, 0, 0, 0] = np.nan
    y, want = g(x), g.run_reference(x)
    np.testing.assert_array_equal(np.isnan(y), np.isnan(want))
    np.testing.assert_allclose(np.nan_to_num(y), np.nan_to_num(want), rtol=2e-4, atol=2e-5)


def test_fuse_max_map():
    nodes = [conv("c", "x", 4, 6), Node("r", "relu", ["c"]), Node("m", "reduce_max", ["r"], attrs=dict(axes=(2, 3)))]
    _, steps = run_passes(nodes, ["m"], passes.fuse_max_map)
    assert summary(steps) == [(["c", "r", "m"], ["x"], "m", "relu", 1)]


def test_no_fusion_across_a_graph_output():
    nodes = [conv("c", "x", 4, 4), Node("r", "relu", ["c"])]
    _, steps = run_passes(nodes, ["c", "r"], passes.mark_dead_tensors)
    assert [(s.names, s.free) for s in steps] == [(["c"], ["x"]), (["r"], [])]


def test_make_kernels_prepares_weights_once():
    nodes = [conv("c", "x", 4, 8)]
    _, steps = run_passes(nodes, ["c"], passes.make_kernels)
    assert isinstance(steps[0].fn, StepKernel)
    assert pycnn._C.weight_transform_count() == run_passes.transforms_before + 1
    steps[0].fn(RNG.standard_normal((1, 4, 8, 8)).astype(np.float32))  # the declared shape: prepared already
    assert pycnn._C.weight_transform_count() == run_passes.transforms_before + 1


def test_mark_dead_tensors():
    nodes = [conv("a", "x", 4, 4), conv("b", "a", 4, 4), Node("s", "add", ["a", "b"])]
    _, steps = run_passes(nodes, ["s"], passes.mark_dead_tensors)
    # b + a fused (a exists before b): a and x die at the fused step
    assert [(s.names, sorted(s.free)) for s in steps] == [(["a"], ["x"]), (["b", "s"], ["a"])]


def mobile_block_nodes(mid=24, out=40, sq=8):
    """An inverted residual block as MobileNet V3 writes it: 1x1 expand -> batch norm -> ReLU6 ->
    depthwise 3x3 -> hard-swish -> squeeze-and-excitation (global pool, 1x1, ReLU, 1x1,
    hard-sigmoid, x * gate) -> 1x1 project -> 1x1 with a residual add -> 1x1 head (16 outputs)."""
    return [
        conv("a", "x", 16, mid, k=1),
        bn("n", "a", mid),
        Node("r6", "unary", ["n"], attrs=dict(fn="clip", lo=0.0, hi=6.0)),
        conv("d", "r6", 1, mid, groups=mid),
        Node("hs", "unary", ["d"], attrs=dict(fn="hardswish")),
        Node("gap", "global_avg_pool2d", ["hs"]),
        conv("s1", "gap", mid, sq, k=1),
        Node("sr", "relu", ["s1"]),
        conv("s2", "sr", sq, mid, k=1),
        Node("sg", "unary", ["s2"], attrs=dict(fn="hardsigmoid")),
        Node("m", "binary", ["hs", "sg"], attrs=dict(fn="mul")),
        conv("p", "m", mid, out, k=1),
        conv("q", "p", out, out, k=1),
        Node("sum", "add", ["q", "p"]),
        conv("h", "sum", out, 16, k=1),
    ]


def test_pad_channels_pads_whole_groups_and_matches_the_reference():
    """24 and 40 channels become 32 and 48 across every op that carries them (expand, batch
    norm, depthwise, the gate, the residual add); the squeeze's 8 (one pixel) and the graph's
    input and output stay; the padded network gives the reference's results, NaN where it does,
    and its groups are channel-blocked end to end."""
    nodes = mobile_block_nodes()
    g, steps = run_passes(nodes, ["h"], passes.pad_channels, shape=(1, 16, 9, 9))
    # tensors by the fused steps' outputs: a+n+r6, d+hs, s2+sg, q+sum
    assert g._padded == dict.fromkeys(("r6", "hs", "gap", "sg", "m"), 32) | dict.fromkeys(("p", "sum"), 48)
    w = {s.names[0]: s.params["weight"].shape for s in steps if s.op == "conv2d"}
    assert w == {
        "a": (32, 16, 1, 1),
        "d": (32, 1, 3, 3),
        "s1": (8, 32, 1, 1),
        "s2": (32, 8, 1, 1),
        "p": (48, 32, 1, 1),
        "q": (48, 48, 1, 1),
        "h": (16, 48, 1, 1),
    }
    assert [s.attrs["groups"] for s in steps if s.names[0] == "d"] == [32]
    for b in (1, 3):
        x = RNG.standard_normal((b, 16, 9, 9)).astype(np.float32)
        x[0, 2, 4, 4] = np.nan
        y, want = g(x), g.run_reference(x)
        assert y.shape == want.shape == (b, 16, 9, 9)
        np.testing.assert_array_equal(np.isnan(y), np.isnan(want))
        np.testing.assert_allclose(np.nan_to_num(y), np.nan_to_num(want), rtol=2e-4, atol=2e-5)
    lay = g.bound_plan({"x": x}).layouts
    names = [s.names[0] for s in g.plan_steps]
    blocked = {names[i] for i, (bits, _) in lay.items() if bits & 2}  # Y_BLOCKED
    assert {"a", "d", "m", "p", "q"} <= blocked and "h" not in blocked


def test_pad_channels_pads_grouped_convs_by_whole_groups():
    """RegNet's stage of 104 channels in groups of 8, as 24 in groups of 8: 1x1 -> ReLU ->
    grouped 3x3 -> ReLU -> 1x1 with the residual. The 24-channel tensors become 32, the grouped
    conv gets a fourth group of zero filters (groups 3 -> 4, still 8 channels each), runs
    grouped_c16 on blocked tensors, and the results are the reference's."""
    nodes = [
        conv("a", "x", 16, 24, k=1),
        Node("ar", "relu", ["a"]),
        conv("b", "ar", 8, 24, groups=3),
        Node("br", "relu", ["b"]),
        conv("c", "br", 24, 16, k=1),
        Node("sum", "add", ["c", "x"]),
        conv("h", "sum", 16, 16, k=1),
    ]
    g, steps = run_passes(nodes, ["h"], passes.pad_channels, shape=(1, 16, 9, 9))
    assert g._padded == dict.fromkeys(("ar", "br"), 32)
    (b,) = [s for s in steps if s.names[0] == "b"]
    assert b.params["weight"].shape == (32, 8, 3, 3) and b.attrs["groups"] == 4
    for n in (1, 3):
        x = RNG.standard_normal((n, 16, 9, 9)).astype(np.float32)
        np.testing.assert_allclose(g(x), g.run_reference(x), rtol=2e-4, atol=2e-5)
    plan = g.bound_plan({"x": x})
    names = [s.names[0] for s in g.plan_steps]
    assert {names[i]: lay for i, lay in plan.layouts.items()}["b"] == (3, "grouped_c16")  # x and y blocked


@pytest.mark.parametrize(
    "case",
    ["disabled", "kxk reader", "concat reader", "ratio", "graph output", "named algorithm"],
)
def test_pad_channels_leaves_what_it_cannot_pad(case, monkeypatch):
    """No padding when switched off, when a 3x3 conv reads the tensor (it would pay the padding
    in FLOPs), when an op that sees logical channels reads it (a concat), when the padding is
    over a third (20 -> 32), when the tensor is a graph output, or for a Graph told to run one
    algorithm; the results are the reference's either way."""
    nodes = mobile_block_nodes()
    outputs = ["h"]
    algo = "auto"
    if case == "disabled":
        monkeypatch.setattr(pad_channels, "ENABLED", False)
    elif case == "kxk reader":
        nodes[-1] = conv("h", "sum", 40, 16, k=3)
    elif case == "concat reader":
        nodes.append(Node("cat", "concat", ["sum", "h"]))
        outputs = ["cat"]
    elif case == "ratio":
        nodes = mobile_block_nodes(mid=20, out=20)
    elif case == "graph output":
        outputs = ["h", "sum"]
    else:
        algo = "im2col"
    g = pycnn.Graph({"x": (None, 16, 9, 9)}, nodes, outputs, algo=algo)
    padded = set(g._padded)
    if case in ("disabled", "named algorithm"):
        assert padded == set()
    elif case == "ratio":
        assert padded == set()
    else:
        assert padded == {"r6", "hs", "gap", "sg", "m"}  # the 24-channel group; 40 is not padded
    x = RNG.standard_normal((2, 16, 9, 9)).astype(np.float32)
    y, want = g(x), g.run_reference(x)
    for a, b in zip(y.values() if isinstance(y, dict) else [y], want.values() if isinstance(want, dict) else [want]):
        np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-5)


def one_node(op):
    """A node of each operator with small valid attributes and parameters."""
    w = RNG.standard_normal
    made = {
        "conv2d": lambda: conv("n", "x", 4, 4),
        "linear": lambda: Node("n", "linear", ["x"], params={"weight": w((3, 4)), "bias": w(3)}),
        "batch_norm": lambda: bn("n", "x", 4),
        "max_pool2d": lambda: Node("n", op, ["x"], attrs=dict(kernel=2)),
        "avg_pool2d": lambda: Node("n", op, ["x"], attrs=dict(kernel=2)),
        "adaptive_avg_pool2d": lambda: Node("n", op, ["x"], attrs=dict(output_size=2)),
        "local_response_norm": lambda: Node("n", op, ["x"], attrs=dict(size=3)),
        "add": lambda: Node("n", op, ["x", "x"]),
        "bias_add": lambda: Node("n", op, ["x"], params={"bias": w(8)}),
        "concat": lambda: Node("n", op, ["x", "x"]),
        "softmax": lambda: Node("n", op, ["x"]),
        "flatten": lambda: Node("n", op, ["x"]),
        "reshape": lambda: Node("n", op, ["x"], attrs=dict(shape=(0, -1))),
        "squeeze": lambda: Node("n", op, ["x"], attrs=dict(axes=(0,))),
        "unsqueeze": lambda: Node("n", op, ["x"], attrs=dict(axes=(0,))),
        "embedding": lambda: Node("n", op, ["x"], params={"weight": w((10, 3))}),
        "reduce_max": lambda: Node("n", op, ["x"], attrs=dict(axes=(2, 3))),
        "reduce_mean": lambda: Node("n", op, ["x"], attrs=dict(axes=(2, 3))),
        "transpose": lambda: Node("n", op, ["x"], attrs=dict(perm=(0, 2, 3, 1))),
        "unary": lambda: Node("n", op, ["x"], attrs=dict(fn="sigmoid")),
        "binary": lambda: Node("n", op, ["x"], attrs=dict(fn="mul"), params={"other": w(8)}),
        "slice": lambda: Node("n", op, ["x"], attrs=dict(starts=(0,), ends=(2,), axes=(1,))),
        "pad": lambda: Node("n", op, ["x"], attrs=dict(pads=(0, 0, 1, 1, 0, 0, 1, 1))),
        "layer_norm": lambda: Node("n", op, ["x"], attrs=dict(axis=1)),
    }
    return made.get(op, lambda: Node("n", op, ["x"]))()


@pytest.mark.parametrize("op", sorted(OPS))
def test_every_operator_kernel_is_a_step_kernel(op):
    """Every operator's kernel offers the StepKernel interface (the Graph checks no hasattr)."""
    n = one_node(op)
    fn = OPS[op].kernel(n.attrs, n.params, "auto")
    assert isinstance(fn, StepKernel), type(fn)
    assert isinstance(fn.algo_for((1, 4, 8, 8)) if op == "conv2d" else fn.algo_for(()), str)
