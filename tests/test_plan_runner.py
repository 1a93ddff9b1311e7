"""_C.PlanRunner (kernels/bindings/bind_plan_runner.cpp): the bound plan Graph.run calls in one go,
bound C++ steps through their C++ functions, the rest through Python."""

import weakref

import numpy as np
import pytest

import pycnn
import pycnn.models
from pycnn import _C
from pycnn.graph import binding


class Tagged(np.ndarray):
    """An array that can be weakly referenced (to see when the runner lets go of it)."""


def test_lenet_steps_run_natively_and_match_the_python_loop(rng):
    """LeNet-5 at batch 1: every bound conv, pool and linear is a native step (the flatten view is
    the Python one), and the runner's output is the step-by-step Python loop's, bit for bit."""
    g = pycnn.models.get("lenet5")
    x = rng.standard_normal((1, 1, 32, 32), dtype=np.float32)
    y = g(x)
    plan = g.bound_plan(g.feed(x))
    assert plan.runner.native_steps == sum(type(e[0]).__module__ == "pycnn._C" for e in plan) == len(plan) - 1
    env = dict(g.feed(x))
    for fn, ins, out, _free in plan:
        env[out] = fn(*[env[t] for t in ins])
    np.testing.assert_array_equal(y, env[g.outputs[0]])


def test_slots_freed_after_their_last_reader():
    """A tensor's reference is dropped once the entry that frees it has run (the arena can then
    reuse its block), and the graph's inputs and outputs come back in their declared order."""
    seen = {}

    def make(x):
        y = (x + 1).view(Tagged)
        seen["y"] = weakref.ref(y)
        return y

    def check(y):
        return np.asarray(y) * 2

    def after(z):
        seen["alive_after"] = seen["y"]() is not None
        return z + 0

    entries = [(make, [0], 1, []), (check, [1], 2, [1]), (after, [2], 3, [])]
    r = _C.PlanRunner(entries, 4, [0], [3, 0])
    x = np.zeros(3, np.float32)
    out, x_back = r([x])
    assert seen["alive_after"] is False
    assert x_back is x
    np.testing.assert_array_equal(out, [2, 2, 2])


def test_native_step_checks_and_converts_as_its_call(rng):
    """A bound conv called by the runner checks its input as BoundConv.__call__ does: the wrong
    shape is a ValueError naming x; float64 (no silent narrowing, as pybind11's cast) and a
    non-array are TypeErrors naming x; a non-contiguous float32 array is copied."""
    w = rng.standard_normal((4, 2, 3, 3), dtype=np.float32)
    conv = pycnn.prepare_conv(w, None, padding=1, algo="direct_oc")
    call = conv.bind([(1, 2, 5, 5)], None)
    r = _C.PlanRunner([(call, [0], 1, [])], 2, [0], [1])
    x = rng.standard_normal((1, 2, 5, 5), dtype=np.float32)
    np.testing.assert_array_equal(r([x])[0], call(x))
    with pytest.raises(TypeError):
        call(x.astype(np.float64))
    with pytest.raises(TypeError, match="x: expected a float32 array"):
        r([x.astype(np.float64)])
    xt = np.ascontiguousarray(x.transpose(0, 1, 3, 2)).transpose(0, 1, 3, 2)  # x's values, Fortran-ordered planes
    np.testing.assert_array_equal(r([xt])[0], call(xt))
    with pytest.raises(ValueError, match="x: not the shape this call was bound to"):
        r([np.zeros((1, 2, 5, 6), np.float32)])
    with pytest.raises(TypeError, match="x: expected a float32 array"):
        r(["not an array"])


def test_runner_refuses_bad_plans():
    """Slots out of range, a step without inputs, a non-callable, a wrong number of inputs and a
    step reading a tensor nothing made raise instead of reading past the slots."""
    f = np.negative
    with pytest.raises(ValueError, match="entries' inputs: slot out of range"):
        _C.PlanRunner([(f, [5], 1, [])], 2, [0], [1])
    with pytest.raises(ValueError, match="outputs: slot out of range"):
        _C.PlanRunner([(f, [0], 1, [])], 2, [0], [2])
    with pytest.raises(ValueError, match="at least one input"):
        _C.PlanRunner([(f, [], 1, [])], 2, [0], [1])
    with pytest.raises(ValueError, match="callable"):
        _C.PlanRunner([(3, [0], 1, [])], 2, [0], [1])
    r = _C.PlanRunner([(f, [0], 1, [])], 2, [0], [1])
    with pytest.raises(ValueError, match="inputs: expected 1 arrays"):
        r([])
    r = _C.PlanRunner([(f, [1], 0, [])], 2, [0], [0])
    with pytest.raises(RuntimeError, match="reads a tensor no earlier step made"):
        r([np.zeros(2, np.float32)])


def test_python_step_errors_propagate():
    """An exception from a Python step reaches the caller unchanged."""

    def bad(x):
        raise KeyError("from the step")

    r = _C.PlanRunner([(bad, [0], 1, [])], 2, [0], [1])
    with pytest.raises(KeyError, match="from the step"):
        r([np.zeros(2, np.float32)])


def test_graph_with_two_outputs_and_an_input_output(rng):
    """runner_for keeps the graph's output order, an output that is also an input included."""
    from pycnn import Graph, Node

    g = Graph(
        {"x": (None, 3)},
        [Node("relu", "relu", ["x"], "a"), Node("sm", "softmax", ["a"], "b", {"axis": 1})],
        ["b", "x", "a"],
    )
    x = rng.standard_normal((2, 3), dtype=np.float32)
    out = g(x)
    assert list(out) == ["b", "x", "a"]
    assert out["x"] is x
    np.testing.assert_allclose(out["a"], np.maximum(x, 0))
    e = np.exp(out["a"] - out["a"].max(1, keepdims=True))
    np.testing.assert_allclose(out["b"], e / e.sum(1, keepdims=True), rtol=1e-5)
    plan = g.bound_plan(g.feed(x))
    a, b = binding.runner_for(plan, ["x"], ["a", "b"])([x])  # another order of the outputs
    np.testing.assert_array_equal(a, out["a"])
    np.testing.assert_array_equal(b, out["b"])
