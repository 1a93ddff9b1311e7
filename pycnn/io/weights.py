"""Weights from a dict of arrays, an .npz file or a PyTorch state_dict (pycnn/_weights.py, a
leaf module the Graph imports; re-exported here as pycnn.io.load_weights)."""

from .._weights import load_weights

__all__ = ["load_weights"]
