"""The optional dependencies, imported where first needed with one error that names the pip extra
(a leaf module: pycnn imports only NumPy and its own modules eagerly)."""

from __future__ import annotations

import importlib
from types import ModuleType

# module -> (what needs it, the pip extra that installs it)
EXTRAS = {"onnx": "onnx", "torch": "test", "ray": "ray", "ray.data": "ray"}


def require(module: str, purpose: str) -> ModuleType:
    """The module, or ImportError saying what needs it and the pip command that installs it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        top = module.split(".")[0]
        extra = EXTRAS.get(module, EXTRAS.get(top))
        how = f"pip install 'pycnn[{extra}]' (or pip install {top})" if extra else f"pip install {top}"
        raise ImportError(f"{purpose} needs the {top} package: {how}") from None


__all__ = ["require", "EXTRAS"]
