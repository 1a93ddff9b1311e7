"""The CUDA kernels against the NumPy reference, one test body for every device that runs them:
the CPU emulator (pycnn._C_cuda_emu, every build; each test under two thread orders) and a GPU
(pycnn._C_cuda with CuPy, where one is present; skipped with the reason elsewhere). Arrays are
made on the host, copied to the device, and results copied back; outputs the backend allocates
are NaN-filled on both devices, so an element a kernel forgets to write fails the comparison."""

import numpy as np
import pytest

import pycnn
from pycnn import reference

# "emulator order" runs on the emulator with that thread order; "gpu" on a GPU.
DEVICES = ["emu_reverse", "emu_shuffle", "gpu"]


def rel_err(y, want):
    want = np.asarray(want, np.float64)
    return float(np.abs(np.asarray(y, np.float64) - want).max() / max(np.abs(want).max(), 1e-30))


class OnDevice:
    """A CUDA backend seen from the host: NumPy arguments are copied to the device, device results
    copied back, so one test body checks the emulator and the GPU."""

    def __init__(self, device: str) -> None:
        self.device = device
        self.be = pycnn.backend(device)
        self.mem = self.be.memory
        self.native = self.be.native

    def put(self, a):
        if a is None:
            return None
        if isinstance(a, list):  # concat's tensors
            return [self.put(t) for t in a]
        return self.mem.from_host(a) if isinstance(a, np.ndarray) else a

    def get(self, a):
        return self.mem.to_host(a)

    def ptr(self, a) -> int:
        return self.mem.ptr(a)

    def stream(self) -> int:
        return self.mem.stream()

    def prepare_conv(self, *args, **kw):
        conv = self.be.prepare_conv(*map(self.put, args), **{k: self.put(v) for k, v in kw.items()})
        return lambda x, residual=None: self.get(conv(self.put(x), residual=self.put(residual)))

    def graph(self, g):
        d = g.to(self.device)

        def run(x):
            x = {k: self.put(v) for k, v in x.items()} if isinstance(x, dict) else self.put(x)
            return self.get(d(x))

        run.host_nodes = d.host_nodes
        return run

    def __getattr__(self, name):  # the functional ops: arguments in, the result back
        fn = getattr(self.be, name)
        return lambda *a, **kw: self.get(fn(*map(self.put, a), **{k: self.put(v) for k, v in kw.items()}))


@pytest.fixture(params=DEVICES)
def dev(request, monkeypatch):
    if request.param == "gpu":
        why = pycnn.cuda.why_not("cuda")
        if why:
            pytest.skip(f"the GPU half of these tests needs a GPU: {why}")
        d = OnDevice("cuda")
        xp = d.mem.xp
        monkeypatch.setattr(d.mem, "empty", lambda shape: xp.full(shape, xp.nan, xp.float32))
        yield d
        xp.cuda.get_current_stream().synchronize()
        return
    why = pycnn.cuda.why_not("cuda_emu")
    if why:
        pytest.skip(why)
    from pycnn import _C_cuda_emu as E

    E.set_schedule(request.param.removeprefix("emu_"), 1234)
    yield OnDevice("cuda_emu")
    E.set_schedule("mixed")


# ----------------------------------------------------------------------------- SGEMM
def _sgemm(d, version, M, N, K, A, lda, sA, B, ldb, sB, trans_b, C, ldc, sC, batch, bias, mode, R, ldr, sR, relu):
    """Runs the native SGEMM on device copies; returns C copied back."""
    Ad, Bd, Cd, biasd, Rd = (d.put(a) for a in (A, B, C, bias, R))
    d.native.sgemm(version, M, N, K, d.ptr(Ad), lda, sA, d.ptr(Bd), ldb, sB, trans_b, d.ptr(Cd), ldc, sC, batch,
                   d.ptr(biasd), mode, d.ptr(Rd), ldr, sR, relu, d.stream())  # fmt: skip
    return d.get(Cd)


