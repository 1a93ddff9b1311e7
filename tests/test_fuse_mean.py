"""A conv whose maps only a global average pool reads, as one direct_oc call returning the means
(kDirectOcMeanY, kernels/cpu/conv2d_direct_oc.inl), against the reference's conv and mean; and
the binding pass that uses it in a Graph (pycnn/graph/fuse_mean.py)."""

import numpy as np
import pytest
from test_fuse_pw_dw import epilogue_ref

import pycnn
from conftest import blk
from pycnn import layout as _layout
from pycnn import reference
from pycnn.graph import Node, fuse_mean
from pycnn.layers import _C_UNARY
from pycnn.prepared import UNARY_CLIP

INF = float("inf")
EPILOGUES = {  # name: (relu, post) as PreparedConv holds them; the epilogue tuple for epilogue_ref
    "none": (False, None, (False, -INF, INF, -1, 0.0, 0.0)),
    "relu": (True, None, (True, -INF, INF, -1, 0.0, 0.0)),
    "relu6": (False, (UNARY_CLIP, 0.0, 6.0), (False, 0.0, 6.0, -1, 0.0, 0.0)),
    "silu": (False, (_C_UNARY["silu"], 0.0, 0.0), (False, -INF, INF, _C_UNARY["silu"], 0.0, 0.0)),
}


def make_conv(rng, C, K, R, stride, pad, epilogue, bias=True):
    w = (rng.standard_normal((K, C, R, R)) / np.sqrt(C * R * R)).astype(np.float32)
    b = rng.standard_normal(K).astype(np.float32) if bias else None
    relu, post, e = EPILOGUES[epilogue]
    conv = pycnn.prepare_conv(w, b, stride=stride, padding=pad, algo="direct_oc", activation="relu" if relu else None)
    conv.post = post
    return conv, w, b, e


def want(x, w, b, stride, pad, e, res=None):
    """float64: conv (+ bias) (+ residual) -> epilogue -> mean over H, W, as (N, K, 1, 1)."""
    y = reference.conv2d(x.astype(np.float64), w.astype(np.float64), b, (stride, stride), (pad, pad, pad, pad))
    if res is not None:
        y = y + res
    with np.errstate(invalid="ignore", over="ignore"):
        return epilogue_ref(y, e).mean(axis=(2, 3), keepdims=True)


