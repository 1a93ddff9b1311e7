"""The README's Python examples run as written: each ```python block in a fresh interpreter, in a
scratch directory that holds the one file a block names without making it (model.onnx)."""

import os
import re
import subprocess
import sys

import numpy as np
import pytest

README = os.path.join(os.path.dirname(__file__), "..", "README.md")
BLOCKS = re.findall(r"```python\n(.*?)```", open(README).read(), re.S)


def test_readme_has_examples():
    assert len(BLOCKS) >= 4


@pytest.mark.parametrize("i", range(len(BLOCKS)))
def test_readme_block_runs(i, tmp_path):
    code = BLOCKS[i]
    if "import cupy" in code:
        import pycnn

        if pycnn.cuda.why_not("cuda"):
            pytest.skip(f"the block runs on a GPU: {pycnn.cuda.why_not('cuda')}")
    if "import ray" in code:
        pytest.importorskip("ray", reason="ray is not installed (pip install '.[ray]')")
    if "load_onnx" in code:
        onnx = pytest.importorskip("onnx", reason="onnx is not installed (pip install '.[onnx]')")
        from onnx import TensorProto, helper, numpy_helper

        w = np.ones((2, 3, 1, 1), np.float32)
        g = helper.make_graph(
            [helper.make_node("Conv", ["x", "w"], ["y"])],
            "m",
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 4, 4])],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 2, 4, 4])],
            [numpy_helper.from_array(w, "w")],
        )
        onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), tmp_path / "model.onnx")
    env = dict(
        os.environ,
        PYCNN_CACHE_DIR=str(tmp_path / "cache"),
        PYTHONPATH=os.path.abspath(os.path.join(os.path.dirname(__file__), "..")),
    )
    r = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=600, env=env)
    assert r.returncode == 0, f"README block {i} failed:\n{code}\n{r.stderr[-3000:]}"
