"""pycnn's benchmark suites: `python -m bench SUITE`. See bench/__main__.py."""

import os

# NumPy's OpenBLAS workers spin ~0.1 s after each call (the process used 100 ms of CPU in the
# 100-300 ms after one, 2 threads) and take the cores of whatever is timed next, longer than the
# harness's pause between blocks (bench/timing.py); with the minimum timeout they sleep at once
# (costing NumPy a wake-up per call, microseconds). Set here, before any tool of the package
# imports NumPy: without it, _C.sgemm timed with bench.timing.compare beside NumPy (as
# bench.sgemm_ab does) measured 0.01-0.11x of itself on GEMMs of 0.1-0.5 ms.
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")
