"""Graph mechanics: construction errors, shape inference errors, the fused plan, freeing,
summary/profile, weights in and out, input checks, concurrent use."""

import threading

import numpy as np
import pytest

import pycnn
from conftest import needs_torch, torch
from pycnn import Graph, Node, reference
from pycnn.graph import binding


def small_graph():
    rng = np.random.default_rng(0)
    nodes = [
        Node(
            "conv",
            "conv2d",
            ["x"],
            attrs=dict(padding=1),
            params={"weight": rng.standard_normal((8, 3, 3, 3)), "bias": rng.standard_normal(8)},
        ),
        Node(
            "bn",
            "batch_norm",
            ["conv"],
            params={
                "running_mean": rng.standard_normal(8),
                "running_var": rng.uniform(0.5, 2, 8),
                "weight": rng.standard_normal(8),
                "bias": rng.standard_normal(8),
            },
        ),
        Node("relu", "relu", ["bn"]),
        Node("pool", "max_pool2d", ["relu"], attrs=dict(kernel=2)),
        Node("side", "conv2d", ["pool"], attrs=dict(padding=1), params={"weight": rng.standard_normal((8, 8, 3, 3))}),
        Node("join", "add", ["pool", "side"]),
        Node("act", "relu", ["join"]),
        Node("gap", "global_avg_pool2d", ["act"]),
        Node("flat", "flatten", ["gap"]),
        Node("fc", "linear", ["flat"], params={"weight": rng.standard_normal((5, 8))}),
    ]
    return Graph({"x": (None, 3, 16, 16)}, nodes, ["fc"], name="small")


def test_plan_folds_bn_and_fuses_relu():
    g = small_graph()
    names = [s[0] for s in g.steps]
    assert ["conv", "bn", "relu"] in names and ["side", "join", "act"] in names  # join fused into side
    x = np.random.default_rng(1).standard_normal((2, 3, 16, 16)).astype(np.float32)
    np.testing.assert_allclose(g(x), g.run_reference(x), rtol=1e-4, atol=1e-4)


def test_batch_norm_that_cannot_fold_runs_on_its_own():
    """Batch norm after a ReLU (no conv to fold into) runs as its own step, ReLU fused after it."""
    rng = np.random.default_rng(3)
    bn = {
        "running_mean": rng.standard_normal(3),
        "running_var": rng.uniform(0.5, 2, 3),
        "weight": rng.standard_normal(3),
        "bias": rng.standard_normal(3),
    }
    nodes = [
        Node("r", "relu", ["x"]),
        Node("bn", "batch_norm", ["r"], attrs=dict(eps=1e-3), params=bn),
        Node("r2", "relu", ["bn"]),
    ]
    g = Graph({"x": (None, 3, 4, 5)}, nodes, ["r2"])
    assert [s[0] for s in g.steps] == [["r"], ["bn", "r2"]]
    x = rng.standard_normal((2, 3, 4, 5)).astype(np.float32)
    np.testing.assert_allclose(g(x), g.run_reference(x), rtol=1e-5, atol=1e-6)


def test_branch_output_is_not_fused_away():
    """A ReLU is fused only when its input has no other consumer: here 'conv' feeds two nodes."""
    rng = np.random.default_rng(0)
    nodes = [
        Node("conv", "conv2d", ["x"], params={"weight": rng.standard_normal((4, 2, 1, 1))}),
        Node("r", "relu", ["conv"]),
        Node("sum", "add", ["conv", "r"]),
    ]
    g = Graph({"x": (None, 2, 5, 5)}, nodes, ["sum"])
    assert [s[0] for s in g.steps] == [["conv"], ["r"], ["sum"]]
    x = rng.standard_normal((1, 2, 5, 5)).astype(np.float32)
    np.testing.assert_allclose(g(x), g.run_reference(x), rtol=1e-5, atol=1e-5)


def test_residual_add_fuses_into_the_conv_computed_last():
    """add(a, b) of two convs goes into the epilogue of the one planned second (the other input
    must exist when it runs), with the ReLU after the add; a graph input can be the residual and
    is never written."""
    rng = np.random.default_rng(5)
    w = lambda: rng.standard_normal((4, 4, 3, 3))  # noqa: E731
    nodes = [
        Node("a", "conv2d", ["x"], attrs=dict(padding=1), params={"weight": w()}),
        Node("b", "conv2d", ["x"], attrs=dict(padding=1), params={"weight": w(), "bias": rng.standard_normal(4)}),
        Node("sum", "add", ["a", "b"]),
        Node("r", "relu", ["sum"]),
        Node("c", "conv2d", ["r"], attrs=dict(padding=1), params={"weight": w()}),
        Node("skip", "add", ["x", "c"]),
    ]
    x = rng.standard_normal((2, 4, 6, 7)).astype(np.float32)
    x0 = x.copy()
    for algo in ("auto", "direct", "direct_oc", "im2col", "winograd"):
        g = Graph({"x": (None, 4, 6, 7)}, nodes, ["skip"])
        g.set_algo(algo)
        assert g.steps == [
            (["a"], "conv2d", ["x"], "a"),
            (["b", "sum", "r"], "conv2d", ["x", "a"], "r"),
            (["c", "skip"], "conv2d", ["r", "x"], "skip"),
        ]
        np.testing.assert_allclose(g(x), g.run_reference(x), rtol=1e-4, atol=1e-4, err_msg=algo)
        np.testing.assert_array_equal(x, x0)


