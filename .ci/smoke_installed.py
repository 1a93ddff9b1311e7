"""Smoke test of an installed pycnn, run by .ci/check_package.sh from a directory outside the
clone with the interpreter of a fresh virtual environment: the package imports from
site-packages with every subpackage, the native modules (the CUDA emulator's too) and py.typed; a
zoo network, the CUDA kernels on the emulator, pickling,
the CLI and ONNX import work. Exits non-zero on the first failure."""

import importlib
import importlib.metadata
import os
import pickle
import shutil
import subprocess
import sys

import numpy as np

repo = os.environ["PYCNN_REPO"]
import pycnn  # noqa: E402

where = os.path.dirname(pycnn.__file__)
assert "site-packages" in where and not where.startswith(repo), f"pycnn imported from {where}, not an install"
assert importlib.metadata.version("pycnn") == pycnn.__version__, "two versions"
for sub in (
    "pycnn.models",
    "pycnn.io",
    "pycnn.batch_inference",
    "pycnn.models.layer_shapes",
    "pycnn.cuda",
    "pycnn._C",
    "pycnn._C_cuda_emu",
):
    importlib.import_module(sub)
assert os.path.exists(os.path.join(where, "py.typed")), "py.typed is missing"
if shutil.which("nvcc"):  # CMake builds the CUDA module wherever nvcc is found
    importlib.import_module("pycnn._C_cuda")
print("installed:", where, pycnn.__version__, "ISA", pycnn._C.cpu_isa())

for name in ("lenet5", "convnetjs"):
    g = pycnn.models.get(name, seed=1)
    x = np.random.default_rng(0).standard_normal((2,) + next(iter(g.inputs.values()))[1:]).astype(np.float32)
    y = g(x)
    np.testing.assert_allclose(y, g.run_reference(x), rtol=1e-4, atol=1e-5)
    assert np.array_equal(pickle.loads(pickle.dumps(g))(x), y)
print("zoo networks and pickling: ok")
ge = pycnn.models.get("lenet5", seed=1)
xe = np.random.default_rng(2).standard_normal((2, 1, 32, 32)).astype(np.float32)
np.testing.assert_allclose(ge.to("cuda_emu")(xe), ge(xe), rtol=1e-4, atol=1e-5)
print("CUDA kernels on the emulator: ok")

r = subprocess.run(
    [sys.executable, "-m", "pycnn", "run", "lenet5", "--batch", "2", "--runs", "1", "--quiet"],
    capture_output=True,
    text=True,
    timeout=300,
)
assert r.returncode == 0 and "time per batch" in r.stdout, r.stdout + r.stderr
r = subprocess.run([sys.executable, "-m", "pycnn", "list"], capture_output=True, text=True, timeout=300)
assert r.returncode == 0 and "resnet152" in r.stdout, r.stdout + r.stderr
print("CLI: ok")

import onnx  # noqa: E402  (the [onnx] extra)
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

w = np.random.default_rng(1).standard_normal((4, 3, 3, 3)).astype(np.float32)
model = helper.make_model(
    helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]), helper.make_node("Relu", ["c"], ["y"])],
        "smoke",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4, 8, 8])],
        [numpy_helper.from_array(w, "w")],
    ),
    opset_imports=[helper.make_opsetid("", 17)],
)
g = pycnn.load_onnx(model.SerializeToString())
x = np.random.default_rng(2).standard_normal((2, 3, 8, 8)).astype(np.float32)
np.testing.assert_allclose(g(x), np.maximum(pycnn.conv2d(x, w, padding=1, algo="reference"), 0), rtol=1e-4, atol=1e-5)
print("ONNX import (onnx", onnx.__version__ + "): ok")
print("SMOKE OK")
