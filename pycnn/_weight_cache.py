"""Prepared weights of the functional conv2d, kept between calls.

pycnn.conv2d(x, w, ...) runs a native algorithm on weights transformed for it (packed SGEMM
panels, direct_oc's register blocks, Winograd's U). Made on every call, that transform can cost
more than the convolution (Winograd F4 on AlphaGo's 192@19 at batch 1). So the functional call
keeps the transformed copy, keyed by the weight array's identity (with its shape, the groups and
the algorithm), and uses it again only while
  * the array is alive: the cache holds a weak reference, never the array, and an entry goes
    when its array is freed;
  * the array's bytes hash to what they did when the copy was made (_C.content_hash, ~60 GB/s
    with AVX2 or AVX-512, on every call): a weight written in place is transformed again.
Only float32 C-contiguous arrays are kept (anything else is converted per call, so there is no
array to key on). At most MAX_ENTRIES entries, the least recently used dropped first.
pycnn.config.weight_cache = False (or PYCNN_WEIGHT_CACHE=0) turns it off. Prepared convolutions
(pycnn.prepare_conv) and Graphs hold their transformed weights themselves and do not use it.
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict

import numpy as np

from . import _C
from ._config import config

MAX_ENTRIES = 32

_entries: OrderedDict = OrderedDict()  # (id, shape, groups, algo) -> (weakref, content hash, PreparedWeights)
_lock = threading.RLock()  # reentrant: a weakref callback may run while this thread holds it


def _drop(key, ref):
    with _lock:
        e = _entries.get(key)
        if e is not None and e[0] is ref:
            del _entries[key]


def prepared(weight: np.ndarray, groups: int, algo: str, keyable: bool = True) -> _C.PreparedWeights:
    """_C.PreparedWeights of weight for algo: the kept copy while weight is unchanged, else a new
    one (kept when weight is a float32 C-contiguous array the caller owns: keyable)."""
    if not (config.weight_cache and keyable and weight.dtype == np.float32 and weight.flags.c_contiguous):
        return _C.PreparedWeights(weight, groups, algo)
    key = (id(weight), weight.shape, groups, algo)
    h = _C.content_hash(weight)
    with _lock:
        e = _entries.get(key)
        if e is not None and e[0]() is weight and e[1] == h:
            _entries.move_to_end(key)
            return e[2]
    handle = _C.PreparedWeights(weight, groups, algo)  # the slow part, outside the lock
    ref = weakref.ref(weight, lambda r, key=key: _drop(key, r))
    with _lock:
        _entries[key] = (ref, h, handle)
        _entries.move_to_end(key)
        while len(_entries) > MAX_ENTRIES:
            _entries.popitem(last=False)
    return handle


def clear() -> None:
    """Forget every kept copy."""
    with _lock:
        _entries.clear()


def size() -> int:
    """How many transformed copies are kept."""
    with _lock:
        return len(_entries)


__all__ = ["prepared", "clear", "size", "MAX_ENTRIES"]
