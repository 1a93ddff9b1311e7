"""Every SGEMM micro-kernel of every ISA this CPU runs, called directly over its m/n/k edge cases
(XNNPACK's GemmMicrokernelTester): partial rows and columns, depths around the unroll and vector
widths, accumulate and epilogue on and off, B read with a wider row stride, C's margins poisoned
with NaN to catch writes outside the tile. The variants come from the kernel table itself
(_C.sgemm_variants), so a new micro-kernel is tested by being listed there."""

import numpy as np
import pytest

from conftest import ISAS
from pycnn import _C

VARIANTS = [(isa, *v) for isa in ISAS for v in _C.sgemm_variants(isa)]
KCS = [1, 2, 3, 4, 5, 7, 8, 9, 16, 17, 255]


def edge_values(n):
    """1, 2, 3, a vector's width and its neighbours, n - 1, n: where tails and masks change."""
    return sorted({v for v in (1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, n - 1, n) if 1 <= v <= n})


def reference(a, b, c0, mr, nr, accumulate, last, bias_row, bias_col, residual, relu):
    acc = a[:, :mr].T.astype(np.float64) @ b[:, :nr].astype(np.float64)
    if accumulate:
        acc += c0[:mr, :nr]
    if last:
        if residual is not None:
            acc += residual[:mr, :nr]
        if bias_row is not None:
            acc += bias_row[:, None]
        if bias_col is not None:
            acc += bias_col[None, :]
        if relu:
            acc = np.where(acc < 0, 0, acc)
    return acc


def test_every_isa_has_variants():
    for isa in ISAS:
        names = [v[0] for v in _C.sgemm_variants(isa)]
        assert names and len(set(names)) == len(names), (isa, names)


@pytest.mark.parametrize("isa, name, MR, MRC, NR, cols", VARIANTS, ids=[f"{v[0]}-{v[1]}" for v in VARIANTS])
def test_ukernel_edges(isa, name, MR, MRC, NR, cols):
    rng = np.random.default_rng(hash((isa, name)) % 2**32)
    for kc in KCS:
        a = rng.standard_normal((kc, MR), dtype=np.float32)
        for ldb in (NR, NR + 5):
            b = rng.standard_normal((kc, ldb), dtype=np.float32)
            for mr in edge_values(MRC):
                for nr in edge_values(NR):
                    for accumulate, last, epilogue in (
                        (False, True, True),
                        (True, True, False),
                        (True, False, True),
                        (False, False, False),
                    ):
                        ldc = nr + 3
                        c = np.full((mr + 1, ldc), np.nan, np.float32)
                        c0 = rng.standard_normal((mr, nr), dtype=np.float32)
                        if accumulate:
                            c[:mr, :nr] = c0
                        br = rng.standard_normal(mr, dtype=np.float32) if epilogue else None
                        bc = rng.standard_normal(nr, dtype=np.float32) if epilogue else None
                        res = rng.standard_normal((mr, nr), dtype=np.float32) if epilogue else None
                        _C.sgemm_ukernel_run(
                            isa, name, a, b, c, mr, nr, accumulate, last, br, bc, res, relu=epilogue, prefetch=kc > 8
                        )
                        want = reference(a, b, c0, mr, nr, accumulate, last, br, bc, res, epilogue)
                        what = f"{isa} {name} kc={kc} ldb={ldb} mr={mr} nr={nr} acc={accumulate} last={last}"
                        np.testing.assert_allclose(c[:mr, :nr], want, rtol=1e-5, atol=1e-4 * np.sqrt(kc), err_msg=what)
                        assert np.isnan(c[:mr, nr:]).all() and np.isnan(c[mr:]).all(), f"{what}: wrote outside the tile"