def test_construction_errors_name_the_node():
    w = np.zeros((4, 3, 3, 3), np.float32)
    with pytest.raises(ValueError, match="node 'c': unknown op 'conv3d'"):
        Node("c", "conv3d", ["x"])
    with pytest.raises(ValueError, match="node 'c' \\(conv2d\\): missing parameter 'weight'"):
        Node("c", "conv2d", ["x"])
    with pytest.raises(ValueError, match="input 'y' is not a graph input"):
        Graph({"x": (None, 3, 8, 8)}, [Node("c", "conv2d", ["y"], params={"weight": w})], ["c"])
    with pytest.raises(ValueError, match="duplicate node name"):
        Graph({"x": (None, 3, 8, 8)}, [Node("c", "relu", ["x"]), Node("c", "relu", ["x"], output="d")], ["d"])
    with pytest.raises(ValueError, match="outputs: 'z'"):
        Graph({"x": (None, 3, 8, 8)}, [Node("c", "relu", ["x"])], ["z"])
    # shape inference at build: the node, the reason and the input shapes
    with pytest.raises(
        ValueError,
        match=r"node 'c' \(conv2d\): weight \(4, 3, 3, 3\).*expects 3 input channels, got 5.*"
        r"input shapes \[\(1, 5, 8, 8\)\]",
    ):
        Graph({"x": (None, 5, 8, 8)}, [Node("c", "conv2d", ["x"], params={"weight": w})], ["c"])
    with pytest.raises(ValueError, match=r"node 'j' \(add\): inputs do not broadcast"):
        Graph(
            {"x": (None, 3, 8, 8)},
            [Node("c", "conv2d", ["x"], params={"weight": w}), Node("j", "add", ["x", "c"])],
            ["j"],
        )


def test_run_shape_errors_name_the_node():
    g = pycnn.models.alexnet()
    with pytest.raises(ValueError, match=r"node 'classifier.1' \(linear\): weight \(4096, 9216\)"):
        g(np.zeros((1, 3, 224, 224), np.float32))
    with pytest.raises(ValueError, match="x: expected 4 dimensions"):
        g(np.zeros((3, 227, 227), np.float32))
    with pytest.raises(TypeError, match="x: expected a floating-point array"):
        g(np.zeros((1, 3, 227, 227), np.int32))
    with pytest.raises(ValueError, match="node 'features.0'"):
        g(np.zeros((1, 3, 5, 5), np.float32))


def test_token_inputs():
    g = pycnn.models.kimcnn(vocab_size=50)
    ids = np.random.default_rng(0).integers(0, 50, (2, 50))
    assert g(ids).shape == (2, 2)
    assert np.array_equal(g(ids.astype(np.int32)), g(ids))
    with pytest.raises(TypeError, match="integer token ids"):
        g(ids.astype(np.float32))
    with pytest.raises(ValueError, match=r"token ids must lie in \[0, 50\)"):
        g(np.full((1, 50), 50))
    with pytest.raises(ValueError, match=r"token ids must lie in \[0, 50\)"):
        g(np.full((1, 50), -1))
    with pytest.raises(ValueError, match="missing \\['tokens'\\]"):
        g({"x": ids})
    assert np.array_equal(g({"tokens": ids}), g(ids))
    with pytest.raises(ValueError, match="node 'convs.2'"):  # shorter than the widest filter
        g(ids[:, :4])


def test_peak_memory_frees_intermediates():
    g = pycnn.models.resnet18()
    s = g.summary(batch=1)
    assert s.peak_bytes < s.total_bytes / 2, "intermediates must be freed after their last consumer"
    # the measured live bytes during a run never exceed the planned peak (input + live tensors)
    x = np.random.default_rng(0).standard_normal((1, 3, 224, 224)).astype(np.float32)
    prof = g.profile(x, runs=1, warmup=0)
    measured = max(r[6] for r in prof.rows)
    assert 0 < measured <= s.peak_bytes
    assert measured >= 0.5 * s.peak_bytes
    text = str(s)
    assert "peak activations" in text and "layer4.1.conv2" in text


def test_summary_counts():
    s = pycnn.models.lenet5().summary(batch=2)
    rows = {r[0]: r for r in s.rows}
    assert rows["conv1"][2] == (2, 6, 28, 28) and rows["conv1"][3] == 6 * 25 + 6
    assert rows["conv1"][4] == 2 * 2 * 6 * 28 * 28 * 25
    assert rows["fc2"][4] == 2 * 2 * 84 * 10
    assert s.params == 61706


def test_profile_reports_algorithms_and_gflops():
    g = pycnn.models.alphago()
    x = np.random.default_rng(0).standard_normal((1, 48, 19, 19)).astype(np.float32)
    p = g.profile(x, runs=2, warmup=1)
    convs = [r for r in p.rows if r[1] == "conv2d"]
    assert len(convs) == 13 and all(r[3] > 0 for r in convs)
    assert {r[5] for r in convs} >= {"winograd_f2", "im2col"} or {r[5] for r in convs} >= {"winograd_f4"}
    assert "conv2+relu2" in str(p) and p.total_s > 0
    g.set_algo("im2col")
    assert {r[5] for r in g.profile(x, runs=1, warmup=0).rows if r[1] == "conv2d"} == {"im2col"}


def test_set_algo_and_device():
    g = pycnn.models.lenet5()
    with pytest.raises(ValueError, match="algo: expected one of"):
        g.set_algo("fft")
    with pytest.raises(RuntimeError, match="no .cuda. backend"):
        g.to("cuda")
    with pytest.raises(ValueError, match="device"):
        g.to("tpu")
    assert g.to("cpu") is g


def test_state_dict_roundtrip_npz(tmp_path):
    a, b = pycnn.models.convnetjs(seed=1), pycnn.models.convnetjs(seed=2)
    x = np.random.default_rng(0).standard_normal((2, 3, 32, 32)).astype(np.float32)
    path = tmp_path / "w.npz"
    np.savez(path, **a.state_dict())
    assert not np.allclose(a(x), b(x))
    b.load_state_dict(str(path))
    assert np.array_equal(a(x), b(x))


