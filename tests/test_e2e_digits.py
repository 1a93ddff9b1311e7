"""The end-to-end check of examples/lenet_digits.py: LeNet-5 trained in PyTorch on scikit-learn's
digits, loaded into pycnn from the saved state_dict file, same predictions and accuracy."""

import os
import sys

import pytest

from conftest import needs_torch

pytest.importorskip("sklearn", reason="scikit-learn is not installed (pip install -e .[test])")
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "examples"))


@needs_torch
def test_lenet_digits_end_to_end(tmp_path):
    import lenet_digits

    r = lenet_digits.run(epochs=30, out=str(tmp_path / "lenet.pth"), verbose=False)
    assert os.path.exists(r["weights"])
    assert r["n_test"] == 450
    assert r["agree"] == r["n_test"], r
    assert r["acc_pycnn"] == r["acc_torch"]
    assert r["acc_pycnn"] >= 0.95, r  # a trained LeNet, not a random one (chance is 0.1)
    assert r["max_logit_diff"] < 1e-3