@pytest.mark.parametrize("M,N,K", [(1, 1, 1), (7, 5, 3), (128, 128, 8), (130, 129, 17), (33, 257, 70)])
@pytest.mark.parametrize("trans_b", [False, True])
@pytest.mark.parametrize("version", [1, 2])
def test_sgemm_with_fused_epilogue(M, N, K, trans_b, version, dev, rng):
    A = rng.standard_normal((M, K)).astype(np.float32)
    B = rng.standard_normal((N, K) if trans_b else (K, N)).astype(np.float32)
    bias_r, bias_c = rng.standard_normal(M).astype(np.float32), rng.standard_normal(N).astype(np.float32)
    R = rng.standard_normal((M, N)).astype(np.float32)
    prod = A.astype(np.float64) @ (B.T if trans_b else B).astype(np.float64)
    for bias, mode, res, relu in ((None, 0, None, False), (bias_r, 1, R, True), (bias_c, 2, None, True)):
        C = np.full((M, N), np.nan, np.float32)
        C = _sgemm(dev, version, M, N, K, A, K, 0, B, K if trans_b else N, 0, trans_b, C, N, 0, 1, bias, mode, res,
                   N, 0, relu)  # fmt: skip
        want = (
            prod + (0 if bias is None else (bias[:, None] if mode == 1 else bias[None, :])) + (0 if res is None else R)
        )
        want = np.maximum(want, 0) if relu else want
        assert rel_err(C, want) < 1e-5, (bias is None, mode, relu)


def test_sgemm_unaligned_rows_and_batches(dev, rng):
    M, N, K, batch = 37, 45, 29, 3  # odd leading dimensions: the scalar load path
    A = rng.standard_normal((batch, M, K + 1)).astype(np.float32)
    B = rng.standard_normal((batch, K, N + 3)).astype(np.float32)
    C = np.zeros((batch, M, N + 2), np.float32)
    C = _sgemm(dev, 2, M, N, K, A, K + 1, M * (K + 1), B, N + 3, K * (N + 3), False, C, N + 2, M * (N + 2), batch,
               None, 0, None, 0, 0, False)  # fmt: skip
    want = np.einsum("zmk,zkn->zmn", A[:, :, :K].astype(np.float64), B[:, :, :N].astype(np.float64))
    assert rel_err(C[:, :, :N], want) < 1e-5
    assert (C[:, :, N:] == 0).all(), "wrote outside the matrix"


# ----------------------------------------------------------------------------- convolution
CONV_CASES = [
    # N, C, H, W, K, R, S, stride, padding, dilation, groups
    (2, 3, 17, 15, 8, 3, 3, 1, 1, 1, 1),  # a first layer
    (1, 16, 12, 12, 24, 3, 3, 1, 1, 1, 1),  # Winograd-eligible
    (2, 8, 11, 13, 16, 3, 3, 2, 1, 1, 1),  # strided
    (1, 8, 9, 9, 8, 3, 3, 1, 2, 2, 1),  # dilated
    (2, 8, 10, 10, 12, 3, 3, 1, 1, 1, 4),  # grouped
    (1, 32, 7, 7, 40, 1, 1, 1, 0, 1, 1),  # 1x1
    (1, 4, 13, 11, 6, 5, 5, 2, (2, 1, 0, 2), 1, 1),  # 5x5, four-sided padding
    (1, 130, 5, 5, 129, 3, 3, 1, 1, 1, 1),  # channels beyond one 128 tile
    (1, 1, 9, 7, 3, 3, 3, 1, 1, 1, 1),  # one input channel
    (2, 7, 13, 17, 17, 3, 3, 1, 1, 1, 1),  # odd channels, sizes no tile divides (Winograd's 2 and 4)
    (1, 17, 6, 11, 7, 5, 5, 1, 2, 1, 1),
    (3, 17, 5, 9, 17, 3, 1, (2, 1), (1, 0), 1, 1),  # a 3x1 filter, stride (2, 1)
    (1, 32, 9, 9, 32, 3, 3, 1, 1, 1, 32),  # depthwise
]


