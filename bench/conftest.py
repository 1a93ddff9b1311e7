"""pytest-benchmark configuration for bench/: `pytest bench/ --benchmark-only` (and
`--benchmark-compare`) times the same layers and algorithms as `python -m bench layers`.
Threads: PYCNN_BENCH_THREADS (default 2) for pycnn and PyTorch."""

import os

import pytest

import pycnn

THREADS = int(os.environ.get("PYCNN_BENCH_THREADS", "2"))


@pytest.fixture(scope="session", autouse=True)
def bench_threads():
    pycnn.set_num_threads(THREADS)
    try:
        import torch

        torch.set_num_threads(THREADS)
    except ImportError:
        pass
    yield
