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


def resolve_or_auto(algo: str, s: ConvShape, device: str = "cpu") -> str:
    """resolve(algo, s), or auto's choice where algo cannot run s: what a Graph told to run one
    algorithm does on the layers that algorithm does not take ('winograd' on a 1x1 layer)."""
    if algo != "auto" and registry.get(algo, device).supports(s):
        return resolve(algo, s, device)
    return choose(s, device)


__all__ = ["choose", "resolve", "resolve_or_auto"]