def test_load_state_dict_lists_every_problem_and_changes_nothing():
    g = pycnn.models.lenet5()
    x = np.random.default_rng(0).standard_normal((1, 1, 32, 32)).astype(np.float32)
    before = g(x)
    sd = g.state_dict()
    del sd["conv2.bias"]
    sd["conv9.weight"] = np.zeros(3)
    sd["fc1.weight"] = np.zeros((84, 121))
    sd["conv1.weight"] = sd["conv1.weight"] * 2
    with pytest.raises(ValueError) as e:
        g.load_state_dict(sd)
    msg = str(e.value)
    assert "missing keys: ['conv2.bias']" in msg and "unexpected keys: ['conv9.weight']" in msg
    assert "fc1.weight: expected shape (84, 120), got (84, 121)" in msg
    assert np.array_equal(g(x), before), "a failed load must not change the weights"
    with pytest.raises(TypeError, match="weights: expected a dict"):
        g.load_state_dict(42)
    with pytest.raises(FileNotFoundError):
        g.load_state_dict("/nonexistent/w.npz")


def test_googlenet_skips_aux_heads_and_bn_counters():
    g = pycnn.models.googlenet()
    sd = g.state_dict()
    sd["aux1.conv.conv.weight"] = np.zeros((128, 512, 1, 1), np.float32)
    sd["conv1.bn.num_batches_tracked"] = np.array(0)
    g.load_state_dict(sd)


