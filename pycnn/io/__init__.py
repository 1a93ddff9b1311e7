"""Weights in and out (npz, PyTorch state_dict) and ONNX import."""

from .onnx_import import load_onnx
from .weights import load_weights

__all__ = ["load_onnx", "load_weights"]
