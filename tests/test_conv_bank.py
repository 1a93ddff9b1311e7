"""The conv bank: convolutions of one input, each reduced by the max over its map, concatenated
(Kim's CNN's filters of heights 3, 4, 5, max over time, concat). The fused kernel
(_C.bind_rows_bank_max, kernels/cpu/conv2d_rows_bank.cpp) packs one im2col matrix per image for
all the convs; it is checked here against a float64 NumPy oracle on every ISA path and thread
count, with its partial panels, several column panels, depth blocks, strides, NaN in rows that
only some windows reach, and every argument check; then the Graph fusion that uses it
(pycnn.graph.passes.fuse_conv_banks, prepared.ConvBankMax) and its fallback."""

import numpy as np
import pytest

import pycnn
from conftest import assert_close, num_threads
from pycnn import _C, Graph, Node


def bank_oracle(x, ws, bs, relus, sh, keepdims=False):
    """float64: y[n, off_j + k] = max_t act(sum_{r, w} W_j[k, 0, r, w] x[n, 0, t*sh + r, w] + b_j[k])."""
    N, _, H, W = x.shape
    x64 = x.astype(np.float64)
    cols = []
    for w, b, relu in zip(ws, bs, relus):
        K, _, R, _ = w.shape
        Ho = (H - R) // sh + 1
        win = np.stack([x64[:, 0, t * sh : t * sh + R, :].reshape(N, R * W) for t in range(Ho)], axis=2)
        y = np.einsum("kd,ndt->nkt", w.reshape(K, R * W).astype(np.float64), win)
        if b is not None:
            y = y + b.astype(np.float64)[None, :, None]
        if relu:
            y = np.where(y < 0, 0.0, y)  # NaN stays NaN
        cols.append(y.max(axis=2))  # NaN propagates
    y = np.concatenate(cols, axis=1)
    return y[:, :, None, None] if keepdims else y


def make_bank(rng, Rs, K, W, bias=True):
    ws = [(rng.standard_normal((K, 1, R, W)) / np.sqrt(R * W)).astype(np.float32) for R in Rs]
    bs = [rng.standard_normal(K).astype(np.float32) if bias else None for _ in Rs]
    return ws, bs


def bind(ws, bs, relus, xshape, sh, max_map=1):
    handles = [_C.PreparedWeights(w, 1, "im2col") for w in ws]
    return _C.bind_rows_bank_max(handles, bs, relus, list(xshape), sh, max_map)


# (N, H, W, heights, filters, stride): Kim's bank; a window of the whole map (Ho = 1) next to a
# one-row one; stride 2 (windows that leave the last rows out); a bank of one; maps wider than
# one 48-column panel; filter counts that fill 8- and 12-row panels or leave 4 or 1 row.
CASES = [
    (1, 50, 300, (3, 4, 5), 100, 1),
    (3, 9, 7, (1, 2, 9), 13, 1),
    (2, 20, 33, (2, 5), 24, 2),
    (5, 6, 16, (3,), 8, 1),
    (2, 130, 5, (2, 3, 7), 12, 1),
    (4, 11, 70, (4, 6), 1, 3),
]


@pytest.mark.parametrize("N, H, W, Rs, K, sh", CASES)
def test_rows_bank_matches_oracle(isa, N, H, W, Rs, K, sh):
    rng = np.random.default_rng(hash((N, H, W, Rs, K, sh)) % 2**32)
    ws, bs = make_bank(rng, Rs, K, W)
    relus = [i % 2 == 0 for i in range(len(Rs))]
    x = rng.standard_normal((N, 1, H, W), dtype=np.float32)
    f = bind(ws, bs, relus, x.shape, sh)
    out = np.full((N, K * len(Rs)), np.nan, np.float32)  # every element must be written
    y = f(x, out=out)
    assert y is out or np.shares_memory(y, out)
    assert_close(out, bank_oracle(x, ws, bs, relus, sh), what=f"{isa} bank {Rs}")