@needs_torch
def test_load_pytorch_state_dict_and_file(tmp_path):
    from pycnn.models.torch_reference import TORCH_NETS

    torch.manual_seed(0)
    m = TORCH_NETS["resnet18"]().eval()
    for mod in m.modules():  # non-trivial batch-norm statistics, so folding is exercised
        if isinstance(mod, torch.nn.BatchNorm2d):
            mod.running_mean.uniform_(-0.5, 0.5)
            mod.running_var.uniform_(0.5, 2)
            mod.weight.data.uniform_(0.2, 0.5)
    g = pycnn.models.resnet18()
    g.load_state_dict(m.state_dict())  # torch tensors, including num_batches_tracked
    x = np.random.default_rng(0).standard_normal((1, 3, 64, 64)).astype(np.float32)
    with torch.no_grad():
        ref = m(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(g(x), ref, atol=2e-4 * np.abs(ref).max())
    path = tmp_path / "r18.pth"
    torch.save(m.state_dict(), path)
    g2 = pycnn.models.resnet18(seed=5)
    g2.load_state_dict(str(path))
    assert np.array_equal(g2(x), g(x))


def test_concurrent_graphs_match_serial():
    """Several Python threads running different Graphs (and one Graph shared) at once give the
    same results as running them one after the other."""
    nets = [pycnn.models.lenet5(), pycnn.models.convnetjs(), pycnn.models.alphago(), pycnn.models.resnet18()]
    rng = np.random.default_rng(0)
    xs = [rng.standard_normal((2,) + g.inputs["x"][1:]).astype(np.float32) for g in nets]
    xs[3] = xs[3][:, :, :64, :64].copy()
    serial = [g(x) for g, x in zip(nets, xs)]
    results = {}
    errors = []

    def work(i, rep):
        try:
            for _ in range(3):
                results[(i, rep)] = nets[i](xs[i])
        except Exception as e:  # noqa: BLE001 - surfaced below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i, r)) for i in range(4) for r in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for (i, _), y in results.items():
        assert np.array_equal(y, serial[i])


def test_nan_propagates_through_a_graph():
    g = pycnn.models.lenet5()
    x = np.zeros((2, 1, 32, 32), np.float32)
    x[1, 0, 10, 10] = np.nan
    y = g(x)
    assert np.all(np.isfinite(y[0])) and np.all(np.isnan(y[1]))


def test_bound_steps_per_input_shape():
    """A run binds every step to the input shapes once (geometry and algorithm fixed, no per-call
    validation) and reuses that for the same shapes; each run still returns its own arrays, and a
    new batch size binds again."""
    g = small_graph()
    rng = np.random.default_rng(2)
    x1 = rng.standard_normal((2, 3, 16, 16)).astype(np.float32)
    x2 = rng.standard_normal((2, 3, 16, 16)).astype(np.float32)
    y1 = g(x1)
    y1_copy = y1.copy()
    assert list(g._bound) == [((2, 3, 16, 16),)]
    assert any(step[0] is not s.fn for step, s in zip(g._bound[((2, 3, 16, 16),)], g.plan_steps))
    y2 = g(x2)
    np.testing.assert_array_equal(y1, y1_copy)  # not overwritten by the second run
    np.testing.assert_allclose(y2, g.run_reference(x2), rtol=1e-4, atol=1e-4)
    y3 = g(x1[:1])
    assert len(g._bound) == 2
    np.testing.assert_allclose(y3, y1[:1], rtol=1e-5, atol=1e-6)
    g.set_algo("im2col")  # a new plan drops the bindings
    assert g._bound == {}
    np.testing.assert_allclose(g(x1), y1, rtol=1e-4, atol=1e-4)


def inception_graph(outputs=("cat",), algo="auto"):
    """x -> three branches (1x1 conv; 1x1 -> 3x3 conv with ReLU; pool -> 1x1 conv) -> channel
    concat -> two convs -> a second concat -> 1x1 conv: Inception's shape in small."""
    rng = np.random.default_rng(7)
    w = lambda k, c, r: rng.standard_normal((k, c, r, r)) * 0.2
    nodes = [
        Node("b1", "conv2d", ["x"], params={"weight": w(5, 4, 1), "bias": rng.standard_normal(5)}),
        Node("b2a", "conv2d", ["x"], params={"weight": w(6, 4, 1)}),
        Node("b2b", "conv2d", ["b2a"], attrs=dict(padding=1), params={"weight": w(7, 6, 3)}),
        Node("b2r", "relu", ["b2b"]),
        Node("b3a", "max_pool2d", ["x"], attrs=dict(kernel=3, stride=1, padding=1)),
        Node("b3b", "conv2d", ["b3a"], params={"weight": w(3, 4, 1)}),
        Node("cat", "concat", ["b1", "b2r", "b3b"], attrs=dict(axis=1)),
        Node("c1", "conv2d", ["cat"], params={"weight": w(2, 15, 1)}),
        Node("c2", "conv2d", ["cat"], attrs=dict(padding=1), params={"weight": w(3, 15, 3)}),
        Node("cat2", "concat", ["c2", "c1"], attrs=dict(axis=1)),  # a second concat, another shape
        Node("head", "conv2d", ["cat2"], params={"weight": w(2, 5, 1)}),
    ]
    return Graph({"x": (None, 4, 9, 9)}, nodes, list(outputs), algo=algo)


@pytest.mark.parametrize("algo", ["auto", "direct", "im2col", "winograd"])
def test_concat_elided_at_batch_1(algo):
    """At batch 1 each branch's last conv writes its slice of the concat's output (the concat
    copies nothing); at batch 2 the slices are not contiguous and the concat copies. Both equal
    the reference; each run returns its own arrays; a branch output that is also a graph output
    keeps the concat."""
    g = inception_graph(("cat", "head"), algo)
    rng = np.random.default_rng(8)
    for N in (1, 2):
        x = rng.standard_normal((N, 4, 9, 9)).astype(np.float32)
        y = g(x)
        ref = g.run_reference(x)
        for k in ("cat", "head"):
            np.testing.assert_allclose(y[k], ref[k], rtol=1e-4, atol=1e-4)
        plan = g._bound[((N, 4, 9, 9),)]
        extra = sum(len(step[1]) - len(s.inputs) for step, s in zip(plan, g.plan_steps))
        assert extra == (3 if N == 1 else 0)  # the convs after the first of each concat read its slice
        y_again = g(x)
        assert not np.shares_memory(y_again["cat"], y["cat"])
        np.testing.assert_array_equal(y_again["cat"], y["cat"])
        p = g.profile(x, runs=1, warmup=0)
        assert len(p.rows) == len(g.plan_steps)
    g2 = inception_graph(("cat", "b1"), algo)
    x = rng.standard_normal((1, 4, 9, 9)).astype(np.float32)
    y = g2(x)
    plan = g2._bound[((1, 4, 9, 9),)]
    assert sum(len(step[1]) - len(s.inputs) for step, s in zip(plan, g2._steps)) == 1  # only cat2 elided
    np.testing.assert_allclose(y["cat"], g2.run_reference(x)["cat"], rtol=1e-4, atol=1e-4)


def dense_block_graph(outputs=("block",), algo="auto", growth=16, pre="relu"):
    """DenseNet's block in small: a conv and a pool before it, then per layer concat(all earlier
    outputs) -> pre ("relu"; "bn": batch norm + ReLU as in DenseNet, channel-blocked like the
    concat; None: the 1x1 conv reads the concat) -> 1x1 conv -> 3x3 conv, the block's output the
    concat of everything, read by a 1x1 conv (head)."""
    rng = np.random.default_rng(11)
    w = lambda k, c, r: rng.standard_normal((k, c, r, r)) * 0.2
    nodes = [
        Node("stem", "conv2d", ["x"], attrs=dict(padding=1), params={"weight": w(16, 16, 3)}),
        Node("x0", "max_pool2d", ["stem"], attrs=dict(kernel=2)),
    ]
    parts = ["x0"]
    for i in range(3):
        c = 16 + growth * i
        nodes.append(Node(f"cat{i}", "concat", list(parts), attrs=dict(axis=1)))
        a_in = f"cat{i}"
        if pre == "relu":
            nodes.append(Node(f"r{i}", "relu", [f"cat{i}"]))
            a_in = f"r{i}"
        elif pre == "bn":
            bn = {
                "running_mean": rng.standard_normal(c),
                "running_var": rng.uniform(0.5, 2, c),
                "weight": rng.standard_normal(c),
                "bias": rng.standard_normal(c),
            }
            nodes += [Node(f"n{i}", "batch_norm", [f"cat{i}"], params=bn), Node(f"r{i}", "relu", [f"n{i}"])]
            a_in = f"r{i}"
        nodes += [
            Node(f"a{i}", "conv2d", [a_in], params={"weight": w(32, c, 1), "bias": rng.standard_normal(32)}),
            Node(f"y{i}", "conv2d", [f"a{i}"], attrs=dict(padding=1), params={"weight": w(growth, 32, 3)}),
        ]
        parts.append(f"y{i}")
    nodes.append(Node("block", "concat", list(parts), attrs=dict(axis=1)))
    nodes.append(Node("head", "conv2d", ["block"], params={"weight": w(16, 16 + 3 * growth, 1)}))
    return Graph({"x": (None, 16, 12, 12)}, nodes, list(outputs), algo=algo)


def _kinds(g, N):
    return [type(e[0]).__name__ for e in g._bound[((N, 16, 12, 12),)]]


@pytest.mark.parametrize(
    "algo, growth, pre",
    [("auto", 16, "relu"), ("auto", 16, None), ("auto", 16, "bn"), ("im2col", 16, "relu"), ("auto", 5, "relu")],
)
def test_dense_block_concats_share_one_buffer(algo, growth, pre):
    """Each layer's concat is the leading channels of the block's last concat: the convs write
    their slices of it, the pooled input (no out=) is copied there once, and the layer concats
    return views (nothing copied per layer). At batch 1 (slices contiguous) in any layout; at
    batch > 1 (each image's slice apart from the next) only where the concats are channel-blocked
    and read by the batch norms (DenseNet's; they take strided images): with ReLU or 1x1 readers
    the concats copy. Every run equals the reference and returns its own arrays; a layer concat
    that is itself a graph output keeps its own array; a part that is a graph output leaves the
    concats holding it to copy."""
    from pycnn.graph import binding

    g = dense_block_graph(("head", "a2"), algo, growth, pre)
    rng = np.random.default_rng(12)
    for N in (1, 2, 3):
        x = rng.standard_normal((N, 16, 12, 12)).astype(np.float32)
        y = g(x)
        ref = g.run_reference(x)
        for k in ("head", "a2"):
            np.testing.assert_allclose(y[k], ref[k], rtol=1e-4, atol=1e-4)
        plan = g._bound[((N, 16, 12, 12),)]
        blocked = sum(1 for i in plan.layouts if g.plan_steps[i].op == "concat")
        assert blocked == (4 if pre != "relu" and algo == "auto" and growth == 16 else 0)  # NCHW16c
        shared = N == 1 or (pre == "bn" and blocked)
        kinds = _kinds(g, N)
        assert kinds.count("_Prefix") == (3 if shared else 0)
        assert kinds.count("_Whole") == (1 if shared else 0)
        y_again = g(x)
        assert not np.shares_memory(y_again["head"], y["head"])
        np.testing.assert_array_equal(y_again["head"], y["head"])
    for N in (1, 2):
        x = rng.standard_normal((N, 16, 12, 12)).astype(np.float32)
        g2 = dense_block_graph(("block", "cat1"), algo, growth, pre)
        y = g2(x)
        ref = g2.run_reference(x)
        for k in ("block", "cat1"):
            np.testing.assert_allclose(y[k], ref[k], rtol=1e-4, atol=1e-4)
        assert not np.shares_memory(y["block"], y["cat1"])
        if N == 1:
            assert _kinds(g2, N).count("_Prefix") == 2 and _kinds(g2, N).count("_Whole") == 1
        g3 = dense_block_graph(("block", "y2"), algo, growth, pre)  # y2: a part of the block's concat only
        y = g3(x)
        ref = g3.run_reference(x)
        for k in ("block", "y2"):
            np.testing.assert_allclose(y[k], ref[k], rtol=1e-4, atol=1e-4)
        assert not np.shares_memory(y["block"], y["y2"])
        plan = g3._bound[((N, 16, 12, 12),)]
        block = next(i for i, st in enumerate(g3.plan_steps) if st.output == "block")
        assert type(plan[plan.index.index(block)][0]).__name__ == "function"  # the block's concat copies
        if N == 1:
            assert [type(e[0]) for e in plan].count(binding._Prefix) == 2  # cat0, cat1 within cat2


@pytest.mark.parametrize(
    "axes, keepdims", [((2, 3), False), ((-1,), True), ((3, 2), True), ((1,), False), ((1, 3), False)]
)
def test_reduce_max_bound_trailing_and_inner_axes(axes, keepdims):
    """reduce_max over the trailing axes runs _C.max_rows (rows of the flattened input), other
    axes NumPy; both equal np.max, and a NaN in a reduced row gives NaN in its output only."""
    g = Graph({"x": (None, 5, 7, 3)}, [Node("m", "reduce_max", ["x"], attrs=dict(axes=axes, keepdims=keepdims))], ["m"])
    x = np.random.default_rng(4).standard_normal((2, 5, 7, 3)).astype(np.float32)
    x[1, 2, 4, 1] = np.nan
    want = np.max(x, axis=axes, keepdims=keepdims)
    np.testing.assert_array_equal(g(x), want)  # bound step
    np.testing.assert_array_equal(g.run_reference(x).astype(np.float32), want)
    assert np.isnan(want).sum() >= 1


@pytest.mark.parametrize("algo", ["auto", "im2col", "direct_oc", "direct", "reference"])
@pytest.mark.parametrize("axes, keepdims", [((2, 3), False), ((-1, -2), True)])
def test_conv_max_over_maps_fuses_into_the_conv(algo, axes, keepdims):
    """conv (+ReLU) -> reduce_max over H and W (Kim's max over time) is one step whose call
    returns the maxima ((N, K) or (N, K, 1, 1)); equal to the reference for C++ and Python
    algorithms, a NaN in the input giving NaN in the outputs it reaches only; three such steps
    feeding a concat are one conv bank step. A max over H alone, or a conv that another node
    also reads, stays a step of its own."""
    rng = np.random.default_rng(11)
    nodes = []
    for i, (K, h) in enumerate(((5, 2), (3, 3), (4, 1))):
        nodes += [
            Node(
                f"c{i}",
                "conv2d",
                ["x"],
                params={"weight": rng.standard_normal((K, 2, h, 6)), "bias": rng.standard_normal(K)},
            ),
            Node(f"r{i}", "relu", [f"c{i}"]),
            Node(f"m{i}", "reduce_max", [f"r{i}"], attrs=dict(axes=axes, keepdims=keepdims)),
        ]
    nodes.append(Node("cat", "concat", ["m0", "m1", "m2"], attrs=dict(axis=1)))
    g = Graph({"x": (None, 2, 7, 6)}, nodes, ["cat"], algo=algo)
    # the three maxima meet in a concat: one conv bank step (two input channels and unequal
    # filter counts, so its convs run one by one: tests/test_conv_bank.py has the fused kernel)
    assert g.steps == [([f"{p}{i}" for i in range(3) for p in "crm"] + ["cat"], "conv2d_bank", ["x"], "cat")]
    assert [s[0] for s in g.plan()] == [["c0", "r0", "m0"], ["c1", "r1", "m1"], ["c2", "r2", "m2"], ["cat"]]
    assert "rows_bank" not in g.plan_steps[0].fn.algo_for((1, 2, 7, 6))
    for N in (1, 3):
        x = rng.standard_normal((N, 2, 7, 6)).astype(np.float32)
        x[N - 1, 1, 3, 2] = np.nan  # inside some window of every conv: all of image N-1 is NaN
        y = g(x)
        ref = g.run_reference(x)
        assert y.shape == ((N, 12) if not keepdims else (N, 12, 1, 1))
        np.testing.assert_allclose(y, ref, rtol=1e-4, atol=1e-4)  # NaN where the reference has NaN
        assert np.isnan(y[N - 1]).all() and not np.isnan(y[: N - 1]).any()
        np.testing.assert_array_equal(np.isnan(y), np.isnan(ref))
    # not fused: a max over H only; a conv output read twice
    g2 = Graph(
        {"x": (None, 2, 7, 6)},
        [
            Node("c", "conv2d", ["x"], params={"weight": rng.standard_normal((3, 2, 2, 6))}),
            Node("m", "reduce_max", ["c"], attrs=dict(axes=(2,), keepdims=False)),
            Node("c2", "conv2d", ["x"], params={"weight": rng.standard_normal((3, 2, 2, 6))}),
            Node("m2", "reduce_max", ["c2"], attrs=dict(axes=(2, 3), keepdims=False)),
            Node("s", "reduce_max", ["c2"], attrs=dict(axes=(1,), keepdims=False)),
        ],
        ["m", "m2", "s"],
        algo=algo,
    )
    assert [s[0] for s in g2.steps] == [["c"], ["m"], ["c2"], ["m2"], ["s"]]
    x = rng.standard_normal((2, 2, 7, 6)).astype(np.float32)
    y, ref = g2(x), g2.run_reference(x)
    for k in ("m", "m2", "s"):
        np.testing.assert_allclose(y[k], ref[k], rtol=1e-4, atol=1e-4)


def test_bound_conv_max_map_checks():
    """The bound call with max_map: its out must be (N, K) / (N, K, 1, 1), a residual is refused,
    and max_map outside 0..2 is an error naming it."""
    rng = np.random.default_rng(12)
    conv = pycnn.prepare_conv(rng.standard_normal((4, 1, 2, 5)).astype(np.float32), algo="im2col")
    x = rng.standard_normal((2, 1, 6, 5)).astype(np.float32)
    f = conv.bind([x.shape], None, 1)
    want = conv(x).max(axis=(2, 3))
    np.testing.assert_allclose(f(x), want, rtol=1e-6)
    out = np.empty((2, 4), np.float32)
    assert f(x, out=out) is out or np.shares_memory(f(x, out=out), out)
    np.testing.assert_allclose(out, want, rtol=1e-6)
    with pytest.raises(ValueError, match=r"out: expected \(N, K\)"):
        f(x, out=np.empty((2, 4, 1, 1), np.float32))
    with pytest.raises(ValueError, match="residual"):
        f(x, residual=np.zeros((2, 4, 5, 1), np.float32))
    np.testing.assert_allclose(conv.bind([x.shape], None, 2)(x), want[:, :, None, None], rtol=1e-6)
    with pytest.raises(ValueError, match="max_map"):
        conv.bind([x.shape], None, 3)


def test_max_rows_nan_inf_in_vector_body_and_tail():
    """_C.max_rows reduces 8 floats at a time plus a scalar tail: a NaN in either part gives NaN,
    +inf wins, a row of -inf gives -inf; rows of 48 (Kim's CNN), 21 and 5 equal np.max."""
    rng = np.random.default_rng(5)
    for cols in (48, 21, 5):
        x = rng.standard_normal((6, cols)).astype(np.float32)
        x[0, 3] = np.nan  # vector body
        x[1, cols - 1] = np.nan  # tail (or body when cols is a multiple of 8)
        x[2, cols // 2] = np.inf
        x[3, :] = -np.inf
        x[4, 0] = -np.inf
        y = np.empty(6, np.float32)
        pycnn._C.max_rows(x, y)
        np.testing.assert_array_equal(y, np.max(x, axis=1))
        assert np.isnan(y[:2]).all() and y[2] == np.inf and y[3] == -np.inf


def test_embedding_kernel_rows_and_errors():
    """The embedding step gathers rows in C++ (ids of any integer type, uint64 included) and
    checks the id range there; out and weight shapes are checked too."""
    w = np.random.default_rng(6).standard_normal((37, 5)).astype(np.float32)
    g = Graph(
        {"t": (None, 4)}, [Node("e", "embedding", ["t"], params={"weight": w})], ["e"], input_dtypes={"t": "int64"}
    )
    ids = np.array([[0, 36, 5, 5], [1, 2, 3, 36]])
    for dt in (np.int64, np.int32, np.uint8, np.uint64):
        np.testing.assert_array_equal(g(ids.astype(dt)), w[ids])
    with pytest.raises(ValueError, match=r"token ids must lie in \[0, 37\), got \[0, 37\]"):
        g(np.array([[0, 37, 1, 1]]))
    with pytest.raises(ValueError, match=r"token ids must lie in \[0, 37\)"):
        g(np.array([[0, 2**63 + 5, 1, 1]], dtype=np.uint64))
    with pytest.raises(ValueError, match="out"):
        pycnn._C.embedding(np.zeros(3, np.int64), w, np.empty((2, 5), np.float32))
    with pytest.raises(ValueError, match="weight"):
        pycnn._C.embedding(np.zeros(3, np.int64), w.ravel(), np.empty((3, 5), np.float32))


def test_bound_pool_and_linear_calls():
    """A Graph's pooling and linear steps are C++ calls bound to one input shape: equal to the
    reference, and another shape or a bad geometry raises ValueError naming the argument."""
    rng = np.random.default_rng(9)
    x = rng.standard_normal((2, 3, 9, 10)).astype(np.float32)
    mp = pycnn._C.bind_pool2d([2, 3, 9, 10], [2, 3, 5, 5], 3, 2, 2, 2, 1, 0, True, False)
    np.testing.assert_array_equal(mp(x), reference.max_pool2d(x, (3, 2), 2, (1, 0), True))
    ap = pycnn._C.bind_pool2d([2, 3, 9, 10], [2, 3, 5, 5], 3, 2, 2, 2, 1, 0, False, False)
    np.testing.assert_allclose(
        ap(x), reference.avg_pool2d(x.astype(np.float64), (3, 2), 2, (1, 0), True, False), rtol=1e-5, atol=1e-6
    )
    with pytest.raises(ValueError, match="x: not the shape"):
        mp(x[:1])
    with pytest.raises(ValueError, match="out: too large"):
        pycnn._C.bind_pool2d([2, 3, 9, 10], [2, 3, 9, 5], 3, 2, 2, 2, 1, 0, True, False)
    with pytest.raises(ValueError, match="out: expected"):
        pycnn._C.bind_pool2d([2, 3, 9, 10], [2, 4, 5, 5], 3, 2, 2, 2, 1, 0, True, False)
    with pytest.raises(ValueError, match="stride"):
        pycnn._C.bind_pool2d([2, 3, 9, 10], [2, 3, 5, 5], 3, 2, 0, 2, 1, 0, True, False)
    w = rng.standard_normal((7, 10)).astype(np.float32)
    b = rng.standard_normal(7).astype(np.float32)
    lin = pycnn._C.bind_linear(w, b, 4, True)
    xl = rng.standard_normal((4, 10)).astype(np.float32)
    np.testing.assert_allclose(lin(xl), np.maximum(xl @ w.T + b, 0), rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="x: not the shape"):
        lin(xl[:, :9])
    with pytest.raises(ValueError, match="bias"):
        pycnn._C.bind_linear(w, b[:6], 4, True)
    g = pycnn.models.get("lenet5")
    xg = rng.standard_normal((2, 1, 32, 32)).astype(np.float32)
    np.testing.assert_allclose(g(xg), g.run_reference(xg), rtol=1e-3, atol=1e-4)
    assert any(type(step[0]).__name__ in ("BoundPool", "BoundLinear") for step in g._bound[((2, 1, 32, 32),)])


def test_max_rows_errors():
    y = np.empty(3, np.float32)
    with pytest.raises(ValueError, match="x"):
        pycnn._C.max_rows(np.zeros((3, 0), np.float32), y)
    with pytest.raises(ValueError, match="out"):
        pycnn._C.max_rows(np.zeros((4, 2), np.float32), y)


try:  # NumPy >= 2 moved it
    from numpy._core.multiarray import get_handler_name
except ImportError:  # pragma: no cover - NumPy 1.x
    from numpy.core.multiarray import get_handler_name


def big_graph():
    """Intermediates of 1 MB and a 512 KiB output at batch 2 (above the arena's 256 KiB floor),
    a residual join."""
    rng = np.random.default_rng(3)
    w = lambda k, c, r: rng.standard_normal((k, c, r, r)) * 0.1
    nodes = [
        Node("c1", "conv2d", ["x"], attrs=dict(padding=1), params={"weight": w(32, 3, 3)}),
        Node("r1", "relu", ["c1"]),
        Node("c2", "conv2d", ["r1"], attrs=dict(padding=1), params={"weight": w(32, 32, 3)}),
        Node("j", "add", ["c2", "r1"]),
        Node("p", "max_pool2d", ["j"], attrs=dict(kernel=2)),
        Node("c3", "conv2d", ["p"], params={"weight": w(64, 32, 1)}),
    ]
    return Graph({"x": (None, 3, 64, 64)}, nodes, ["c3"])


def test_graph_arena_reuses_blocks_across_runs():
    """A run's arrays come from the graph's caching allocator: the second and later runs of the
    same shapes take every large block from its cache (no new allocations), the handler is
    installed for the run only, the outputs are made by it and stay valid after the graph, its
    cache and the next runs are gone, and results are unchanged."""
    g = big_graph()
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 3, 64, 64)).astype(np.float32)
    want = g.run_reference(x)
    y1 = g(x)
    st1 = g._arena.stats()
    assert st1["misses"] >= 2 and st1["cap"] == 2 * g.peak_bytes(g.infer_shapes({"x": x.shape}))
    y2 = g(x)
    y3 = g(x)
    st3 = g._arena.stats()
    assert st3["misses"] == st1["misses"] + 2  # only the two outputs still held are new blocks
    assert st3["hits"] >= st1["misses"] + 2
    assert get_handler_name() != "pycnn_graph_arena"  # restored after the run
    assert get_handler_name(y1) == "pycnn_graph_arena"
    for y in (y1, y2, y3):
        np.testing.assert_allclose(y, want, rtol=1e-4, atol=1e-4)
    g.release_memory()
    assert g._arena.stats()["cached_bytes"] == 0
    del g, y2, y3
    import gc

    gc.collect()
    np.testing.assert_allclose(y1, want, rtol=1e-4, atol=1e-4)  # still ours to read
    y1[:] = 0  # and to write


