"""The fused 1x1 -> depthwise conv on channel-blocked tensors (kernels/cpu/conv2d_pw_dw_c16.inl,
_C.conv2d_pw_dw_blocked16) against the two convs of the reference, and the binding pass that uses
it in a Graph (pycnn/graph/fuse_pw_dw.py)."""

import numpy as np
import pytest

import pycnn
from conftest import blk, unblk
from pycnn import _C, reference
from pycnn._shapes import ConvShape
from pycnn.graph import Node, fuse_pw_dw
from pycnn.layers import _C_UNARY

INF = float("inf")


def run_fused(x, w1, b1, e1, w2, b2, e2, stride, pad):
    """The kernel on NCHW arrays (blocked on the way in and out)."""
    N, C, H, W = x.shape
    K, _, R, S = w2.shape
    Ho, Wo = (H + 2 * pad - R) // stride + 1, (W + 2 * pad - S) // stride + 1
    wpw = np.ascontiguousarray(w1.reshape(K // 16, 16, C).transpose(0, 2, 1))
    wdw = np.ascontiguousarray(w2.reshape(K // 16, 16, R * S).transpose(0, 2, 1))
    y = np.full((N, K // 16, Ho, Wo, 16), np.nan, np.float32)
    _C.conv2d_pw_dw_blocked16(blk(x), wpw, b1, e1, wdw, b2, e2, R, S, stride, stride, pad, pad, y)
    return unblk(y)


def epilogue_ref(y, e):
    relu, lo, hi, fn, a, b = e
    if relu:
        y = np.where(y < 0, 0, y)  # NaN kept
    y = np.where(y < lo, lo, np.where(y > hi, hi, y))
    if fn >= 0:
        name = {v: k for k, v in _C_UNARY.items()}[fn]
        y = reference.unary(y, name, a, b)
    return y


def want(x, w1, b1, e1, w2, b2, e2, stride, pad):
    t = epilogue_ref(reference.conv2d(x.astype(np.float64), w1.astype(np.float64), b1), e1)
    K = w2.shape[0]
    y = reference.conv2d(t, w2.astype(np.float64), b2, stride, pad, groups=K)
    return epilogue_ref(y, e2)


NONE = (False, -INF, INF, -1, 0.0, 0.0)
RELU = (True, -INF, INF, -1, 0.0, 0.0)
RELU6 = (False, 0.0, 6.0, -1, 0.0, 0.0)
SILU = (False, -INF, INF, _C_UNARY["silu"], 0.0, 0.0)
HSWISH = (False, -INF, INF, _C_UNARY["hardswish"], 0.0, 0.0)


@pytest.mark.parametrize(
    "N,C,K,H,W,R,S,stride,pad,e1,e2,bias",
    [
        (1, 16, 32, 12, 12, 3, 3, 1, 1, RELU6, RELU6, True),  # MobileNet V2
        (2, 32, 48, 13, 11, 3, 3, 2, 1, SILU, SILU, True),  # EfficientNet, odd sizes, stride 2
        (1, 16, 16, 9, 19, 5, 5, 1, 2, HSWISH, NONE, False),  # 5x5, a row of 19: tails
        (2, 48, 32, 8, 8, 5, 5, 2, 2, RELU, HSWISH, True),
        (1, 16, 16, 7, 7, 7, 7, 1, 3, NONE, RELU, True),  # 7x7
        (1, 32, 16, 10, 6, 3, 5, 1, 1, RELU, RELU, True),  # R != S: the general tap loop
        (1, 16, 32, 5, 5, 3, 3, 1, 0, NONE, NONE, True),  # unpadded
        (3, 16, 16, 1, 1, 3, 3, 1, 1, RELU, NONE, True),  # one pixel
    ],
)
def test_fused_pair_matches_the_two_convs(N, C, K, H, W, R, S, stride, pad, e1, e2, bias):
    rng = np.random.default_rng(N * 1000 + C + K + H + R)
    x = rng.standard_normal((N, C, H, W)).astype(np.float32)
    w1 = (rng.standard_normal((K, C, 1, 1)) / np.sqrt(C)).astype(np.float32)
    w2 = rng.standard_normal((K, 1, R, S)).astype(np.float32) / R
    b1 = rng.standard_normal(K).astype(np.float32) if bias else None
    b2 = rng.standard_normal(K).astype(np.float32) if bias else None
    if pad * 2 > R - 1 and pad >= R:
        pytest.skip("padding wider than the kernel")
    y = run_fused(x, w1, b1, e1, w2, b2, e2, stride, pad)
    np.testing.assert_allclose(y, want(x, w1, b1, e1, w2, b2, e2, stride, pad), rtol=2e-5, atol=2e-5)


def test_fused_pair_nan_and_inf():
    """A NaN pixel reaches every output whose window holds an expanded NaN (as in the two convs);
    an Inf propagates as their IEEE arithmetic does (Inf or NaN where they give it)."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((1, 16, 9, 9)).astype(np.float32)
    x[0, 3, 4, 4] = np.nan
    x[0, 5, 0, 8] = np.inf
    w1 = (rng.standard_normal((32, 16, 1, 1)) / 4).astype(np.float32)
    w2 = rng.standard_normal((32, 1, 3, 3)).astype(np.float32)
    y = run_fused(x, w1, None, RELU, w2, None, NONE, 1, 1)
    ref = want(x, w1, None, RELU, w2, None, NONE, 1, 1)
    np.testing.assert_array_equal(np.isnan(y), np.isnan(ref))
    np.testing.assert_array_equal(np.isposinf(y), np.isposinf(ref))
    np.testing.assert_array_equal(np.isneginf(y), np.isneginf(ref))
    ok = np.isfinite(ref)
    np.testing.assert_allclose(y[ok], ref[ok], rtol=2e-5, atol=2e-5)


def test_fused_pair_refuses_bad_arguments():
    x = np.zeros((1, 1, 4, 4, 16), np.float32)
    wpw, wdw = np.zeros((2, 16, 16), np.float32), np.zeros((2, 9, 16), np.float32)
    y = np.zeros((1, 2, 4, 4, 16), np.float32)
    args = dict(bpw=None, epilogue_pw=NONE, bdw=None, epilogue_dw=NONE, R=3, S=3, stride_h=1, stride_w=1)
    _C.conv2d_pw_dw_blocked16(x, wpw, wdw=wdw, pad_t=1, pad_l=1, y=y, **args)
    with pytest.raises(ValueError, match="x: expected a channel-blocked"):
        _C.conv2d_pw_dw_blocked16(np.zeros((1, 16, 4, 4), np.float32), wpw, wdw=wdw, pad_t=1, pad_l=1, y=y, **args)
    with pytest.raises(ValueError, match="wpw: expected"):
        _C.conv2d_pw_dw_blocked16(x, wpw[:, :8], wdw=wdw, pad_t=1, pad_l=1, y=y, **args)
    with pytest.raises(ValueError, match="wdw: expected"):
        _C.conv2d_pw_dw_blocked16(x, wpw, wdw=wdw[:, :4], pad_t=1, pad_l=1, y=y, **args)
    with pytest.raises(ValueError, match="y: expected"):
        _C.conv2d_pw_dw_blocked16(x, wpw, wdw=wdw, pad_t=0, pad_l=0, y=y, **args)  # y is 4x4, not 2x2
    with pytest.raises(ValueError, match="bpw: expected"):
        _C.conv2d_pw_dw_blocked16(x, wpw, wdw=wdw, pad_t=1, pad_l=1, y=y, **dict(args, bpw=np.zeros(3, np.float32)))
    with pytest.raises(ValueError, match="padding"):
        _C.conv2d_pw_dw_blocked16(x, wpw, wdw=wdw, pad_t=3, pad_l=1, y=y, **args)


def conv_node(rng, name, src, cin, cout, k, groups=1, **attrs):
    """A conv2d Node with random weights scaled by its fan-in, a small bias and 'same' padding."""
    w = rng.standard_normal((cout, cin // groups, k, k)) / np.sqrt(cin // groups * k * k)
    return Node(
        name,
        "conv2d",
        [src],
        attrs=dict(padding=k // 2, groups=groups, **attrs),
        params={"weight": w, "bias": rng.standard_normal(cout) * 0.1},
    )


def expand_block(C=16, E=48, H=10, stride=2, act="clip"):
    """x -> 1x1 expand (+ ReLU6 or SiLU) -> depthwise 3x3 (+ the same) -> 1x1 project: MobileNet's
    inverted residual block without its residual."""
    rng = np.random.default_rng(11)

    def conv(*args, **kw):
        return conv_node(rng, *args, **kw)

    a = dict(fn="clip", lo=0.0, hi=6.0) if act == "clip" else dict(fn=act)
    nodes = [
        conv("stem", "x", 3, C, 3),
        conv("expand", "stem", C, E, 1),
        Node("a1", "unary", ["expand"], attrs=a),
        conv("dw", "a1", E, E, 3, groups=E, stride=stride),
        Node("a2", "unary", ["dw"], attrs=a),
        conv("project", "a2", E, 32, 1),
        conv("head", "project", 32, 8, 1),
    ]
    return pycnn.Graph({"x": (None, 3, H, H)}, nodes, ["head"])


@pytest.mark.parametrize("act", ["clip", "silu"])
@pytest.mark.parametrize("split,project", [(False, True), (True, False), (True, True)])
def test_graph_fuses_expand_and_depthwise(act, split, project, monkeypatch):
    """With the size threshold lowered, the blocked expand -> depthwise pair runs as one step
    (the 1x1's step has no plan entry), as the ring kernel or split into calls of two images and
    one (the expansion 48 x 10 x 10 floats an image), split with the project 1x1 after it too
    (then the depthwise step has no entry either); results the reference's, NaN and Inf included;
    off, separate steps."""
    monkeypatch.setattr(fuse_pw_dw, "MIN_EXPANSION_BYTES", 0)
    monkeypatch.setattr(fuse_pw_dw, "SPLIT", split)
    monkeypatch.setattr(fuse_pw_dw, "PROJECT", project)
    monkeypatch.setattr(fuse_pw_dw, "IMAGES_BYTES", 2 * 4 * 48 * 10 * 10)
    x = np.random.default_rng(2).standard_normal((3, 3, 10, 10)).astype(np.float32)
    x[1, 0, 3, 3] = np.nan
    x[2, 1, 5, 0] = np.inf
    g = expand_block(act=act)
    y = g(x)
    plan = g.bound_plan(g.feed(x))
    names = [s.names[0] for s in g.plan_steps]
    got = {names[j]: tuple(names[i] for i in ks) for j, ks in plan.fused.items()}
    three = split and project
    assert got == ({"project": ("expand", "dw")} if three else {"dw": ("expand",)})
    assert names.index("expand") not in plan.index and (names.index("dw") in plan.index) != three
    ref = g.run_reference(x)
    np.testing.assert_array_equal(np.isnan(y), np.isnan(ref))
    np.testing.assert_allclose(np.nan_to_num(y), np.nan_to_num(ref), rtol=1e-4, atol=1e-4)
    p = g.profile(x, runs=1, warmup=0)
    algo = {r[0].split("+")[0]: r[5] for r in p.rows}
    assert algo["expand"].startswith("fused into the next step" if not three else "fused into a later step")
    if three:
        assert algo["dw"].startswith("fused into the next step")
        assert "(+ the 1x1 and the depthwise conv before it, fused)" in algo["project"]
    monkeypatch.setattr(fuse_pw_dw, "ENABLED", False)
    g = expand_block(act=act)
    y_off = g(x)  # the separate kernels: the same up to summation order
    np.testing.assert_array_equal(np.isnan(y_off), np.isnan(y))
    np.testing.assert_allclose(np.nan_to_num(y_off), np.nan_to_num(y), rtol=1e-5, atol=1e-6)
    assert g.bound_plan(g.feed(x)).fused == {}


def inverted_residual_chain(rng):
    """stem -> [expand -> dw -> project (+ stem: a residual the project's epilogue adds)] ->
    [dw -> 1x1 -> dw -> 1x1] (MobileNet V1's chain: the 1x1 after a depthwise conv is the one
    before the next) -> head."""

    def conv(*args, **kw):
        return conv_node(rng, *args, **kw)

    clip = dict(fn="clip", lo=0.0, hi=6.0)
    nodes = [
        conv("stem", "x", 3, 16, 3),
        conv("expand", "stem", 16, 64, 1),
        Node("a1", "unary", ["expand"], attrs=clip),
        conv("dw", "a1", 64, 64, 3, groups=64),
        Node("a2", "unary", ["dw"], attrs=clip),
        conv("project", "a2", 64, 16, 1),
        Node("sum", "add", ["project", "stem"]),
        conv("wide", "sum", 16, 32, 1),
        conv("dw2", "wide", 32, 32, 3, groups=32),
        conv("pw2", "dw2", 32, 32, 1),
        conv("dw3", "pw2", 32, 32, 3, groups=32, stride=2),
        conv("pw3", "dw3", 32, 48, 1),
        conv("head", "pw3", 48, 8, 1),
    ]
    return pycnn.Graph({"x": (None, 3, 9, 9)}, nodes, ["head"])


def test_graph_fuses_project_with_its_residual_and_chains(monkeypatch):
    """The project 1x1 whose epilogue adds the block's input joins the split calls (the residual
    sliced per call), and in a dw -> 1x1 -> dw -> 1x1 chain each 1x1 is fused once: as the
    project of one triple, not also as the expand of the next."""
    monkeypatch.setattr(fuse_pw_dw, "MIN_EXPANSION_BYTES", 0)
    monkeypatch.setattr(fuse_pw_dw, "IMAGES_BYTES", 2 * 4 * 64 * 9 * 9)
    rng = np.random.default_rng(8)
    g = inverted_residual_chain(rng)
    x = rng.standard_normal((3, 3, 9, 9)).astype(np.float32)
    x[0, 2, 4, 4] = np.nan
    y = g(x)
    plan = g.bound_plan(g.feed(x))
    names = [s.names[0] for s in g.plan_steps]
    got = {names[j]: tuple(names[i] for i in ks) for j, ks in plan.fused.items()}
    assert got["project"] == ("expand", "dw") and len(g.plan_steps[names.index("project")].inputs) == 2
    assert got["pw2"] == ("wide", "dw2") and "pw3" not in got  # pw2 fused once, as a project
    ref = g.run_reference(x)
    np.testing.assert_array_equal(np.isnan(y), np.isnan(ref))
    np.testing.assert_allclose(np.nan_to_num(y), np.nan_to_num(ref), rtol=1e-4, atol=1e-4)
    monkeypatch.setattr(fuse_pw_dw, "ENABLED", False)
    np.testing.assert_allclose(
        np.nan_to_num(inverted_residual_chain(np.random.default_rng(8))(x)), np.nan_to_num(y), rtol=1e-5, atol=1e-5
    )


def test_fused_pair_writes_a_given_out_in_place_or_refuses_it(monkeypatch):
    """Both ways of running the pair write a C-contiguous out in place (split: calls of two
    images and one) and refuse a strided one (a channel slice) with an error naming it, rather
    than writing a converted copy; the kernel itself refuses a strided y too."""
    rng = np.random.default_rng(5)
    N, C, K, H = 3, 16, 32, 9
    w1, b1 = rng.standard_normal((K, C, 1, 1)).astype(np.float32), rng.standard_normal(K).astype(np.float32)
    pw = pycnn.prepare_conv(w1, b1)
    dw = pycnn.prepare_conv(rng.standard_normal((K, 1, 3, 3)).astype(np.float32), padding=1, stride=2, groups=K)
    dws = ConvShape((N, K, H, H), (K, 1, 3, 3), 2, 1, 1, K)
    out_shape = (N, K // 16, 5, 5, 16)
    x = rng.standard_normal((N, C // 16, H, H, 16)).astype(np.float32)
    ref = reference.conv2d(reference.conv2d(unblk(x), pw.weight, pw.bias), dw.weight, None, 2, 1, 1, K)
    big = np.full((N, 3 * K // 16, 5, 5, 16), -7.0, np.float32)
    monkeypatch.setattr(fuse_pw_dw, "IMAGES_BYTES", 2 * 4 * K * H * H)  # split: calls of two images and one
    for split in (False, True):
        f = fuse_pw_dw._PwDw(pw, dw, dws, out_shape, split=split)
        out = np.full(out_shape, np.nan, np.float32)
        assert f(x, out=out) is out
        np.testing.assert_allclose(unblk(out), ref, rtol=1e-4, atol=1e-4)
        with pytest.raises(ValueError, match="y: expected a C-contiguous|out: images further apart"):
            f(x, out=big[:, K // 16 : 2 * K // 16])
        assert (big == -7.0).all()
    with pytest.raises(ValueError, match="y: expected a C-contiguous"):
        _C.conv2d_pw_dw_blocked16(x, f.wpw, f.bpw, f.e1, f.wdw, f.bdw, f.e2, 3, 3, 2, 2, 1, 1, big[:, :2])


def test_graph_keeps_small_expansions_separate():
    """Below MIN_EXPANSION_BYTES the expansion stays in cache between the two steps: no fusion."""
    g = expand_block()
    x = np.zeros((1, 3, 10, 10), np.float32)
    g(x)
    assert g.bound_plan(g.feed(x)).fused == {}


def test_graph_fusion_keeps_the_input_alive_until_the_fused_step(monkeypatch):
    """The expand's input x read last by a step between the expand and the depthwise conv (a
    branch on x): x must still exist when the fused step reads it."""
    monkeypatch.setattr(fuse_pw_dw, "MIN_EXPANSION_BYTES", 0)
    rng = np.random.default_rng(4)

    def conv(name, src, cin, cout, k, groups=1, **attrs):
        w = rng.standard_normal((cout, cin // groups, k, k)) / np.sqrt(cin // groups * k * k)
        return Node(name, "conv2d", [src], attrs=dict(padding=k // 2, groups=groups, **attrs), params={"weight": w})

    nodes = [
        conv("stem", "x", 3, 16, 3),
        conv("expand", "stem", 16, 32, 1),
        conv("branch", "stem", 16, 32, 1),  # stem's last reader, between the pair
        conv("dw", "expand", 32, 32, 3, groups=32),
        conv("project", "dw", 32, 32, 1),
        Node("sum", "add", ["project", "branch"]),
        conv("head", "sum", 32, 8, 1),
    ]
    g = pycnn.Graph({"x": (None, 3, 8, 8)}, nodes, ["head"])
    x = rng.standard_normal((2, 3, 8, 8)).astype(np.float32)
    y = g(x)
    assert g.bound_plan(g.feed(x)).fused, "the pair should be fused here"
    np.testing.assert_allclose(y, g.run_reference(x), rtol=1e-4, atol=1e-4)