@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("N", [1, 2, 8])
def test_rows_bank_thread_shares(threads, N):
    """The units (image, conv, row panel) split over the threads by FMA count: at batch 1 the
    threads share one image's convs, with 3 threads and 2 images a share ends inside an image."""
    rng = np.random.default_rng(N * 10 + threads)
    ws, bs = make_bank(rng, (3, 4, 5), 100, 300)
    x = rng.standard_normal((N, 1, 50, 300), dtype=np.float32)
    with num_threads(threads):
        y = bind(ws, bs, [True] * 3, x.shape, 1)(x)
    assert_close(y, bank_oracle(x, ws, bs, [True] * 3, 1))


def test_rows_bank_nan_reaches_only_the_windows_over_it(isa):
    """A NaN in the last row: the 2-row windows at stride 2 cover it (their maxima NaN), the
    3-row ones end a row before (their maxima finite), though the one packed matrix holds that
    row for the deepest window; an infinity gives +-inf or NaN as IEEE says, like the oracle."""
    rng = np.random.default_rng(5)
    ws, bs = make_bank(rng, (2, 3), 16, 12)
    x = rng.standard_normal((3, 1, 10, 12), dtype=np.float32)
    x[1, 0, 9, 4] = np.nan
    x[2, 0, 0, 0] = np.inf
    for relus in ([False, False], [True, True]):
        y = bind(ws, bs, relus, x.shape, 2)(x)
        ref = bank_oracle(x, ws, bs, relus, 2)
        assert np.isnan(y[1, :16]).all() and not np.isnan(y[1, 16:]).any()
        assert not np.isnan(y[0]).any()
        assert np.isinf(ref[2]).any()
        assert_close(y, ref)


def test_rows_bank_keepdims_and_no_bias():
    rng = np.random.default_rng(6)
    ws, bs = make_bank(rng, (1, 3), 20, 9, bias=False)
    x = rng.standard_normal((2, 1, 5, 9), dtype=np.float32)
    y = bind(ws, bs, [False, True], x.shape, 1, max_map=2)(x)
    assert y.shape == (2, 40, 1, 1)
    assert_close(y, bank_oracle(x, ws, bs, [False, True], 1, keepdims=True))


def test_rows_bank_argument_checks():
    rng = np.random.default_rng(7)
    ws, bs = make_bank(rng, (2, 3), 8, 6)
    shape = (2, 1, 7, 6)
    f = bind(ws, bs, [True, True], shape, 1)
    x = rng.standard_normal(shape, dtype=np.float32)
    h = [_C.PreparedWeights(w, 1, "im2col") for w in ws]
    cases = [
        (lambda: f(x[:1]), "x"),
        (lambda: f(x, out=np.empty((2, 15), np.float32)), "out"),
        (lambda: f(x, out=np.empty((2, 16), np.float64)), "out"),
        (lambda: f(x, out=np.empty((2, 32), np.float32)[:, ::2]), "out"),
        (lambda: _C.bind_rows_bank_max([], [], [], list(shape), 1, 1), "weights"),
        (lambda: _C.bind_rows_bank_max(h, bs[:1], [True, True], list(shape), 1, 1), "weights"),
        (lambda: _C.bind_rows_bank_max(h, bs, [True, True], [2, 2, 7, 6], 1, 1), "xshape"),
        (lambda: _C.bind_rows_bank_max(h, bs, [True, True], [2, 1, 7, 7], 1, 1), "weights"),  # S != W
        (lambda: _C.bind_rows_bank_max(h, bs, [True, True], [2, 1, 2, 6], 1, 1), "weights"),  # R > H
        (lambda: _C.bind_rows_bank_max(h, bs, [True, True], list(shape), 0, 1), "stride_h"),
        (lambda: _C.bind_rows_bank_max(h, bs, [True, True], list(shape), 1, 3), "max_map"),
        (lambda: _C.bind_rows_bank_max(h, [bs[0][:3], bs[1]], [True, True], list(shape), 1, 1), "bias"),
        (
            lambda: _C.bind_rows_bank_max(
                [_C.PreparedWeights(ws[0], 1, "direct_oc")], [None], [True], list(shape), 1, 1
            ),
            "weights",
        ),
        (
            lambda: _C.bind_rows_bank_max(
                [_C.PreparedWeights(np.ones((8, 2, 2, 6), np.float32), 1, "im2col")], [None], [True], [2, 2, 7, 6], 1, 1
            ),
            "xshape",
        ),
        # 8 filters pack into 8-row panels, 24 into 12-row ones on AVX-512 (one B cannot serve both)
        (
            lambda: (
                _C.bind_rows_bank_max(
                    h + [_C.PreparedWeights(np.ones((24, 1, 2, 6), np.float32), 1, "im2col")],
                    bs + [None],
                    [True] * 3,
                    list(shape),
                    1,
                    1,
                )
                if _C.cpu_isa() == "avx512"
                else (_ for _ in ()).throw(ValueError("weights: (not avx512)"))
            ),
            "weights",
        ),
    ]
    for call, name in cases:
        with pytest.raises(ValueError, match=name):
            call()