@pytest.mark.parametrize(
    "case", CONV_CASES, ids=lambda c: "x".join(map(str, c[:7])) + f"_s{c[7]}p{c[8]}d{c[9]}g{c[10]}"
)
def test_conv_algorithms_against_the_reference(case, dev, rng):
    N, C, H, W, K, R, S, st, pad, dil, g = case
    x = rng.standard_normal((N, C, H, W)).astype(np.float32)
    w = rng.standard_normal((K, C // g, R, S)).astype(np.float32)
    b = rng.standard_normal(K).astype(np.float32)
    want = reference.conv2d(x.astype(np.float64), w.astype(np.float64), b.astype(np.float64), st, pad, dil, g)
    res = rng.standard_normal(want.shape).astype(np.float32)
    want_fused = np.maximum(want + res, 0)
    s = pycnn.ops.ConvShape(x.shape, w.shape, st, pad, dil, g)
    ran = 0
    for a in pycnn.registry.conv_algos(dev.device, pycnn.registry.NATIVE):
        if not a.supports(s):
            continue
        conv = dev.prepare_conv(w, b, st, pad, dil, g, algo=a.name)
        assert rel_err(conv(x), want) < a.rel_error_bound, a.name
        fused = dev.prepare_conv(w, b, st, pad, dil, g, algo=a.name, activation="relu")
        assert rel_err(fused(x, residual=res), want_fused) < a.rel_error_bound, a.name + " with residual and ReLU"
        ran += 1
    assert ran >= 3
    auto = dev.prepare_conv(w, b, st, pad, dil, g)
    assert rel_err(auto(x), want) < 5e-5, "auto"


def test_im2col_chunks_the_batch_under_the_workspace_limit(dev, rng):
    x = rng.standard_normal((5, 4, 9, 9)).astype(np.float32)
    w = rng.standard_normal((6, 4, 3, 3)).astype(np.float32)
    want = reference.conv2d(x.astype(np.float64), w.astype(np.float64), None, 1, 1)
    old = pycnn.get_workspace_limit()
    try:
        pycnn.set_workspace_limit(4 * 36 * 81 * 2)  # two images per chunk: 3 chunks
        assert rel_err(dev.conv2d(x, w, padding=1, algo="im2col"), want) < 5e-6
    finally:
        pycnn.set_workspace_limit(old)


def test_nan_and_inf_propagate_through_the_convolutions(dev, rng):
    x = rng.standard_normal((1, 16, 8, 8)).astype(np.float32)
    x[0, 3, 4, 4] = np.nan
    x[0, 5, 1, 1] = np.inf
    w = rng.standard_normal((16, 16, 3, 3)).astype(np.float32)
    want = reference.conv2d(x.astype(np.float64), w.astype(np.float64), None, 1, 1)
    for a in ("direct", "im2col", "implicit_gemm"):
        y = dev.conv2d(x, w, padding=1, algo=a)
        np.testing.assert_array_equal(np.isnan(y), np.isnan(want), err_msg=a)
        np.testing.assert_array_equal(np.isinf(y), np.isinf(want), err_msg=a)


# ----------------------------------------------------------------------------- pooling and the other layers
@pytest.mark.parametrize(
    "k,s,p,ceil", [(2, 2, 0, False), (3, 2, 1, True), (3, 1, 1, False), ((3, 2), (2, 1), (1, 0), True)]
)
def test_pooling_matches_the_cpu_semantics(k, s, p, ceil, dev, rng):
    x = rng.standard_normal((2, 3, 9, 10)).astype(np.float32)
    x[0, 1, 2, 3] = np.nan
    np.testing.assert_array_equal(
        dev.max_pool2d(x, k, s, p, ceil_mode=ceil), pycnn.max_pool2d(x, k, s, p, ceil_mode=ceil)
    )
    for cip in (True, False):
        y = dev.avg_pool2d(x, k, s, p, ceil_mode=ceil, count_include_pad=cip)
        want = reference.avg_pool2d(x.astype(np.float64), k, s, p, ceil, cip)
        np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-6, equal_nan=True)


def test_global_pool_lrn_softmax_linear_concat_batchnorm(dev, rng):
    x = rng.standard_normal((2, 7, 5, 6)).astype(np.float32)
    np.testing.assert_allclose(dev.global_avg_pool2d(x), reference.global_avg_pool2d(x), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(
        dev.local_response_norm(x, 5, 1e-2, 0.75, 2.0), reference.local_response_norm(x, 5, 1e-2, 0.75, 2.0), rtol=1e-5
    )
    for dim in (1, -1):
        np.testing.assert_allclose(dev.softmax(x, dim), reference.softmax(x, dim), rtol=1e-5, atol=1e-7)
    rows = np.array([[-np.inf] * 4, [1, np.nan, 2, 3], [0, 1e30, -1e30, 5]], np.float32)
    np.testing.assert_allclose(dev.softmax(rows), reference.softmax(rows), equal_nan=True)
    big = rng.standard_normal((3, 1000)).astype(np.float32)
    np.testing.assert_allclose(dev.softmax(big), reference.softmax(big), rtol=1e-5, atol=1e-8)
    xl, wl, bl = (rng.standard_normal(sh).astype(np.float32) for sh in ((4, 300), (130, 300), (130,)))
    np.testing.assert_allclose(
        dev.linear(xl, wl, bl, activation="relu"), reference.linear(xl, wl, bl, "relu"), rtol=1e-4, atol=1e-4
    )
    np.testing.assert_allclose(dev.linear(xl[0], wl), reference.linear(xl[:1], wl)[0], rtol=1e-4, atol=1e-4)
    for dim in (0, 1, 3):
        np.testing.assert_array_equal(dev.concat([x, x + 1], dim), np.concatenate([x, x + 1], dim))
    np.testing.assert_array_equal(dev.concat([x, x[:, :3]], 1), np.concatenate([x, x[:, :3]], 1))
    mean, var, gamma, beta = (rng.standard_normal(7).astype(np.float32) for _ in range(4))
    var = np.abs(var)
    np.testing.assert_allclose(
        dev.batch_norm(x, mean, var, gamma, beta, activation="relu"),
        reference.batch_norm(x, mean, var, gamma, beta, activation="relu"),
        rtol=1e-5,
        atol=1e-6,
    )
    a = np.array([-1, 0, 2, np.nan, -np.inf, np.inf], np.float32)
    np.testing.assert_array_equal(dev.relu(a), reference.relu(a))
    np.testing.assert_array_equal(dev.add(a, a, activation="relu"), reference.relu(a + a))


# ----------------------------------------------------------------------------- element-wise functions
UNARY_CASES = [
    ("clip", dict(lo=0.0, hi=6.0)),
    ("clip", dict(lo=-1.5)),
    ("clip", dict(hi=0.25)),
    ("sigmoid", {}),
    ("hardsigmoid", dict(alpha=0.2, beta=0.5)),
    ("hardsigmoid", dict(alpha=1 / 6, beta=0.5)),
    ("hardswish", {}),
    ("silu", {}),
    ("erf", {}),
    ("gelu", {}),
    ("sqrt", {}),
    ("exp", {}),
    ("neg", {}),
    ("tanh", {}),
    ("abs", {}),
    ("reciprocal", {}),
]


@pytest.mark.parametrize("fn,kw", UNARY_CASES, ids=[f"{f}-{'-'.join(map(str, k.values()))}" for f, k in UNARY_CASES])
def test_unary_functions_match_the_reference(fn, kw, dev, rng):
    x = (rng.standard_normal(1000) * 4).astype(np.float32)
    x[:6] = [np.nan, np.inf, -np.inf, 0.0, -0.0, 90.0]
    if fn == "sqrt":
        x = np.abs(x)
    ref_kw = {k: kw[k] for k in ("alpha", "beta", "lo", "hi") if k in kw}
    with np.errstate(over="ignore"):  # float64's e^90 is float32's inf
        want = reference.unary(x.astype(np.float64), fn, **ref_kw).astype(np.float32)
    y = dev.unary(x.reshape(10, 100), fn, **kw).reshape(-1)
    np.testing.assert_array_equal(np.isnan(y), np.isnan(want), err_msg=fn)
    np.testing.assert_allclose(y, want, rtol=2e-6, atol=2e-7, equal_nan=True, err_msg=fn)


def test_unary_refuses_an_unknown_function(dev):
    with pytest.raises(ValueError, match="fn: expected one of"):
        dev.unary(np.zeros(3, np.float32), "softplus")


BINARY_SHAPES = [
    ((2, 3, 4, 5), (2, 3, 4, 5)),
    ((2, 8, 5, 5), (2, 8, 1, 1)),  # squeeze-and-excitation's gate
    ((2, 8, 1, 1), (2, 8, 5, 5)),
    ((2, 8, 5, 5), (8, 1, 1)),  # a per-channel constant
    ((3, 1, 5), (4, 1)),  # both broadcast
    ((7,), ()),  # a scalar
    ((1, 2, 3, 2, 2, 3), (2, 1, 1, 1, 3)),  # six dimensions
]


@pytest.mark.parametrize("fn", ["add", "sub", "mul", "div", "pow"])
@pytest.mark.parametrize("sa,sb", BINARY_SHAPES, ids=[f"{a}x{b}" for a, b in BINARY_SHAPES])
def test_binary_broadcasting_matches_numpy(fn, sa, sb, dev, rng):
    a = rng.standard_normal(sa).astype(np.float32)
    b = rng.standard_normal(sb).astype(np.float32)
    if fn == "pow":
        a = np.abs(a) + 0.1
    if a.size:
        a.reshape(-1)[0] = np.nan
    want = reference.binary(a.astype(np.float64), b.astype(np.float64), fn)
    y = dev.binary(a, b, fn)
    assert y.shape == np.shape(want)
    np.testing.assert_allclose(y, want, rtol=2e-6, atol=1e-6, equal_nan=True, err_msg=fn)
    np.testing.assert_array_equal(np.isnan(y), np.isnan(want))


def test_binary_division_by_zero_and_bad_shapes(dev):
    a = np.array([1.0, -1.0, 0.0], np.float32)
    y = dev.binary(a, np.zeros(3, np.float32), "div")
    assert y[0] == np.inf and y[1] == -np.inf and np.isnan(y[2])
    with pytest.raises(ValueError, match="does not broadcast"):
        dev.binary(np.zeros((2, 3), np.float32), np.zeros((4,), np.float32), "add")
    with pytest.raises(ValueError, match="fn: expected one of"):
        dev.binary(a, a, "max")
    with pytest.raises(ValueError, match="at most 6 dimensions"):
        dev.binary(np.zeros((1,) * 7, np.float32), np.zeros(1, np.float32), "add")


# ----------------------------------------------------------------------------- graphs
def test_an_onnx_graph(dev, rng):
    pytest.importorskip("onnx", reason="onnx is not installed (pip install '.[onnx]')")
    from onnx import TensorProto, helper, numpy_helper

    w = rng.standard_normal((8, 3, 3, 3)).astype(np.float32)
    fc = rng.standard_normal((8 * 4 * 4, 5)).astype(np.float32)
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("MaxPool", ["r"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Flatten", ["p"], ["f"]),
        helper.make_node("MatMul", ["f", "fc"], ["y"]),
    ]
    model = helper.make_model(
        helper.make_graph(
            nodes,
            "m",
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 8, 8])],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 5])],
            [numpy_helper.from_array(w, "w"), numpy_helper.from_array(fc, "fc")],
        ),
        opset_imports=[helper.make_opsetid("", 17)],
    )
    g = pycnn.load_onnx(model.SerializeToString())
    x = rng.standard_normal((3, 3, 8, 8)).astype(np.float32)
    assert rel_err(dev.graph(g)(x), g(x)) < 1e-5


