"""The functional conv2d keeps transformed weights between calls (pycnn/_weight_cache.py): reused
while the array is alive and unchanged, transformed again after an in-place write, dropped when
the array is freed, never keeping it alive."""

import gc
import threading
import weakref

import numpy as np
import pytest

import pycnn
from conftest import ISAS, assert_conv_close, conv_data
from pycnn import _C, _weight_cache, reference


@pytest.fixture(autouse=True)
def fresh_cache():
    _weight_cache.clear()
    yield
    _weight_cache.clear()


def ref(x, w, b):
    return reference.conv2d(x.astype(np.float64), w.astype(np.float64), b.astype(np.float64), 1, 1)


@pytest.mark.parametrize("algo", ["im2col", "direct_oc", "winograd_f4", "auto"])
def test_reused_while_unchanged_and_redone_after_an_inplace_write(algo, rng):
    x, w, b = conv_data(rng, 1, 16, 12, 12, 8, 16, 3, 3)
    ran = pycnn.policy.resolve(algo, pycnn.ops.ConvShape(x.shape, w.shape, 1, 1, 1, 1))
    y1 = pycnn.conv2d(x, w, b, padding=1, algo=algo)
    n = _C.weight_transform_count()
    assert np.array_equal(pycnn.conv2d(x, w, b, padding=1, algo=algo), y1)
    assert _C.weight_transform_count() == n, "the second call transformed the weights again"
    for write in (
        lambda: w.__setitem__((0, 0, 0, 0), w[0, 0, 0, 0] + 1.0),
        lambda: w.__imul__(2.0),
        lambda: w.__setitem__((7, 15, 2, 2), -3.0),
        lambda: w.fill(0.5),
    ):
        write()
        assert_conv_close(pycnn.conv2d(x, w, b, padding=1, algo=algo), ref(x, w, b), ran)
    b[0] += 1.0  # the bias is read per call, never kept
    assert_conv_close(pycnn.conv2d(x, w, b, padding=1, algo=algo), ref(x, w, b), ran)


def test_write_through_another_view_is_seen(rng):
    x, _, b = conv_data(rng, 1, 8, 10, 10, 4, 8, 3, 3)
    buf = rng.standard_normal(2 * 4 * 8 * 9).astype(np.float32)
    w = buf[: 4 * 8 * 9].reshape(4, 8, 3, 3)  # a C-contiguous view of a larger buffer
    pycnn.conv2d(x, w, b, padding=1, algo="im2col")
    buf[5] = 100.0
    assert_conv_close(pycnn.conv2d(x, w, b, padding=1, algo="im2col"), ref(x, w, b), "im2col")


def test_entries_go_with_their_arrays_and_never_keep_them_alive(rng):
    x, w, b = conv_data(rng, 1, 8, 10, 10, 4, 8, 3, 3)
    pycnn.conv2d(x, w, b, padding=1, algo="im2col")
    assert _weight_cache.size() == 1
    alive = weakref.ref(w)
    del w
    gc.collect()
    assert alive() is None and _weight_cache.size() == 0


def test_bounded_and_optional(rng, monkeypatch):
    x, _, b = conv_data(rng, 1, 4, 6, 6, 4, 4, 3, 3)
    ws = [rng.standard_normal((4, 4, 3, 3)).astype(np.float32) for _ in range(_weight_cache.MAX_ENTRIES + 5)]
    for w in ws:
        pycnn.conv2d(x, w, b, algo="im2col")
    assert _weight_cache.size() == _weight_cache.MAX_ENTRIES
    _weight_cache.clear()
    monkeypatch.setattr(pycnn.config, "weight_cache", False)
    pycnn.conv2d(x, ws[0], b, algo="im2col")
    assert _weight_cache.size() == 0
    monkeypatch.setattr(pycnn.config, "weight_cache", True)
    pycnn.conv2d(x, ws[0].astype(np.float64), b, algo="im2col")  # converted per call: nothing to key on
    pycnn.conv2d(x, np.asfortranarray(ws[0]), b, algo="im2col")
    assert _weight_cache.size() == 0


def test_threads_share_one_copy(rng):
    x, w, b = conv_data(rng, 2, 16, 14, 14, 16, 16, 3, 3)
    want = pycnn.conv2d(x, w, b, padding=1)
    out = []

    def job():
        for _ in range(10):
            out.append(pycnn.conv2d(x, w, b, padding=1))

    ts = [threading.Thread(target=job) for _ in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert len(out) == 40 and all(np.array_equal(y, want) for y in out)


def test_content_hash():
    a = np.arange(1000, dtype=np.float32)
    h = _C.content_hash(a)
    assert _C.content_hash(a.copy()) == h
    for change in (lambda v: v.__setitem__(999, -1.0), lambda v: v.__setitem__(0, 0.5), lambda v: v.fill(3.0)):
        v = a.copy()
        change(v)
        assert _C.content_hash(v) != h
    assert _C.content_hash(np.zeros(1 << 20, np.float32)) != _C.content_hash(np.zeros((1 << 20) + 1, np.float32))
    hashes = {_C.content_hash(np.full(1 << 20, v, np.float32)) for v in (0.0, 1.0, 2.0, -1.0)}
    assert len(hashes) == 4
    big = np.random.default_rng(0).standard_normal(3 << 20).astype(np.float32)  # several chunks, a tail
    want = _C.content_hash(big)
    try:
        for isa in ISAS:
            _C.set_isa(isa)
            assert _C.content_hash(a) == h and _C.content_hash(big) == want, f"{isa} hashes differently"
    finally:
        _C.set_isa(_C.cpu_isa())
    with pytest.raises(ValueError, match="C-contiguous"):
        _C.content_hash(np.asfortranarray(np.ones((3, 4), np.float32)))