def kim_like(algo="auto", Ks=(6, 6, 6), C=1, W=10, keepdims=False):
    rng = np.random.default_rng(8)
    nodes = []
    for i, (K, h) in enumerate(zip(Ks, (2, 3, 4))):
        nodes += [
            Node(
                f"c{i}",
                "conv2d",
                ["x"],
                params={
                    "weight": rng.standard_normal((K, C, h, W)).astype(np.float32),
                    "bias": rng.standard_normal(K).astype(np.float32),
                },
            ),
            Node(f"r{i}", "relu", [f"c{i}"]),
            Node(f"m{i}", "reduce_max", [f"r{i}"], attrs=dict(axes=(2, 3), keepdims=keepdims)),
        ]
    nodes.append(Node("cat", "concat", ["m0", "m1", "m2"], attrs=dict(axis=1)))
    nodes.append(
        Node("fc", "linear", ["cat"], params={"weight": rng.standard_normal((3, sum(Ks))).astype(np.float32)})
        if not keepdims
        else Node("fl", "flatten", ["cat"])
    )
    return Graph({"x": (None, C, 12, W)}, nodes, ["fc" if not keepdims else "fl"], algo=algo)


@pytest.mark.parametrize(
    "algo, Ks, C, fused",
    [
        ("auto", (6, 6, 6), 1, True),
        ("im2col", (6, 6, 6), 1, True),
        ("direct_oc", (6, 6, 6), 1, False),  # the graph's algorithm is kept: one by one
        ("auto", (6, 5, 6), 1, False),  # unequal filter counts
        ("auto", (6, 6, 6), 2, False),  # two input channels
    ],
)
def test_graph_conv_bank(algo, Ks, C, fused):
    g = kim_like(algo, Ks, C)
    assert g.steps[0][1] == "conv2d_bank" and g.steps[0][2] == ["x"]
    assert [s[1] for s in g.plan()] == ["conv2d"] * 3 + ["concat", "linear"]
    rng = np.random.default_rng(9)
    for N in (1, 3):
        x = rng.standard_normal((N, C, 12, 10)).astype(np.float32)
        x[N - 1, 0, 11, 0] = np.nan  # the last row: inside the last window of every conv
        y = g(x)
        assert_close(y, g.run_reference(x), atol=1e-4)
        assert np.isnan(y[N - 1]).all() and not np.isnan(y[: N - 1]).any()
        prof = g.profile(x, runs=1, warmup=0)
        row = prof.rows[0]
        assert ("rows_bank" in row[5]) == fused
        s = pycnn.ops.ConvShape
        want = sum(s((N, C, 12, 10), (K, C, h, 10), 1, 0, 1, 1).flops for K, h in zip(Ks, (2, 3, 4)))
        assert row[4] == pytest.approx(want)


