"""StealingRanges (kernels/include/pycnn/parallel.h), which shares the units of direct_oc,
depthwise_c16 / grouped_c16 and Winograd's transforms: each thread runs its own range front to
back, then takes units from the back of the range with the most left, so a thread whose core is
busy elsewhere (or missing from a smaller team) holds no one up and every unit runs once."""

import pytest

from pycnn import _C


def _check_once(ran, units):
    flat = sorted(u for r in ran for u in r)
    assert flat == list(units), "every unit exactly once"


def test_a_late_thread_finds_its_range_taken():
    ran = _C.stealing_ranges_trace([0, 10, 20], 2, 1)
    assert ran[0] == list(range(10)) + list(range(19, 9, -1))  # its own front to back, then the other's from the back
    assert ran[1] == []
    _check_once(ran, range(20))


def test_owners_run_their_ranges_front_to_back():
    for threads in (1, 2, 3):
        begin = [5, 9, 9, 30, 31]  # an empty range, a one-unit range, ranges beyond the team
        ran = _C.stealing_ranges_trace(begin, threads)
        _check_once(ran, range(5, 31))
        for t, r in enumerate(ran):
            own = [u for u in r if begin[t] <= u < begin[t + 1]]
            assert own == list(range(begin[t], begin[t] + len(own))), "an owner takes its range from the front"


def test_ranges_without_a_thread_are_stolen():
    ran = _C.stealing_ranges_trace([0, 3, 6, 9, 12], 2, 0)
    _check_once(ran, range(12))
    assert ran[0] == []


def test_bad_arguments():
    with pytest.raises(ValueError, match="begin: expected non-decreasing"):
        _C.stealing_ranges_trace([0, 5, 3], 2)
    with pytest.raises(ValueError, match="begin: expected at least two"):
        _C.stealing_ranges_trace([0], 2)
    with pytest.raises(ValueError, match="threads: expected 1..64"):
        _C.stealing_ranges_trace([0, 4], 0)