def test_broadcasting_add_and_element_wise_steps(dev, rng):
    from pycnn.graph import Graph, Node

    b = rng.standard_normal((1, 4, 1, 1)).astype(np.float32)
    g = Graph(
        {"x": (None, 4, 5, 5), "s": (None, 4, 1, 1)},
        [
            Node("a", "add", ["x", "s"], attrs=dict(activation="relu")),
            Node("m", "binary", ["a"], attrs=dict(fn="mul"), params={"other": b}),
            Node("h", "unary", ["m"], attrs=dict(fn="hardswish")),
        ],
        ["h"],
    )
    x = {
        "x": rng.standard_normal((2, 4, 5, 5)).astype(np.float32),
        "s": rng.standard_normal((2, 4, 1, 1)).astype(np.float32),
    }
    d = dev.graph(g)
    assert rel_err(d(x), g(x)) < 1e-6 and d.host_nodes == []  # the broadcasting add, mul and hardswish run there


@pytest.mark.parametrize(
    "starts,ends,axes,steps",
    [
        ([0], [3], [1], [1]),  # a channel split's first half
        ([3], [2**62], [1], [1]),  # ... and the rest (ends beyond the size clamp)
        ([-1, 1], [-6, 5], [3, 2], [-2, 2]),  # negative step and indices, two axes
    ],
)
def test_slice_runs_on_the_device(starts, ends, axes, steps, dev, rng):
    from pycnn.graph import Graph, Node

    g = Graph(
        {"x": (None, 6, 5, 7)},
        [Node("s", "slice", ["x"], attrs=dict(starts=starts, ends=ends, axes=axes, steps=steps))],
        ["s"],
    )
    x = rng.standard_normal((2, 6, 5, 7)).astype(np.float32)
    d = dev.graph(g)
    np.testing.assert_array_equal(d(x), g(x))
    assert d.host_nodes == []