def test_graph_conv_bank_keepdims_and_not_fused_when_shared():
    g = kim_like(keepdims=True)
    x = np.random.default_rng(10).standard_normal((2, 1, 12, 10)).astype(np.float32)
    assert g.steps[0][1] == "conv2d_bank"
    assert_close(g(x), g.run_reference(x), atol=1e-4)
    # a max also read by another node: no bank
    g2 = kim_like()
    nodes = list(g2.nodes) + [Node("extra", "relu", ["m1"])]
    g3 = Graph({"x": (None, 1, 12, 10)}, nodes, ["fc", "extra"])
    assert all(s[1] != "conv2d_bank" for s in g3.steps)
    y, ref = g3(x), g3.run_reference(x)
    for k in ("fc", "extra"):
        assert_close(y[k], ref[k], atol=1e-4)


def sentence_bank(algo="auto", L=20, D=160, K=128, heights=(3, 4, 5), keepdims=False):
    """Kim's bank at a size where the rule (pycnn/select.py, WINOGRAD_1D_*) runs the convs as rows
    as channels from batch 8 (Cg Kg / (Cg + Kg) = 71 with D = 160 as the channels; 32-40 F4 tiles)."""
    rng = np.random.default_rng(11)
    nodes = []
    for i, h in enumerate(heights):
        w = (rng.standard_normal((K, 1, h, D)) / np.sqrt(h * D)).astype(np.float32)
        nodes += [
            Node(f"c{i}", "conv2d", ["x"], params={"weight": w, "bias": rng.standard_normal(K).astype(np.float32)}),
            Node(f"r{i}", "relu", [f"c{i}"]),
            Node(f"m{i}", "reduce_max", [f"r{i}"], attrs=dict(axes=(2, 3), keepdims=keepdims)),
        ]
    nodes.append(Node("cat", "concat", [f"m{i}" for i in range(len(heights))], attrs=dict(axis=1)))
    return Graph({"x": (None, 1, L, D)}, nodes, ["cat"], algo=algo)


def test_graph_conv_bank_rows_as_channels():
    """From batch 8 each conv runs over x^T (N, D, L, 1) on the one-dimensional Winograd tile
    (F(4,3), F(5,4), F(4,5)); at batch 1 the fused im2col bank; algo='im2col' keeps the bank."""
    g = sentence_bank()
    rng = np.random.default_rng(12)
    bound = pycnn.registry.CONV["winograd_f4"].kernel_error_bound(1, 3)
    for N, want in ((8, "winograd_f4+winograd_f4+winograd_f4 (rows as channels)"), (1, "im2col_rows_bank (x3)")):
        x = rng.standard_normal((N, 1, 20, 160)).astype(np.float32)
        assert g.profile(x, runs=1, warmup=0).rows[0][5] == want
        y, ref = g(x), g.run_reference(x)
        assert np.abs(y - ref).max() <= bound * np.abs(ref).max()
        x[N - 1, 0, 19, 7] = np.nan  # the last row: inside the last window of every conv
        y = g(x)
        assert np.isnan(y[N - 1]).all() and not np.isnan(y[: N - 1]).any()
    g = sentence_bank(keepdims=True)  # (N, sum K, 1, 1)
    x = rng.standard_normal((8, 1, 20, 160)).astype(np.float32)
    assert "rows as channels" in g.profile(x, runs=1, warmup=0).rows[0][5]
    y, ref = g(x), g.run_reference(x)
    assert y.shape == ref.shape == (8, 3 * 128, 1, 1)
    assert np.abs(y - ref).max() <= bound * np.abs(ref).max()
    g = sentence_bank("im2col")
    assert g.profile(x, runs=1, warmup=0).rows[0][5] == "im2col_rows_bank (x3)"
    assert_close(g(x), g.run_reference(x), atol=1e-4)


def test_rows_as_channels_needs_winograd_for_every_conv():
    """A height the rule does not run on a one-dimensional tile (2 rows: there is none) keeps the
    whole bank on the fused im2col kernel."""
    g = sentence_bank(heights=(2, 3, 4))
    x = np.random.default_rng(13).standard_normal((8, 1, 20, 160)).astype(np.float32)
    assert g.profile(x, runs=1, warmup=0).rows[0][5] == "im2col_rows_bank (x3)"
    assert_close(g(x), g.run_reference(x), atol=1e-4)