def test_graph_arena_only_for_plans_with_large_tensors():
    """A plan whose tensors are all below the arena's 256 KiB floor runs on NumPy's own allocator
    (installing the arena costs more than it saves there); a larger batch of the same graph
    gets the arena."""
    g = small_graph()
    y = g(np.zeros((2, 3, 16, 16), np.float32))
    assert g._bound[((2, 3, 16, 16),)].arena is None and g._arena is None
    assert get_handler_name(y) == get_handler_name()
    y = g(np.zeros((64, 3, 16, 16), np.float32))  # conv output 64 x 8 x 16 x 16 floats = 512 KiB
    assert g._bound[((64, 3, 16, 16),)].arena is g._arena is not None
    assert get_handler_name(y) == "pycnn_graph_arena"


def test_graph_arena_restores_the_handler_after_an_error():
    """A step that raises leaves NumPy's allocator as it was (run and profile)."""
    g = big_graph()
    bad = np.zeros((2, 3, 64, 64), np.float32)
    g(bad)
    plan = g._bound[((2, 3, 64, 64),)]
    plan[2] = (lambda *a: 1 / 0,) + plan[2][1:]
    plan.runner = binding.runner_for(plan, list(g.inputs), g.outputs)  # (the runner Graph.run calls)
    with pytest.raises(ZeroDivisionError):
        g(bad)
    assert get_handler_name() != "pycnn_graph_arena"
    with pytest.raises(ZeroDivisionError):
        g.profile(bad, runs=1, warmup=0)
    assert get_handler_name() != "pycnn_graph_arena"


