"""Squeeze-and-excitation as one kernel (kernels/cpu/se_block.inl, _C.se_block) against the
reference's pool, convs and product, and the binding pass that uses it in a Graph
(pycnn/graph/fuse_se.py)."""

import numpy as np
import pytest
from test_fuse_pw_dw import HSWISH, NONE, RELU, RELU6, SILU, conv_node, epilogue_ref

import pycnn
from conftest import blk, unblk
from pycnn import _C
from pycnn.graph import Node, fuse_se, pad_channels

SIGMOID = (False, -float("inf"), float("inf"), 1, 0.0, 0.0)
HSIGMOID = (False, -float("inf"), float("inf"), 2, 1 / 6, 0.5)


def want(x, w1, b1, e1, w2, b2, e2):
    """float64: mean over H, W -> w1 (+ b1, e1) -> w2 (+ b2, e2) -> x * gate."""
    with np.errstate(invalid="ignore"):  # NaN and Inf inputs: IEEE's answer is the point
        s = x.astype(np.float64).mean(axis=(2, 3))
        h = epilogue_ref(s @ w1.T.astype(np.float64) + (0 if b1 is None else b1), e1)
        g = epilogue_ref(h @ w2.T.astype(np.float64) + (0 if b2 is None else b2), e2)
        return x * g[:, :, None, None]


def run(x, w1, b1, e1, w2, b2, e2, blocked):
    xs = blk(x) if blocked else x
    y = np.full(xs.shape, np.nan, np.float32)
    _C.se_block(xs, w1, b1, e1, w2, b2, e2, blocked, y)
    return unblk(y) if blocked else y