def test_ukernel_run_rejects_bad_arguments():
    isa = ISAS[0]
    name, MR, MRC, NR, _ = _C.sgemm_variants(isa)[0]
    a = np.zeros((4, MR), np.float32)
    b = np.zeros((4, NR), np.float32)
    c = np.zeros((MR, NR), np.float32)
    for kw, word in [
        (dict(name="nope"), "name"),
        (dict(mr=MRC + 1), "mr"),
        (dict(nr=NR + 1), "nr"),
        (dict(b=np.zeros((4, NR - 1), np.float32)), "b"),
        (dict(c=np.zeros((1, 1), np.float32)), "c"),
        (dict(a=np.zeros((3, MR), np.float32)), "b"),
    ]:
        args = dict(isa=isa, name=name, a=a, b=b, c=c, mr=min(2, MRC), nr=min(2, NR), accumulate=False, last=True)
        args.update(kw)
        with pytest.raises(ValueError, match=word):
            _C.sgemm_ukernel_run(**args)


def test_fma_peak_loop_runs_on_every_isa():
    """The bench's FP32 peak (pycnn._C.fma_peak): a positive rate on every ISA this CPU runs (its
    value is a measurement, reported by the bench, not asserted here), and checked arguments."""
    try:
        for isa in ISAS:
            _C.set_isa(isa)
            rate = _C.fma_peak(1, 1000)
            assert rate > 0 and np.isfinite(rate)
    finally:
        _C.set_isa(_C.cpu_isa())
    for isa in ISAS:  # a table named, the active one unchanged
        assert _C.fma_peak(1, 1000, isa) > 0 and _C.get_isa() == _C.cpu_isa()
    with pytest.raises(ValueError, match="isa"):
        _C.fma_peak(1, 10, "sse9")
    with pytest.raises(ValueError, match="threads"):
        _C.fma_peak(0, 10)
    with pytest.raises(ValueError, match="iters"):
        _C.fma_peak(1, 0)


# The packers (sgemm_pack.inl) run directly: the destination's guard past the packed block is
# poisoned, so a store outside the block (the whole-vector stores of a narrow row group spill
# past their row on purpose, and must stay inside the block) fails the test.
GUARD = 64


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("P", [1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48])
@pytest.mark.parametrize("kc", [1, 2, 7, 8, 9, 16, 17, 33, 256])
def test_pack_transposed(isa, P, kc):
    rng = np.random.default_rng(P * 1000 + kc)
    for rows in sorted({1, max(1, P // 2), max(1, P - 1), P}):
        src = rng.standard_normal((rows, kc), dtype=np.float32)
        out = np.full(kc * P + GUARD, np.nan, np.float32)
        _C.sgemm_pack_transposed(isa, src, P, out)
        want = np.zeros((kc, P), np.float32)
        want[:, :rows] = src.T
        np.testing.assert_array_equal(out[: kc * P].reshape(kc, P), want)
        assert np.isnan(out[kc * P :]).all(), f"wrote past the block (rows {rows})"


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("NR", [8, 16, 24, 32, 48])
@pytest.mark.parametrize("nc", [1, 5, 16, 47, 48, 49, 100])
def test_pack_rows(isa, NR, nc):
    rng = np.random.default_rng(NR * 1000 + nc)
    src = rng.standard_normal((40, 130), dtype=np.float32)
    k0, kc, j0 = 3, 33, 7
    panels = -(-nc // NR)
    out = np.full(panels * kc * NR + GUARD, np.nan, np.float32)
    _C.sgemm_pack_rows(isa, src, k0, kc, j0, nc, NR, out)
    block = np.zeros((kc, panels * NR), np.float32)
    block[:, :nc] = src[k0 : k0 + kc, j0 : j0 + nc]
    want = block.reshape(kc, panels, NR).transpose(1, 0, 2).ravel()
    np.testing.assert_array_equal(out[: panels * kc * NR], want)
    assert np.isnan(out[panels * kc * NR :]).all()


def test_pack_bad_arguments():
    src = np.zeros((4, 8), np.float32)
    with pytest.raises(ValueError, match="P"):
        _C.sgemm_pack_transposed(ISAS[0], src, 3, np.zeros(100, np.float32))
    with pytest.raises(ValueError, match="out"):
        _C.sgemm_pack_transposed(ISAS[0], src, 4, np.zeros(31, np.float32))
    with pytest.raises(ValueError, match="j0, nc"):
        _C.sgemm_pack_rows(ISAS[0], src, 0, 4, 4, 5, 8, np.zeros(100, np.float32))
