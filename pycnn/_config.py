"""The environment settings, read once at import into one object (pycnn.config).

    PYCNN_ISA=avx2|generic       cap the SIMD path (applied to the kernels at import)
    PYCNN_WORKSPACE_LIMIT=bytes  the scratch one kernel call may allocate (default 2 GiB)
    PYCNN_CONV_ALGO=name         force every algo='auto' convolution to one algorithm
    PYCNN_AUTOTUNE=1             time the candidates of algo='auto' per shape (pycnn.autotune)
    PYCNN_CACHE_DIR=dir          where the autotune cache lives ($XDG_CACHE_HOME/pycnn by default)
    PYCNN_WEIGHT_CACHE=0         conv2d transforms the weights on every call (pycnn/_weight_cache.py)

Change them at run time on the object (pycnn.config.conv_algo = 'im2col') or with the functions
that own them (pycnn.autotune, pycnn.set_workspace_limit, pycnn._C.set_isa); the environment is
not read again. A value that cannot be used is reported as a warning and ignored.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

ISAS = ("generic", "avx2", "avx512")
_OFF = ("", "0", "false", "off", "no")


@dataclass
class Config:
    isa: Optional[str] = None
    workspace_limit: Optional[int] = None
    conv_algo: Optional[str] = None
    autotune: bool = False
    cache_dir: Path = Path.home() / ".cache" / "pycnn"
    weight_cache: bool = True

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> Config:
        c = cls()
        isa = env.get("PYCNN_ISA")
        if isa:
            if isa in ISAS:
                c.isa = isa
            else:
                _ignored("PYCNN_ISA", isa, f"one of {', '.join(ISAS)}")
        limit = env.get("PYCNN_WORKSPACE_LIMIT")
        if limit:
            if limit.isdigit() and int(limit) > 0:
                c.workspace_limit = int(limit)
            else:
                _ignored("PYCNN_WORKSPACE_LIMIT", limit, "a positive number of bytes")
        c.conv_algo = env.get("PYCNN_CONV_ALGO") or None  # checked against the registry when used
        c.autotune = env.get("PYCNN_AUTOTUNE", "0").lower() not in _OFF
        c.weight_cache = env.get("PYCNN_WEIGHT_CACHE", "1").lower() not in _OFF
        if env.get("PYCNN_CACHE_DIR"):
            c.cache_dir = Path(env["PYCNN_CACHE_DIR"])
        elif env.get("XDG_CACHE_HOME"):
            c.cache_dir = Path(env["XDG_CACHE_HOME"]) / "pycnn"
        return c


def _ignored(name, value, expected):
    warnings.warn(f"{name}={value!r} is not {expected}; ignored", stacklevel=4)


config = Config.from_env()

__all__ = ["Config", "config", "ISAS"]