CASES = [  # N, C, Cm, H, W, e1, e2, bias
    (1, 16, 8, 56, 56, RELU, HSIGMOID, True),  # MobileNet V3 Small's first: a map for two threads
    (1, 96, 24, 14, 14, RELU, HSIGMOID, True),
    (2, 32, 8, 7, 9, SILU, SIGMOID, True),  # EfficientNet's
    (3, 576, 144, 7, 7, RELU6, HSWISH, False),  # long dots, no bias
    (1, 48, 1, 1, 1, NONE, NONE, True),  # one hidden unit, a 1x1 map
    (2, 64, 37, 5, 3, RELU, SIGMOID, True),  # Cm no multiple of a vector
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: "x".join(map(str, c[:5])))
@pytest.mark.parametrize("blocked", [True, False])
def test_se_block_matches_the_reference_every_isa(case, blocked, isa):
    N, C, Cm, H, W, e1, e2, bias = case
    rng = np.random.default_rng(C + Cm + H)
    x = rng.standard_normal((N, C, H, W)).astype(np.float32)
    w1 = (rng.standard_normal((Cm, C)) / np.sqrt(C)).astype(np.float32)
    w2 = (rng.standard_normal((C, Cm)) / np.sqrt(Cm)).astype(np.float32)
    b1 = rng.standard_normal(Cm).astype(np.float32) if bias else None
    b2 = rng.standard_normal(C).astype(np.float32) if bias else None
    y = run(x, w1, b1, e1, w2, b2, e2, blocked)
    np.testing.assert_allclose(y, want(x, w1, b1, e1, w2, b2, e2), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("C", [5, 23, 40])
def test_se_block_nchw_any_channel_count_every_isa(C, isa):
    """NCHW tensors need no 16 | C: planes of any width (tails of a vector) and any count."""
    rng = np.random.default_rng(C)
    x = rng.standard_normal((2, C, 6, 11)).astype(np.float32)
    w1 = rng.standard_normal((3, C)).astype(np.float32)
    w2 = rng.standard_normal((C, 3)).astype(np.float32)
    b1, b2 = rng.standard_normal(3).astype(np.float32), rng.standard_normal(C).astype(np.float32)
    y = run(x, w1, b1, RELU, w2, b2, SIGMOID, False)
    np.testing.assert_allclose(y, want(x, w1, b1, RELU, w2, b2, SIGMOID), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("blocked", [True, False])
def test_se_block_nan_and_inf(blocked):
    """A NaN pixel makes its channel's mean NaN, so every gate it reaches and their planes; an Inf
    as the reference's IEEE arithmetic gives it (Inf * gate, or NaN where a gate is 0 or NaN)."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 32, 5, 5)).astype(np.float32)
    x[0, 3, 2, 2] = np.nan
    x[1, 7, 0, 4] = np.inf
    w1 = rng.standard_normal((8, 32)).astype(np.float32)
    w1[:, 3] = 0.0  # channel 3 reaches the hidden units through 0 * NaN (NaN) all the same
    w2 = rng.standard_normal((32, 8)).astype(np.float32)
    y = run(x, w1, None, RELU, w2, None, SIGMOID, blocked)
    ref = want(x, w1, None, RELU, w2, None, SIGMOID)
    assert np.isnan(y[0]).all()  # image 0: every gate NaN
    np.testing.assert_array_equal(np.isnan(y), np.isnan(ref))
    np.testing.assert_array_equal(np.isposinf(y), np.isposinf(ref))
    np.testing.assert_array_equal(np.isneginf(y), np.isneginf(ref))
    ok = np.isfinite(ref)
    np.testing.assert_allclose(y[ok], ref[ok], rtol=1e-4, atol=1e-5)


def test_se_block_refuses_bad_arguments():
    x = np.zeros((1, 2, 4, 4, 16), np.float32)
    w1, w2 = np.zeros((8, 32), np.float32), np.zeros((32, 8), np.float32)
    y = np.zeros_like(x)
    _C.se_block(x, w1, None, NONE, w2, None, NONE, True, y)
    with pytest.raises(ValueError, match="x: expected a channel-blocked"):
        _C.se_block(np.zeros((1, 32, 4, 4), np.float32), w1, None, NONE, w2, None, NONE, True, y)
    with pytest.raises(ValueError, match="x: expected 4 dimensions"):
        _C.se_block(x, w1, None, NONE, w2, None, NONE, False, y)
    with pytest.raises(ValueError, match="y: expected x's shape"):
        _C.se_block(x, w1, None, NONE, w2, None, NONE, True, y[:, :1])
    wide = np.full((1, 4, 4, 4, 16), 3.0, np.float32)
    for bad in (wide[:, ::2], y.astype(np.float64)):  # never written through a converted copy
        with pytest.raises(ValueError, match="y: expected a C-contiguous float32 array"):
            _C.se_block(x, w1, None, NONE, w2, None, NONE, True, bad)
    assert (wide == 3.0).all()
    with pytest.raises(ValueError, match="w1: expected"):
        _C.se_block(x, w1[:, :16], None, NONE, w2, None, NONE, True, y)
    with pytest.raises(ValueError, match="w2: expected"):
        _C.se_block(x, w1, None, NONE, w2[:, :4], None, NONE, True, y)
    with pytest.raises(ValueError, match="b1: expected"):
        _C.se_block(x, w1, np.zeros(3, np.float32), NONE, w2, None, NONE, True, y)
    with pytest.raises(ValueError, match="b2: expected"):
        _C.se_block(x, w1, None, NONE, w2, np.zeros(3, np.float32), NONE, True, y)
    with pytest.raises(ValueError, match="post_fn"):
        _C.se_block(x, w1, None, NONE, w2, None, (False, 0.0, 1.0, 99, 0.0, 0.0), True, y)


def se_net(C=32, Cm=8, H=9, gate_is_output=False, pooled_read_twice=False):
    """stem conv -> depthwise 3x3 -> squeeze-and-excitation (pool, 1x1 + ReLU, 1x1 + hardsigmoid,
    x * gate) -> 1x1 project: MobileNet V3's block."""
    rng = np.random.default_rng(12)

    def conv(*args, **kw):
        return conv_node(rng, *args, **kw)

    nodes = [
        conv("stem", "x", 3, C, 3),
        conv("dw", "stem", C, C, 3, groups=C),
        Node("pool", "global_avg_pool2d", ["dw"]),
        conv("fc1", "pool", C, Cm, 1),
        Node("r", "relu", ["fc1"]),
        conv("fc2", "r", Cm, C, 1),
        Node("hs", "unary", ["fc2"], attrs=dict(fn="hardsigmoid", alpha=1 / 6, beta=0.5)),
        Node("scale", "binary", ["dw", "hs"], attrs=dict(fn="mul")),
        conv("project", "scale", C, 16, 1),
    ]
    outputs = ["project"]
    if gate_is_output:
        outputs.append("hs")
    if pooled_read_twice:
        nodes.append(Node("pool_out", "flatten", ["pool"]))
        outputs.append("pool_out")
    return pycnn.Graph({"x": (None, 3, H, H)}, nodes, outputs)


@pytest.mark.parametrize("C", [32, 20])
def test_graph_fuses_squeeze_and_excitation(C, monkeypatch):
    """The four steps run as one (blocked for 32 channels, NCHW for 20), results the reference's,
    a NaN included; the profile names the fused steps; off, four steps and the same result."""
    monkeypatch.setattr(pad_channels, "ENABLED", False)  # 20 channels stay NCHW
    x = np.random.default_rng(2).standard_normal((2, 3, 9, 9)).astype(np.float32)
    x[1, 0, 3, 3] = np.nan
    g = se_net(C)
    y = g(x)
    plan = g.bound_plan(g.feed(x))
    names = [s.names[0] for s in g.plan_steps]
    assert {names[m]: tuple(names[k] for k in ks) for m, ks in plan.fused_se.items()} == {
        "scale": ("pool", "fc1", "fc2")
    }
    m = next(iter(plan.fused_se))
    assert plan[plan.index.index(m)][0].blocked == (C % 16 == 0)
    assert not set(plan.fused_se[m]) & set(plan.index)  # the fused steps have no plan entries
    ref = g.run_reference(x)
    np.testing.assert_array_equal(np.isnan(y), np.isnan(ref))
    np.testing.assert_allclose(np.nan_to_num(y), np.nan_to_num(ref), rtol=1e-4, atol=1e-4)
    algos = {r[0].split("+")[0]: r[5] for r in g.profile(x, runs=1, warmup=0).rows}
    assert algos["scale"].startswith("se_block")
    assert algos["pool"] == algos["fc1"] == "fused into se_block"
    monkeypatch.setattr(fuse_se, "ENABLED", False)
    g = se_net(C)
    y_off = g(x)
    assert g.bound_plan(g.feed(x)).fused_se == {}
    np.testing.assert_array_equal(np.isnan(y_off), np.isnan(y))
    np.testing.assert_allclose(np.nan_to_num(y_off), np.nan_to_num(y), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kw", [dict(gate_is_output=True), dict(pooled_read_twice=True)])
def test_graph_keeps_blocks_whose_parts_are_read_elsewhere(kw):
    """A gate that is a graph output, or a pooled vector another step reads, must exist: no fusion."""
    g = se_net(**kw)
    x = np.random.default_rng(3).standard_normal((1, 3, 9, 9)).astype(np.float32)
    ys = g(x)
    assert g.bound_plan(g.feed(x)).fused_se == {}
    ref = g.run_reference(x)
    for k in ys:
        np.testing.assert_allclose(ys[k], ref[k], rtol=1e-4, atol=1e-4)