def test_graph_arena_allocator_calls():
    """The allocator itself: a reused block is zeroed for np.zeros (calloc), keeps its prefix when
    an array grows in place (realloc), blocks below 256 KiB and above the cap are not kept, and
    lowering the cap below what is cached empties the cache."""
    from pycnn import _C

    a = _C.GraphArena(64 << 20)
    ramp = np.arange(1 << 17, dtype=np.float32)
    prev = a.enter()
    try:
        big = np.full(1 << 18, 7.0, np.float32)  # 1 MiB
        del big
        assert a.stats()["cached_bytes"] == 1 << 20
        z = np.zeros(1 << 18, np.float32)  # the same block, zeroed
        assert a.stats()["hits"] == 1 and not z.any()
        r = ramp.copy()  # 512 KiB
        r.resize(1 << 19, refcheck=False)  # 2 MiB: new block, data moved
        assert bool((r[: 1 << 17] == ramp).all())  # (a 128 KiB temporary: not kept)
        small = np.ones(1000, np.float32)
        del small
        assert a.stats()["cached_bytes"] == 512 << 10  # the old 512 KiB block; the small one not kept
        huge = np.empty(80 << 20, np.uint8)  # above the cap: freed, not cached
        del huge
        assert a.stats()["cached_bytes"] == 512 << 10
    finally:
        a.exit(prev)
    a.cap = 1000
    assert a.stats()["cached_bytes"] == 0
    del z, r
    assert a.stats()["cached_bytes"] == 0


