"""pycnn.autotune: time the conv2d candidates once per layer shape and remember the winner.

Like cudnn.benchmark: with autotuning on (pycnn.autotune(True), or PYCNN_AUTOTUNE=1 read into
pycnn.config.autotune), the first algo='auto' call of a new shape times every native algorithm
that runs it (registry.candidates) on random data of that shape, with the current thread count,
and keeps the fastest median. Winners are kept in memory and in a JSON file,
    <pycnn.config.cache_dir>/autotune.json   ($PYCNN_CACHE_DIR, else $XDG_CACHE_HOME/pycnn or ~/.cache/pycnn)
keyed by CPU ISA, thread count and the full conv geometry, so later processes skip the timing.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from . import _C, registry
from ._config import config
from ._shapes import ConvShape
from ._validate import as_bool

_state = {"memory": {}, "file_loaded": False}
_lock = threading.Lock()


def cache_path() -> Path:
    return Path(config.cache_dir) / "autotune.json"


def autotune(enable: bool = True) -> None:
    """Turn autotuning of algo='auto' on or off for this process (pycnn.config.autotune)."""
    config.autotune = as_bool(enable, "enable")


def enabled() -> bool:
    return config.autotune


def clear(memory_only: bool = False) -> None:
    """Forget the winners (and delete the cache file unless memory_only)."""
    with _lock:
        _state["memory"].clear()
        _state["file_loaded"] = False
        if not memory_only:
            try:
                cache_path().unlink()
            except FileNotFoundError:
                pass


def _key(shape: ConvShape) -> str:
    return (
        f"{_C.get_isa()}|t{_C.get_num_threads()}|N{shape.N} C{shape.C} H{shape.H} W{shape.W} "
        f"K{shape.K} R{shape.R} S{shape.S} s{shape.stride} p{shape.pad} d{shape.dilation} g{shape.groups}"
    )


def _load_file() -> None:
    if _state["file_loaded"]:
        return
    _state["file_loaded"] = True
    try:
        data = json.loads(cache_path().read_text())
        if isinstance(data, dict):
            known = set(registry.names())
            _state["memory"].update({k: v for k, v in data.items() if isinstance(v, str) and v in known})
    except (OSError, ValueError):
        pass  # no cache yet, or unreadable: start empty


def _save_file() -> None:
    path = cache_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".autotune-", suffix=".json")
        with os.fdopen(fd, "w") as f:
            json.dump(_state["memory"], f, indent=1, sort_keys=True)
        os.replace(tmp, path)  # atomic: concurrent processes never see a half-written file
    except OSError:
        pass  # a read-only home still autotunes, in memory


def time_candidates(shape: ConvShape, reps: int = 5) -> dict:
    """Median seconds per call of every candidate on random data of this shape (weights prepared
    once per candidate, as a Graph's are)."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((shape.N, shape.C, shape.H, shape.W), dtype=np.float32)
    w = rng.standard_normal((shape.K, shape.C // shape.groups, shape.R, shape.S), dtype=np.float32)
    y = np.empty(shape.out_shape, np.float32)
    args = (shape.stride[0], shape.stride[1], shape.pad[0], shape.pad[1], shape.dilation[0], shape.dilation[1])
    out = {}
    for algo in registry.candidates(shape):
        h = _C.PreparedWeights(w, shape.groups, algo)
        h.run(x, None, y, *args, False, None)
        ts = []
        for _ in range(reps):
            t0 = time.perf_counter()
            h.run(x, None, y, *args, False, None)
            ts.append(time.perf_counter() - t0)
        out[algo] = float(np.median(ts))
    return out


def choose(shape: ConvShape) -> str:
    key = _key(shape)
    with _lock:
        _load_file()
        hit = _state["memory"].get(key)
    if hit is not None:
        return hit
    times = time_candidates(shape)
    best = min(times, key=times.get)
    with _lock:
        _state["memory"][key] = best
        _save_file()
    return best
