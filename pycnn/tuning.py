"""pycnn.autotune: time the conv2d candidates once per layer shape and remember the winner.

Like cudnn.benchmark: with autotuning on, the first algo='auto' call of a new shape times every
algorithm that can run it (select.candidates) on random data of that shape, with the current
thread count, and picks the fastest median. Winners are kept in memory and in a JSON file,
    $PYCNN_CACHE_DIR/autotune.json   (default: $XDG_CACHE_HOME/pycnn or ~/.cache/pycnn)
keyed by CPU ISA, thread count and the full conv geometry, so later processes skip the timing.
Turn it on with pycnn.autotune(True) or PYCNN_AUTOTUNE=1.
"""
from __future__ import annotations

import json
import os
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

_state = {"enabled": None, "memory": {}, "file_loaded": False}
_lock = threading.Lock()


def cache_path() -> Path:
    base = os.environ.get("PYCNN_CACHE_DIR")
    if base:
        return Path(base) / "autotune.json"
    xdg = os.environ.get("XDG_CACHE_HOME")
    return Path(xdg or Path.home() / ".cache") / "pycnn" / "autotune.json"


def autotune(enable: bool = True) -> None:
    """Turn autotuning of algo='auto' on or off for this process."""
    if not isinstance(enable, (bool, np.bool_)):
        raise TypeError(f"enable: expected a bool, got {enable!r}")
    _state["enabled"] = bool(enable)


def enabled() -> bool:
    if _state["enabled"] is None:
        _state["enabled"] = os.environ.get("PYCNN_AUTOTUNE", "0") not in ("", "0", "false", "off")
    return _state["enabled"]


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


def _key(shape) -> str:
    from . import _C

    return (f"{_C.get_isa()}|t{_C.get_num_threads()}|N{shape.N} C{shape.C} H{shape.H} W{shape.W} "
            f"K{shape.K} R{shape.R} S{shape.S} s{shape.stride} p{shape.pad} d{shape.dilation} g{shape.groups}")


def _load_file() -> None:
    if _state["file_loaded"]:
        return
    _state["file_loaded"] = True
    try:
        data = json.loads(cache_path().read_text())
        if isinstance(data, dict):
            _state["memory"].update({k: v for k, v in data.items() if isinstance(v, str)})
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


def time_candidates(shape, reps: int = 5) -> dict:
    """Median seconds per call of every candidate on random data of this shape."""
    from . import select
    from .prepared import prepare_conv

    rng = np.random.default_rng(0)
    x = rng.standard_normal((shape.N, shape.C, shape.H, shape.W), dtype=np.float32)
    w = rng.standard_normal((shape.K, shape.C // shape.groups, shape.R, shape.S), dtype=np.float32)
    out = {}
    for algo in select.candidates(shape):
        conv = prepare_conv(w, None, shape.stride, shape.pad, shape.dilation, shape.groups, algo=algo)
        conv(x)
        ts = []
        for _ in range(reps):
            t0 = time.perf_counter()
            conv(x)
            ts.append(time.perf_counter() - t0)
        out[algo] = float(np.median(ts))
    return out


def choose(shape) -> str:
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