CASES = [  # N, C, H, K, R, stride, pad, epilogue, x blocked
    (1, 512, 13, 1000, 1, 1, 0, "relu", True),  # SqueezeNet 1.1's classifier: K no multiple of 16
    (2, 320, 7, 1280, 1, 1, 0, "relu6", True),  # MobileNet V2's last conv
    (3, 96, 5, 40, 1, 1, 0, "silu", False),  # NCHW x, a partial vector of channels
    (1, 16, 30, 48, 3, 1, 1, "relu", False),  # a window: row tiles with border segments
    (2, 32, 11, 64, 3, 2, 1, "none", True),  # strided window over a blocked x
    (2, 48, 9, 24, 1, 1, 0, "relu", False),  # one kblock, fewer channels than a vector pair
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: "x".join(map(str, c[:5])) + "-" + c[7])
def test_conv_mean_matches_the_reference_every_isa(case, isa):
    N, C, H, K, R, stride, pad, epi, xb = case
    rng = np.random.default_rng(C + K + H)
    conv, w, b, e = make_conv(rng, C, K, R, stride, pad, epi)
    x = rng.standard_normal((N, C, H, H)).astype(np.float32)
    bits = _layout.MEAN_Y | (_layout.X_BLOCKED if xb else 0)
    call = conv.bind([x.shape], None, layout=(bits, "direct_oc"))
    y = call(blk(x) if xb else x)
    assert y.shape == (N, K, 1, 1) and y.dtype == np.float32
    np.testing.assert_allclose(y, want(x, w, b, stride, pad, e), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("res_blocked", [True, False])
@pytest.mark.parametrize("xb", [True, False])
def test_conv_mean_adds_a_residual_every_isa(res_blocked, xb, isa):
    """ResNet's last block: relu(conv(x) + b + r) averaged, r in either layout."""
    rng = np.random.default_rng(5)
    N, C, H, K = 2, 64, 7, 256
    conv, w, b, e = make_conv(rng, C, K, 1, 1, 0, "relu")
    x = rng.standard_normal((N, C, H, H)).astype(np.float32)
    r = rng.standard_normal((N, K, H, H)).astype(np.float32)
    bits = _layout.MEAN_Y | (_layout.X_BLOCKED if xb else 0)
    call = conv.bind([x.shape, r.shape], None, layout=(bits, "direct_oc"))
    y = call(blk(x) if xb else x, blk(r) if res_blocked else r)
    np.testing.assert_allclose(y, want(x, w, b, 1, 0, e, r), rtol=1e-4, atol=1e-5)


def test_conv_mean_nan_and_inf():
    """A NaN input pixel makes the means of every channel it reaches NaN; an Inf makes them +-Inf
    or NaN as the reference's IEEE arithmetic does."""
    rng = np.random.default_rng(7)
    conv, w, b, e = make_conv(rng, 32, 40, 1, 1, 0, "none")
    x = rng.standard_normal((2, 32, 6, 6)).astype(np.float32)
    x[0, 3, 2, 2] = np.nan
    x[1, 5, 1, 4] = np.inf
    y = conv.bind([x.shape], None, layout=(_layout.MEAN_Y, "direct_oc"))(x)
    ref = want(x, w, b, 1, 0, e)
    assert np.isnan(y[0]).all()
    np.testing.assert_array_equal(np.isnan(y), np.isnan(ref))
    np.testing.assert_array_equal(np.isinf(y), np.isinf(ref))
    ok = np.isfinite(ref)
    np.testing.assert_allclose(y[ok], ref[ok], rtol=1e-4, atol=1e-5)


def test_conv_mean_refuses_what_it_cannot_run():
    rng = np.random.default_rng(9)
    w = rng.standard_normal((32, 16, 3, 3)).astype(np.float32)
    conv = pycnn.prepare_conv(w, None, padding=1, algo="winograd_f2")
    with pytest.raises(ValueError, match="layout"):
        conv.bind([(1, 16, 8, 8)], None, layout=(_layout.MEAN_Y, "winograd_f2"))
    oc = pycnn.prepare_conv(w, None, padding=1, algo="direct_oc")
    with pytest.raises(ValueError, match="layout"):  # the means are no blocked y
        oc.bind([(1, 16, 8, 8)], None, layout=(_layout.MEAN_Y | _layout.Y_BLOCKED, "direct_oc"))
    call = oc.bind([(1, 16, 8, 8)], None, layout=(_layout.MEAN_Y, "direct_oc"))
    with pytest.raises(ValueError, match="x: expected shape"):
        call(np.zeros((1, 16, 9, 9), np.float32))
    with pytest.raises(ValueError, match="out: expected shape"):
        call(np.zeros((1, 16, 8, 8), np.float32), None, np.zeros((1, 32, 8, 8), np.float32))
    grouped = pycnn.prepare_conv(rng.standard_normal((32, 8, 1, 1)).astype(np.float32), None, groups=2)
    with pytest.raises(ValueError, match="layout"):
        grouped.bind([(1, 16, 8, 8)], None, layout=(_layout.MEAN_Y, "direct_oc"))


def head_net(pool="global_avg_pool2d", K=1000, residual=False, conv_read_twice=False, algo="auto"):
    """conv 3x3 -> conv 1x1 -> conv 1x1 + ReLU (+ the first conv's output) -> global average pool
    -> flatten: a classifier head (SqueezeNet's, or ResNet's last block with residual=True)."""
    rng = np.random.default_rng(11)

    def w(*shape):
        return (rng.standard_normal(shape) / np.sqrt(np.prod(shape[1:]))).astype(np.float32)

    nodes = [
        Node("stem", "conv2d", ["x"], params=dict(weight=w(64, 3, 3, 3), bias=w(64, 1)[:, 0]), attrs=dict(padding=1)),
        Node("r0", "relu", ["stem"]),
        Node("mid", "conv2d", ["r0"], params=dict(weight=w(64, 64, 1, 1), bias=w(64, 1)[:, 0])),
        Node("head", "conv2d", ["mid"], params=dict(weight=w(K, 64, 1, 1), bias=w(K, 1)[:, 0])),
    ]
    last = "head"
    if residual:
        assert K == 64
        nodes.append(Node("add", "add", ["head", "r0"]))
        last = "add"
    nodes.append(Node("r1", "relu", [last]))
    if pool == "reduce_mean":
        nodes.append(Node("pool", "reduce_mean", ["r1"], attrs=dict(axes=[2, 3], keepdims=0)))
    elif pool == "adaptive_avg_pool2d":
        nodes.append(Node("pool", "adaptive_avg_pool2d", ["r1"], attrs=dict(output_size=(1, 1))))
    else:
        nodes.append(Node("pool", pool, ["r1"]))
    nodes.append(Node("out", "flatten", ["pool"]))
    outputs = ["out"]
    if conv_read_twice:
        nodes.append(Node("side", "max_pool2d", ["r1"], attrs=dict(kernel=2, stride=2)))
        outputs.append("side")
    return pycnn.Graph({"x": (None, 3, 13, 13)}, nodes, outputs, algo=algo)


@pytest.mark.parametrize(
    "kw",
    [
        dict(),
        dict(K=48),  # a blocked head
        dict(pool="reduce_mean"),  # MNASNet's mean without keepdims: (N, K)
        dict(pool="adaptive_avg_pool2d"),  # the lecture ResNets' and GoogLeNet's
        dict(K=48, pool="adaptive_avg_pool2d"),  # off: the pool reads the conv's blocked y
        dict(K=64, residual=True),
    ],
    ids=lambda kw: "-".join(f"{k}={v}" for k, v in kw.items()) or "squeezenet",
)
@pytest.mark.parametrize("N", [1, 3])
def test_graph_fuses_the_conv_into_its_global_pool(kw, N, monkeypatch):
    """The conv has no plan entry, the pool's step returns the means, results the reference's
    (a NaN included) and, with the pass off, the same as the two steps give."""
    x = np.random.default_rng(2).standard_normal((N, 3, 13, 13)).astype(np.float32)
    x[0, 1, 4, 4] = np.nan
    g = head_net(**kw)
    y = g(x)
    plan = g.bound_plan(g.feed(x))
    names = [s.names[0] for s in g.plan_steps]
    assert {names[m]: names[j] for m, j in plan.fused_mean.items()} == {"pool": "head"}
    assert plan.fused_mean[names.index("pool")] not in plan.index
    ref = g.run_reference(x)
    assert y.shape == ref.shape == (N, kw.get("K", 1000))
    np.testing.assert_array_equal(np.isnan(y), np.isnan(ref))
    np.testing.assert_allclose(np.nan_to_num(y), np.nan_to_num(ref), rtol=1e-4, atol=1e-5)
    algos = {r[0].split("+")[0]: r[5] for r in g.profile(x[:1], runs=1, warmup=0).rows}
    assert algos["head"].startswith("fused into the next step")
    assert "means summed in the kernel" in algos["pool"]
    monkeypatch.setattr(fuse_mean, "ENABLED", False)
    g = head_net(**kw)
    y_off = g(x)
    off = g.bound_plan(g.feed(x))
    assert off.fused_mean == {}
    if kw.get("K", 1000) % 16 == 0:  # the pool (any of the three) reads the conv's blocked y
        assert off.layouts[names.index("pool")][0] == _layout.X_BLOCKED
    np.testing.assert_array_equal(np.isnan(y_off), np.isnan(y))
    np.testing.assert_allclose(np.nan_to_num(y_off), np.nan_to_num(y), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kw", [dict(conv_read_twice=True), dict(K=48, algo="im2col")])
def test_graph_keeps_convs_whose_maps_are_needed_or_not_direct_oc(kw):
    """Maps another step reads must exist, and a conv that runs another algorithm keeps it."""
    g = head_net(**kw)
    x = np.random.default_rng(3).standard_normal((2, 3, 13, 13)).astype(np.float32)
    ys = g(x)
    assert g.bound_plan(g.feed(x)).fused_mean == {}
    ref = g.run_reference(x)
    for a, b in zip(ys.values() if isinstance(ys, dict) else [ys], ref.values() if isinstance(ref, dict) else [ref]):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