def test_graph_arena_blocks_start_on_a_cache_line():
    """Every array the arena serves, small (malloc'd) and cached alike, starts on a 64-byte line
    (a channel-blocked tensor's vectors are whole lines), and a reused block too."""
    from pycnn import _C

    a = _C.GraphArena(64 << 20)
    prev = a.enter()
    try:
        arrays = [np.empty(n, np.float32) for n in (1, 3, 17, 1000, 12345, 1 << 16, 1 << 18)]
        assert all(x.ctypes.data % 64 == 0 for x in arrays)
        del arrays
        again = np.empty(1 << 18, np.float32)  # the cached 1 MiB block
        assert a.stats()["hits"] >= 1 and again.ctypes.data % 64 == 0
    finally:
        a.exit(prev)


def test_graph_arena_best_fit_and_eviction():
    """A request takes the smallest cached block that holds it (the block keeps its size); a freed
    block that does not fit under the cap evicts smaller cached blocks first, never larger ones."""
    from pycnn import _C

    MiB = 1 << 20
    a = _C.GraphArena(6 * MiB)
    prev = a.enter()
    try:
        b4, b2, b3 = (np.empty(n * MiB, np.uint8) for n in (4, 2, 3))
        del b4
        assert a.stats()["cached_bytes"] == 4 * MiB
        one = np.ones(MiB, np.uint8)  # served by the 4 MiB block
        assert a.stats()["hits"] == 1 and a.stats()["cached_bytes"] == 0 and one.all()
        del one
        assert a.stats()["cached_bytes"] == 4 * MiB  # back at its own size
        del b2  # 4 + 2 <= 6: kept
        assert a.stats()["cached_bytes"] == 6 * MiB
        del b3  # evicts the 2 MiB block (smaller), not the 4 MiB one; still over the cap: b3 freed
        assert a.stats()["cached_bytes"] == 4 * MiB
        b5 = np.empty(5 * MiB, np.uint8)  # a miss: nothing cached is that large
        misses = a.stats()["misses"]
        del b5  # 5 > 6 - 4: evicts the 4 MiB block, keeps itself
        assert a.stats()["cached_bytes"] == 5 * MiB
        c = np.empty(3 * MiB, np.uint8)
        assert a.stats()["misses"] == misses and a.stats()["cached_bytes"] == 0
        del c
    finally:
        a.exit(prev)
