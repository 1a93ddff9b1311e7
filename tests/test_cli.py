"""python -m pycnn run / summary / list."""
import subprocess
import sys

import numpy as np

import pycnn


def cli(*args):
    return subprocess.run([sys.executable, "-m", "pycnn", *args], capture_output=True, text=True, timeout=300)


def test_run_prints_top_classes_and_time(tmp_path):
    w = tmp_path / "w.npz"
    np.savez(w, **pycnn.models.lenet5(seed=9).state_dict())
    x = np.random.default_rng(0).standard_normal((3, 1, 32, 32)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    r = cli("run", "lenet5", "--weights", str(w), "--input", str(tmp_path / "x.npy"), "--algo", "im2col",
            "--runs", "2", "--top", "3", "--threads", "1")
    assert r.returncode == 0, r.stderr
    y = pycnn.softmax(pycnn.models.lenet5(seed=9)(x), axis=1)
    top = np.argsort(-y[2])[:3]
    assert f"sample 2: class {top[0]} ({y[2, top[0]]:.3f})" in r.stdout
    assert "time per batch: median" in r.stdout and "1 threads" in r.stdout


def test_run_random_input_batch_and_profile():
    r = cli("run", "convnetjs", "--batch", "4", "--runs", "2", "--profile")
    assert r.returncode == 0, r.stderr
    assert "input (4, 3, 32, 32)" in r.stdout and "sample 3:" in r.stdout and "conv1+relu1" in r.stdout
    r = cli("run", "kimcnn", "--runs", "1")
    assert r.returncode == 0 and "int64" in r.stdout


def test_run_onnx_file(tmp_path):
    onnx = __import__("pytest").importorskip("onnx")
    from onnx import TensorProto, helper

    g = helper.make_graph([helper.make_node("Softmax", ["x"], ["y"], axis=1)], "sm",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 5])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 5])])
    p = tmp_path / "sm.onnx"
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), p)
    np.save(tmp_path / "x.npy", np.array([[0, 1, 2, 3, 9]], np.float32))
    r = cli("run", str(p), "--input", str(tmp_path / "x.npy"), "--runs", "1", "--top", "1")
    assert r.returncode == 0, r.stderr
    assert "class 4 (0.99" in r.stdout


def test_errors_and_other_commands():
    r = cli("run", "vgg99")
    assert r.returncode == 2 and "unknown model 'vgg99'" in r.stderr
    r = cli("run", "lenet5", "--batch", "0")
    assert r.returncode != 0 and "--batch" in r.stderr
    r = cli("summary", "resnet18")
    assert r.returncode == 0 and "layer4.1.conv2" in r.stdout and "peak activations" in r.stdout
    r = cli("list")
    assert r.returncode == 0 and all(n in r.stdout for n in pycnn.models.names())
