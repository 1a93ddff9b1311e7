"""Chains of consecutive conv steps run a few images at a time (pycnn/graph/chunk_chains.py): which
steps chain, the results (the reference's, NaN and Inf included; the same as unchained), the
residuals sliced per call, the profile's rows, and no chains at batch 1."""

import numpy as np
import pytest

import pycnn
from pycnn.graph import Node, chunk_chains
from pycnn.prepared import PreparedConv


def conv(rng, name, src, cin, cout, k, **attrs):
    w = rng.standard_normal((cout, cin, k, k)) / np.sqrt(cin * k * k)
    b = rng.standard_normal(cout) * 0.1
    return Node(name, "conv2d", [src], attrs=dict(padding=k // 2, **attrs), params={"weight": w, "bias": b})


def bottleneck_net(seed=3, side_output=False):
    """stem -> [a 1x1 -> b 3x3 -> c 1x1 (+ stem)] -> pool -> [d 3x3 -> e 1x1] -> head, every conv
    ReLU'd. side_output: b's output is a graph output too (so the chain stops at it)."""
    rng = np.random.default_rng(seed)
    relu = dict(activation="relu")
    nodes = [
        conv(rng, "stem", "x", 3, 16, 3, **relu),
        conv(rng, "a", "stem", 16, 32, 1, **relu),
        conv(rng, "b", "a", 32, 32, 3, **relu),
        conv(rng, "c", "b", 32, 16, 1),
        Node("sum", "add", ["c", "stem"]),
        Node("r", "relu", ["sum"]),
        Node("pool", "max_pool2d", ["r"], attrs=dict(kernel=2, stride=2)),
        conv(rng, "d", "pool", 16, 24, 3, **relu),
        conv(rng, "e", "d", 24, 8, 1),
        conv(rng, "head", "e", 8, 4, 1),
    ]
    outs = ["head", "b"] if side_output else ["head"]
    return pycnn.Graph({"x": (None, 3, 24, 24)}, nodes, outs)


def _names(g):
    return [s.names[0] for s in g.plan_steps]


@pytest.fixture
def chained(monkeypatch):
    monkeypatch.setattr(chunk_chains, "MIN_INTERMEDIATE_BYTES", 0)
    monkeypatch.setattr(chunk_chains, "POOL_MIN_INPUT_BYTES", 0)
    monkeypatch.setattr(chunk_chains, "IMAGES_BYTES", 2 * 4 * 32 * 24 * 24)  # two images per call
    return monkeypatch


def test_chains_run_per_chunk_of_images_and_match(chained):
    x = np.random.default_rng(1).standard_normal((5, 3, 24, 24)).astype(np.float32)
    x[1, 0, 2, 2] = np.nan
    x[4, 2, 7, 7] = np.inf
    g = bottleneck_net()
    y = g(x)
    plan = g.bound_plan(g.feed(x))
    names = _names(g)
    got = {names[j]: [names[i] for i in ks] for j, ks in plan.chunked.items()}
    # stem's output has two readers; c's (ReLU'd residual sum) is read by the pool alone
    assert got == {"head": ["a", "b", "c", "pool", "d", "e"]}
    for j, ks in plan.chunked.items():
        assert j in plan.index and not set(ks) & set(plan.index)
    ref = g.run_reference(x)
    np.testing.assert_array_equal(np.isnan(y), np.isnan(ref))
    np.testing.assert_allclose(np.nan_to_num(y), np.nan_to_num(ref), rtol=1e-4, atol=1e-4)
    rows = {r[0].split("+")[0]: r[5] for r in g.profile(x, runs=1, warmup=0).rows}
    for j, ks in plan.chunked.items():
        assert f"(+ the {len(ks)} steps before it, a few images at a time)" in rows[names[j]]
        assert all(rows[names[i]].startswith("fused into a later step") for i in ks)
    chained.setattr(chunk_chains, "ENABLED", False)
    g_off = bottleneck_net()
    y_off = g_off(x)
    assert g_off.bound_plan(g_off.feed(x)).chunked == {}
    np.testing.assert_array_equal(np.isnan(y_off), np.isnan(y))
    np.testing.assert_allclose(np.nan_to_num(y_off), np.nan_to_num(y), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "switch, expected",
    [
        (("POOLS", False), {"c": ["a", "b"], "head": ["d", "e"]}),
        # c's output (4 x 16 x 24 x 24 floats) is below the pool's threshold: the pool starts a chain
        (("POOL_MIN_INPUT_BYTES", 4 * 16 * 24 * 24 * 4 + 4), {"c": ["a", "b"], "head": ["pool", "d", "e"]}),
    ],
)
def test_pools_off_or_a_small_pool_input_cut_the_chain(chained, switch, expected):
    chained.setattr(chunk_chains, *switch)
    x = np.random.default_rng(4).standard_normal((4, 3, 24, 24)).astype(np.float32)
    g = bottleneck_net()
    y = g(x)
    names = _names(g)
    got = {names[j]: [names[i] for i in ks] for j, ks in g.bound_plan(g.feed(x)).chunked.items()}
    assert got == expected
    np.testing.assert_allclose(y, g.run_reference(x), rtol=1e-4, atol=1e-4)


def pool_net(kind, seed=5):
    """conv s (two readers) -> [pool q -> 1x1 u] + 1x1 t; conv a -> pool p (two readers: 1x1s b
    and c) -> b + c: a chain that starts with a pool (q -> u) and one that ends with one (a -> p),
    on 16- and 32-channel maps (the pools' tensors channel-blocked where the layout pass is on)."""
    rng = np.random.default_rng(seed)
    relu = dict(activation="relu")
    pool = dict(kernel=3, stride=1, padding=1) if kind == "avg_pool2d" else dict(kernel=3, stride=2, padding=1)
    nodes = [
        conv(rng, "s", "x", 16, 16, 3, **relu),
        Node("q", kind, ["s"], attrs=dict(pool)),
        conv(rng, "u", "q", 16, 32, 1, **relu),
        conv(rng, "t", "s", 16, 32, 1, stride=pool["stride"], **relu),
        Node("tu", "add", ["t", "u"]),
        conv(rng, "a", "tu", 32, 32, 3, **relu),
        Node("p", kind, ["a"], attrs=dict(pool)),
        conv(rng, "b", "p", 32, 16, 1),
        conv(rng, "c", "p", 32, 16, 1),
        Node("head", "add", ["b", "c"]),
    ]
    return pycnn.Graph({"x": (None, 16, 20, 20)}, nodes, ["head"])


@pytest.mark.parametrize("kind", ["max_pool2d", "avg_pool2d"])
@pytest.mark.parametrize("blocked", [True, False])
def test_pools_start_and_end_chains(chained, kind, blocked):
    """A pool as a chain's first member reads the chain's input per chunk; as its last it writes
    its images of the chain's output (out=); NCHW and channel-blocked, NaN and Inf as the
    reference."""
    from pycnn import layout

    chained.setattr(chunk_chains, "WEIGHTS_PER_IMAGE", 0.0)
    chained.setattr(layout, "ENABLED", blocked)
    x = np.random.default_rng(6).standard_normal((5, 16, 20, 20)).astype(np.float32)
    x[2, 3, 4, 4] = np.nan
    x[3, 5, 10, 10] = -np.inf
    g = pool_net(kind)
    y = g(x)
    plan = g.bound_plan(g.feed(x))
    names = _names(g)
    got = {names[j]: [names[i] for i in ks] for j, ks in plan.chunked.items()}
    assert got["u"] == ["q"] and got["p"] == ["a"]
    pooled = {names.index("q"), names.index("p")}
    assert bool(pooled & set(plan.layouts)) == blocked
    ref = g.run_reference(x)
    np.testing.assert_array_equal(np.isnan(y), np.isnan(ref))
    np.testing.assert_allclose(np.nan_to_num(y), np.nan_to_num(ref), rtol=1e-4, atol=1e-4)
    y2 = g(x)  # the chain's output made fresh per run: the first result is not overwritten
    np.testing.assert_array_equal(np.isnan(y2), np.isnan(y))
    np.testing.assert_allclose(np.nan_to_num(y2), np.nan_to_num(y), rtol=0, atol=0)


def test_bound_pool_writes_out_and_refuses_a_bad_one():
    from pycnn import _C

    x = np.random.default_rng(7).standard_normal((2, 3, 9, 9)).astype(np.float32)
    call = _C.bind_pool2d([2, 3, 9, 9], [2, 3, 4, 4], 3, 3, 2, 2, 0, 0, True, False, False)
    out = np.full((4, 3, 4, 4), 7.0, np.float32)
    assert call(x, out=out[1:3]) is not None
    np.testing.assert_array_equal(out[1:3], pycnn.reference.max_pool2d(x, (3, 3), (2, 2), (0, 0)))
    assert (out[0] == 7).all() and (out[3] == 7).all()
    np.testing.assert_array_equal(call(x), out[1:3])
    with pytest.raises(ValueError, match="out: not the output shape"):
        call(x, out=np.empty((2, 3, 4, 5), np.float32))
    with pytest.raises(ValueError, match="out: expected a C-contiguous float32"):
        call(x, out=np.empty((2, 3, 4, 8), np.float32)[..., ::2])
    with pytest.raises(ValueError, match="out: expected a C-contiguous float32"):
        call(x, out=np.empty((2, 3, 4, 4), np.float64))
    ro = np.empty((2, 3, 4, 4), np.float32)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="out: array is read-only"):
        call(x, out=ro)
    with pytest.raises(ValueError, match="out: overlaps x"):
        big = np.zeros(2 * 3 * 9 * 9, np.float32)
        call(big.reshape(2, 3, 9, 9), out=big[: 2 * 3 * 16].reshape(2, 3, 4, 4))


def test_a_residual_member_is_sliced_per_call(chained):
    """The residual of the chain's 1x1 (the stem's output, the chain's own input here) is read
    per chunk of images: every image of the batch gets its own."""
    x = np.random.default_rng(2).standard_normal((3, 3, 24, 24)).astype(np.float32)
    g = bottleneck_net()
    y = g(x)
    plan = g.bound_plan(g.feed(x))
    names = _names(g)
    c = names.index("c")
    assert any(c in ks for ks in plan.chunked.values())  # a member before the chain's last step
    assert len(g.plan_steps[c].inputs) == 2  # c carries the residual
    for n in range(3):  # each image alone gives its own row of the batch's result
        np.testing.assert_allclose(g(x[n : n + 1]), y[n : n + 1], rtol=1e-5, atol=1e-5)


def test_no_chain_through_a_graph_output_or_at_batch_1(chained):
    x = np.random.default_rng(3).standard_normal((4, 3, 24, 24)).astype(np.float32)
    g = bottleneck_net(side_output=True)
    y = g(x)
    names = _names(g)
    for ks in g.bound_plan(g.feed(x)).chunked.values():
        assert names.index("b") not in ks  # b's output is a graph output: made whole
    ref = g.run_reference(x)
    for k in ("head", "b"):
        np.testing.assert_allclose(y[k], ref[k], rtol=1e-4, atol=1e-4)
    g1 = bottleneck_net()
    g1(x[:1])
    assert g1.bound_plan(g1.feed(x[:1])).chunked == {}


def test_small_intermediates_are_not_chained():
    """At the default threshold the 24x24 maps' intermediates (tens of KiB) stay unchained."""
    g = bottleneck_net()
    x = np.zeros((4, 3, 24, 24), np.float32)
    g(x)
    assert g.bound_plan(g.feed(x)).chunked == {}


@pytest.mark.parametrize("N", [2, 3])
def test_a_chain_writes_its_part_of_a_blocked_concat(chained, N):
    """DenseNet's 1x1 -> 3x3 pairs chained at batch > 1: the 3x3 still writes its slice of the
    block's channel-blocked concat (images apart), each chunk its own images, so the concats
    stay shared views (as unchained) and the results are the reference's."""
    from test_graph import _kinds, dense_block_graph

    chained.setattr(chunk_chains, "WEIGHTS_PER_IMAGE", 0.0)
    g = dense_block_graph(("head", "a2"), "auto", 16, "bn")
    x = np.random.default_rng(12).standard_normal((N, 16, 12, 12)).astype(np.float32)
    y = g(x)
    ref = g.run_reference(x)
    for k in ("head", "a2"):
        np.testing.assert_allclose(y[k], ref[k], rtol=1e-4, atol=1e-4)
    plan = g._bound[((N, 16, 12, 12),)]
    names = _names(g)
    got = {names[j]: [names[i] for i in ks] for j, ks in plan.chunked.items()}
    assert got == {"x0": ["stem"], "y0": ["a0"], "y1": ["a1"]}  # a2 is a graph output: made whole
    kinds = _kinds(g, N)
    assert kinds.count("_Prefix") == 3 and kinds.count("_Whole") == 1
    parts = [e[0] for e in plan if isinstance(getattr(e[0], "call", None), chunk_chains.Chain)]
    # the 3x3s write in place; the pooled block input (a pool ends its chain) is copied, as unchained
    copied = [p for p in parts if p.copy]
    assert len(parts) == 3 and len(copied) == 1 and not isinstance(copied[0].call.members[-1][0], PreparedConv)
