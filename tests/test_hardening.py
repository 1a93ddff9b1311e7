"""Hardening: fuzzed shapes against the reference, hostile input in subprocesses (an exception or
a correct result, never a crash), concurrent Python threads, workspace limits."""

import os
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import pycnn
from conftest import assert_close, assert_conv_close
from pycnn import reference, registry

FUZZ_EXAMPLES = int(os.environ.get("PYCNN_FUZZ_EXAMPLES", "40"))  # `make fuzz` raises it
FUZZ = settings(
    max_examples=FUZZ_EXAMPLES,
    deadline=None,
    derandomize=FUZZ_EXAMPLES <= 100,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


@st.composite
def conv_problems(draw):
    groups = draw(st.sampled_from([1, 1, 1, 2, 3]))
    cg = draw(st.integers(1, 9))
    kg = draw(st.integers(1, 9))
    R, S = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    dil = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    pad = tuple(draw(st.integers(0, 3)) for _ in range(4))
    N = draw(st.integers(1, 3))
    H, W = draw(st.integers(1, 14)), draw(st.integers(1, 40))
    assume(H + pad[0] + pad[2] >= dil[0] * (R - 1) + 1 and W + pad[1] + pad[3] >= dil[1] * (S - 1) + 1)
    return N, cg * groups, H, W, kg * groups, R, S, stride, pad, dil, groups, draw(st.booleans())


@FUZZ
@given(conv_problems(), st.integers(0, 2**32 - 1))
def test_fuzz_conv_every_algorithm(prob, seed):
    N, C, H, W, K, R, S, stride, pad, dil, groups, relu = prob
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, C, H, W), dtype=np.float32)
    w = (rng.standard_normal((K, C // groups, R, S)) / np.sqrt(C // groups * R * S)).astype(np.float32)
    b = rng.standard_normal(K, dtype=np.float32)
    act = "relu" if relu else None
    ref = reference.conv2d(
        x.astype(np.float64), w.astype(np.float64), b.astype(np.float64), stride, pad, dil, groups, act
    )
    shape = pycnn.ops.ConvShape(x.shape, w.shape, stride, pad, dil, groups)
    for algo in registry.candidates(shape) + ["auto"]:
        y = pycnn.conv2d(x, w, b, stride, pad, dil, groups, algo=algo, activation=act)
        assert_conv_close(y, ref, pycnn.policy.resolve(algo, shape), what=f"{prob} {algo}", r=R, s=S)


@st.composite
def pool_problems(draw):
    kh, kw = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    sh, sw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    ph, pw = draw(st.integers(0, kh // 2)), draw(st.integers(0, kw // 2))
    H, W = draw(st.integers(kh, 20)), draw(st.integers(kw, 40))
    return (
        draw(st.integers(1, 3)),
        draw(st.integers(1, 5)),
        H,
        W,
        (kh, kw),
        (sh, sw),
        (ph, pw),
        draw(st.booleans()),
        draw(st.booleans()),
    )


@FUZZ
@given(pool_problems(), st.integers(0, 2**32 - 1))
def test_fuzz_pooling(prob, seed):
    N, C, H, W, k, s, p, ceil, cip = prob
    x = np.random.default_rng(seed).standard_normal((N, C, H, W), dtype=np.float32)
    assert_close(pycnn.max_pool2d(x, k, s, p, ceil_mode=ceil), reference.max_pool2d(x, k, s, p, ceil), 0, 0)
    assert_close(
        pycnn.avg_pool2d(x, k, s, p, ceil, cip),
        reference.avg_pool2d(x.astype(np.float64), k, s, p, ceil, cip),
        1e-6,
        1e-5,
    )


# Hostile input: each public function gets every bad argument we can think of, in a subprocess
# (a segfault or abort fails the test instead of killing pytest). Each case must raise
# TypeError/ValueError/MemoryError or return a correct result.
HOSTILE = textwrap.dedent(r"""
    import numpy as np, pycnn, sys
    from pycnn import reference
    f32 = np.float32
    X = np.random.default_rng(0).standard_normal((2, 4, 9, 9)).astype(f32)
    Wt = np.random.default_rng(1).standard_normal((3, 4, 3, 3)).astype(f32)
    nonc = np.asfortranarray(X)
    ro = X.copy(); ro.setflags(write=False)
    nan = X.copy(); nan[0, 0, 0, 0] = np.nan; nan[1, 2, 3, 3] = np.inf
    bad_arrays = [None, "abc", 3, [], np.zeros(0, f32), np.zeros((0, 4, 9, 9), f32), np.zeros((2, 4, 0, 9), f32),
                  X.astype(np.int64), X.astype(bool), X.astype(np.complex64), X.astype(object), X[0], X[None],
                  np.zeros((2, 5, 9, 9), f32), X.astype(np.float16), X.astype(np.float64), nonc, ro, nan]
    bad_ints = [0, -1, -2**40, 2**40, 1.5, "2", None, True, (1, 2, 3), (0, 1), np.int64(2), np.float32(2.0)]
    def cases(name):
        if name == "conv2d":
            for a in bad_arrays:
                yield lambda a=a: pycnn.conv2d(a, Wt, padding=1)
                yield lambda a=a: pycnn.conv2d(X, a, padding=1)
                yield lambda a=a: pycnn.conv2d(X, Wt, a, padding=1)
            for v in bad_ints:
                for kw in ("stride", "padding", "dilation", "groups"):
                    yield lambda v=v, kw=kw: pycnn.conv2d(X, Wt, **{kw: v})
            for algo in pycnn.algorithms() + ["", "WINOGRAD", None, 7]:
                yield lambda algo=algo: pycnn.conv2d(X, Wt, padding=1, algo=algo)
                yield lambda algo=algo: pycnn.prepare_conv(Wt, padding=1, algo=algo)(nan)
        elif name == "pool":
            for fn in (pycnn.max_pool2d, pycnn.avg_pool2d):
                for a in bad_arrays:
                    yield lambda a=a, fn=fn: fn(a, 3, 2, 1, ceil_mode=True)
                for v in bad_ints:
                    yield lambda v=v, fn=fn: fn(X, v)
                    yield lambda v=v, fn=fn: fn(X, 3, v)
                    yield lambda v=v, fn=fn: fn(X, 3, 2, v)
            for a in bad_arrays:
                yield lambda a=a: pycnn.global_avg_pool2d(a)
                yield lambda a=a: pycnn.local_response_norm(a, 5)
            for v in bad_ints:
                yield lambda v=v: pycnn.local_response_norm(X, v)
        elif name == "dense":
            for a in bad_arrays:
                yield lambda a=a: pycnn.linear(a, np.ones((3, 9), f32))
                yield lambda a=a: pycnn.linear(np.ones((2, 9), f32), a)
                yield lambda a=a: pycnn.relu(a)
                yield lambda a=a: pycnn.add(a, X)
                yield lambda a=a: pycnn.softmax(a)
                yield lambda a=a: pycnn.concat([X, a])
                yield lambda a=a: pycnn.batch_norm(X, a, np.ones(4, f32))
            for v in bad_ints:
                yield lambda v=v: pycnn.softmax(X, v)
                yield lambda v=v: pycnn.concat([X, X], v)
                yield lambda v=v: pycnn.set_num_threads(v)
                yield lambda v=v: pycnn.set_workspace_limit(v)
            yield lambda: pycnn.concat([])
            yield lambda: pycnn.concat(X)
    name = sys.argv[1]
    raised = ok = 0
    for i, case in enumerate(cases(name)):
        try:
            out = case()
        except (TypeError, ValueError, MemoryError):
            raised += 1
            continue
        except Exception as e:
            print(f"case {i}: unexpected {type(e).__name__}: {e}")
            sys.exit(3)
        if isinstance(out, np.ndarray) and out.dtype != np.float32:
            print(f"case {i}: returned dtype {out.dtype}"); sys.exit(3)
        ok += 1
    pycnn.set_num_threads(2); pycnn.set_workspace_limit(2 << 30)
    # the arrays that are valid must give correct results
    np.testing.assert_allclose(pycnn.conv2d(nonc, Wt, padding=1), reference.conv2d(X, Wt, None, 1, 1), atol=1e-4)
    np.testing.assert_allclose(pycnn.conv2d(ro, Wt, padding=1), reference.conv2d(X, Wt, None, 1, 1), atol=1e-4)
    print(f"DONE raised={raised} ok={ok}")
""")


@pytest.mark.parametrize("group", ["conv2d", "pool", "dense"])
def test_hostile_input_never_crashes(group):
    r = subprocess.run([sys.executable, "-c", HOSTILE, group], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, f"worker died (code {r.returncode}):\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}"
    assert "DONE" in r.stdout
    raised = int(r.stdout.split("raised=")[1].split()[0])
    assert raised > 20, r.stdout  # the bad cases really were rejected


def test_threads_give_same_results(rng):
    """Several Python threads run different convolutions, pools and prepared layers at once; each
    result equals the one computed alone (kernels release the GIL and keep per-thread scratch)."""
    jobs = []
    for C, H, K, algo in [
        (3, 31, 8, "direct"),
        (16, 20, 12, "im2col"),
        (32, 14, 16, "winograd_f4"),
        (24, 9, 8, "winograd_f2"),
        (8, 17, 8, "auto"),
        (20, 11, 40, "direct_oc"),
    ]:
        x = rng.standard_normal((2, C, H, H), dtype=np.float32)
        w = rng.standard_normal((K, C, 3, 3), dtype=np.float32)
        conv = pycnn.prepare_conv(w, None, 1, 1, algo=algo, activation="relu")
        jobs.append(lambda x=x, conv=conv: pycnn.max_pool2d(conv(x), 3, 2, 1, ceil_mode=True))
    want = [job() for job in jobs]
    errors = []

    def worker(k):
        try:
            for r in range(15):
                j = (k + r) % len(jobs)
                if not np.array_equal(jobs[j](), want[j]):
                    errors.append(f"thread {k} job {j} differs")
        except Exception as e:  # noqa: BLE001 - report in the main thread
            errors.append(repr(e))

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_smaller_openmp_team_than_asked():
    """With OMP_THREAD_LIMIT=1 OpenMP gives one thread where pycnn asks for 3: the kernels that
    share work by precomputed shares (direct_oc's cost shares, the SGEMM's depth split) must
    still cover all of it. Run in a subprocess (the limit is read when OpenMP starts)."""
    code = textwrap.dedent("""
        import numpy as np, pycnn
        from pycnn import _C, reference
        pycnn.set_num_threads(3)
        rng = np.random.default_rng(0)
        a = rng.standard_normal((100, 900), dtype=np.float32)
        b = rng.standard_normal((900, 48), dtype=np.float32)
        c = np.empty((100, 48), np.float32)
        _C.sgemm(a, b, c, None, None, False, False)
        e1 = float(np.abs(c - a.astype(np.float64) @ b).max())
        x = rng.standard_normal((1, 1, 50, 300), dtype=np.float32)
        w = rng.standard_normal((100, 1, 3, 300), dtype=np.float32) / 30
        y = pycnn.prepare_conv(w, algo="direct_oc")(x)
        e2 = float(np.abs(y - reference.conv2d(x.astype(np.float64), w.astype(np.float64), None, (1, 1),
                                               (0, 0, 0, 0), (1, 1), 1, None)).max())
        print("err", e1, e2)
    """)
    r = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(os.environ, OMP_THREAD_LIMIT="1"),
    )
    assert r.returncode == 0, r.stderr
    e1, e2 = (float(v) for v in r.stdout.split("err")[1].split())
    assert e1 < 1e-2 and e2 < 1e-3, r.stdout


def test_workspace_limit_raises_memory_error(rng):
    x = rng.standard_normal((1, 32, 30, 30), dtype=np.float32)
    w = rng.standard_normal((32, 32, 3, 3), dtype=np.float32)
    old = pycnn.get_workspace_limit()
    try:
        pycnn.set_workspace_limit(4096)
        for algo in ("im2col", "direct", "direct_oc", "winograd_f4"):
            with pytest.raises(MemoryError, match="workspace"):
                pycnn.conv2d(x, w, padding=1, algo=algo)
        with pytest.raises(MemoryError, match="workspace"):
            pycnn.local_response_norm(x, 5)
    finally:
        pycnn.set_workspace_limit(old)
    assert pycnn.conv2d(x, w, padding=1).shape == (1, 32, 30, 30)
