"""Weights from a dict of arrays, an .npz file or a PyTorch state_dict (dict or .pt/.pth file).

Keys are kept as they are (PyTorch's names); values become NumPy arrays. Save a Graph's weights
with np.savez(path, **g.state_dict()).
"""

from __future__ import annotations

import os

import numpy as np

from ._optional import require


def _to_numpy(key, v):
    if isinstance(v, np.ndarray):
        return v
    if hasattr(v, "detach") and hasattr(v, "cpu"):  # a torch tensor, possibly on a GPU
        return v.detach().cpu().numpy()
    try:
        return np.asarray(v)
    except Exception as e:  # noqa: BLE001 - name the key that failed
        raise TypeError(f"weights: value of {key!r} is not an array ({type(v).__name__}): {e}") from None


def load_weights(src):
    """src: a mapping of key -> array/tensor, or a path to .npz / .pt / .pth. Returns {key: ndarray}."""
    if isinstance(src, (str, os.PathLike)):
        path = os.fspath(src)
        if not os.path.exists(path):
            raise FileNotFoundError(f"weights: no such file {path!r}")
        if path.endswith(".npz"):
            with np.load(path, allow_pickle=False) as z:
                return {k: z[k] for k in z.files}
        if path.endswith((".pt", ".pth", ".bin", ".ckpt")):
            torch = require("torch", f"weights: reading {path!r}")
            obj = torch.load(path, map_location="cpu", weights_only=True)
            if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
                obj = obj["state_dict"]
            if not isinstance(obj, dict):
                raise TypeError(f"weights: {path!r} does not hold a state_dict (got {type(obj).__name__})")
            return {k: _to_numpy(k, v) for k, v in obj.items()}
        raise ValueError(f"weights: expected an .npz, .pt or .pth file, got {path!r}")
    if hasattr(src, "items"):
        return {str(k): _to_numpy(k, v) for k, v in src.items()}
    raise TypeError(f"weights: expected a dict of arrays or a file path, got {type(src).__name__}")