@pytest.mark.parametrize("shape", [(2, 96, 7, 5), (1, 768, 1, 1), (3, 5, 11)])
def test_channel_norm_matches_the_reference(shape, dev, rng):
    """ConvNeXt's LayerNorm over channels (layers.ChannelNorm) as a kernel: against the float64
    reference, a NaN confined to its pixel; in a Graph it runs on the device."""
    from pycnn.graph import Graph, Node
    from pycnn.layers import ChannelNorm

    x = (rng.standard_normal(shape) * 3 + 1).astype(np.float32)
    x[0, 1, 0] = np.nan
    C = shape[1]
    w, b = rng.standard_normal(C).astype(np.float32), rng.standard_normal(C).astype(np.float32)
    want = ChannelNorm.reference(dict(eps=1e-6), {"weight": w, "bias": b}, [x.astype(np.float64)])
    y = dev.channel_norm(x, w, b, 1e-6)
    np.testing.assert_array_equal(np.isnan(y), np.isnan(want))
    np.testing.assert_allclose(y, want, rtol=1e-4, atol=1e-5, equal_nan=True)
    node = Node("n", "channel_norm", ["x"], attrs=dict(eps=1e-6), params={"weight": w})  # no bias: zeros
    g = Graph({"x": (None,) + shape[1:]}, [node], ["n"])
    d = dev.graph(g)
    np.testing.assert_allclose(d(x), g(x), rtol=1e-4, atol=1e-5, equal_nan=True)
    assert d.host_nodes == []
