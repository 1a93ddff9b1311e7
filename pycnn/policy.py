"""What algo='auto' (and the other choices) mean for one convolution: the one place that decides.

For algo='auto', in order: the override (pycnn.config.conv_algo, from PYCNN_CONV_ALGO), the
autotuner's winner when autotuning is on (pycnn.autotune, pycnn/tuning.py), the rule of
pycnn/select.py. 'winograd' is the tile the rule's winograd_tile picks. Any other name is
checked against the registry (pycnn/registry.py) for the shape.
"""

from __future__ import annotations

from . import registry, select, tuning
from ._config import config
from ._shapes import ConvShape


def choose(s: ConvShape, device: str = "cpu") -> str:
    """The concrete algorithm algo='auto' runs s with."""
    forced = config.conv_algo
    if forced and forced != "auto":
        return resolve(forced, s, device)
    if config.autotune:
        return tuning.choose(s)
    return select.heuristic(s)


def resolve(algo: str, s: ConvShape, device: str = "cpu") -> str:
    """The concrete algorithm for algo on s: 'auto' and 'winograd' choose; a name that cannot
    run s raises ValueError saying why."""
    if algo == "auto":
        return choose(s, device)
    registry.check(algo, s, device)
    return select.winograd_tile(s) if algo == "winograd" else algo


# A functional call's geometry and choice, per (shapes, stride, padding, dilation, groups, algo,
# the conv_algo override, the active rule set): a loop of same-shaped pycnn.conv2d calls had
# validated its arguments and run the rule again on every call, a sizeable part of a small
# layer's call (docs/performance.md, Functional conv2d). Only arguments of plain int or str
# (or tuples of them) make a key: True, 1.0 and 1 are equal keys, and ConvShape refuses the
# first two. Not with autotuning on (tuning.py keeps its own). forget() empties it, for code
# that edits select.py's thresholds at run time.
_CALLS: dict = {}
_CALLS_MAX = 1024


def forget() -> None:
    """Forget the functional calls' memoized choices (after editing select.py's rules)."""
    _CALLS.clear()


def _plain(v) -> bool:
    """v is an int or str, or a tuple of ints (bool excluded: a key equal to 1's)."""
    if type(v) is tuple:
        return all(type(e) is int for e in v)
    return type(v) in (int, str)


def conv_call(x_shape, w_shape, stride, padding, dilation, groups, algo: str, device: str = "cpu"):
    """(ConvShape, the concrete algorithm) for one functional conv2d call; for an empty batch
    the algorithm is None when algo is 'auto' (nothing to choose), else algo checked. Raises what
    ConvShape and resolve raise for bad arguments."""
    key = None
    if not config.autotune and all(_plain(v) for v in (stride, padding, dilation, groups, algo)):
        key = (x_shape, w_shape, stride, padding, dilation, groups, algo, config.conv_algo, select.rule_set(), device)
        hit = _CALLS.get(key)
        if hit is not None:
            return hit
    s = ConvShape(x_shape, w_shape, stride, padding, dilation, groups)
    chosen = resolve(algo, s, device) if s.N or algo != "auto" else None
    if key is not None:
        if len(_CALLS) >= _CALLS_MAX:
            _CALLS.clear()
        _CALLS[key] = (s, chosen)
    return s, chosen


def resolve_or_auto(algo: str, s: ConvShape, device: str = "cpu") -> str:
    """resolve(algo, s), or auto's choice where algo cannot run s: what a Graph told to run one
    algorithm does on the layers that algorithm does not take ('winograd' on a 1x1 layer)."""
    if algo != "auto" and registry.get(algo, device).supports(s):
        return resolve(algo, s, device)
    return choose(s, device)


__all__ = ["choose", "conv_call", "forget", "resolve", "resolve_or_auto"]
