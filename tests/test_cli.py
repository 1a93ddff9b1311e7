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
    r = cli(
        "run",
        "lenet5",
        "--weights",
        str(w),
        "--input",
        str(tmp_path / "x.npy"),
        "--algo",
        "im2col",
        "--runs",
        "2",
        "--top",
        "3",
        "--threads",
        "1",
    )
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

    g = helper.make_graph(
        [helper.make_node("Softmax", ["x"], ["y"], axis=1)],
        "sm",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 5])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 5])],
    )
    p = tmp_path / "sm.onnx"
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), p)
    np.save(tmp_path / "x.npy", np.array([[0, 1, 2, 3, 9]], np.float32))
    r = cli("run", str(p), "--input", str(tmp_path / "x.npy"), "--runs", "1", "--top", "1")
    assert r.returncode == 0, r.stderr
    assert "class 4 (0.99" in r.stdout


def test_errors_and_other_commands():
    r = cli("run", "vgg99")
    assert r.returncode == 2 and "unknown model 'vgg99'" in r.stderr and "Traceback" not in r.stderr
    r = cli("run", "lenet5", "--batch", "0")
    assert r.returncode != 0 and "--batch" in r.stderr
    r = cli("summary", "resnet18")
    assert r.returncode == 0 and "layer4.1.conv2" in r.stdout and "peak activations" in r.stdout
    r = cli("list")
    assert r.returncode == 0 and all(n in r.stdout for n in pycnn.models.names())


def one_line_error(r, *words):
    """Exit status 2, no traceback, one 'error:' line on stderr that contains every word."""
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert "Traceback" not in r.stderr, r.stderr
    errs = [ln for ln in r.stderr.splitlines() if "error:" in ln]
    assert len(errs) == 1 and all(w in errs[0] for w in words), r.stderr


def test_bad_input_is_one_line_naming_the_option(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"this is not protobuf at all \xff\xfe")
    one_line_error(cli("run", str(bad), "--quiet"), "MODEL", "not a readable ONNX model")
    one_line_error(cli("run", str(tmp_path / "none.onnx")), "MODEL", "no such file")
    one_line_error(cli("run", "lenet5", "--input", "missing.npy"), "--input", "no such file")
    np.save(tmp_path / "nhwc.npy", np.zeros((1, 32, 32, 3), np.float32))
    one_line_error(cli("run", "convnetjs", "--input", str(tmp_path / "nhwc.npy")), "--input", "NCHW")
    (tmp_path / "junk.npy").write_bytes(b"junk")
    one_line_error(cli("run", "lenet5", "--input", str(tmp_path / "junk.npy")), "--input")
    one_line_error(cli("run", "lenet5", "--weights", str(tmp_path / "w.npz")), "--weights", "no such file")
    np.savez(tmp_path / "w.npz", **{"module.conv1.weight": np.zeros((6, 1, 5, 5))})
    one_line_error(cli("run", "lenet5", "--weights", str(tmp_path / "w.npz")), "--weights")
    one_line_error(cli("run", "lenet5", "--algo", "fft"), "--algo", "fft")
    one_line_error(cli("summary", "resnet18", "--batch", "-5"), "--batch", ">= 1")
    one_line_error(cli("run", "lenet5", "--threads", "100000"), "--threads")
    one_line_error(cli("run", "lenet5", "--runs", "zero"), "--runs")


def test_missing_optional_dependency_names_the_pip_command(tmp_path):
    p = tmp_path / "m.onnx"
    p.write_bytes(b"x")
    code = (
        "import sys; sys.modules['onnx'] = None; from pycnn.__main__ import main; "
        f"sys.exit(main(['run', {str(p)!r}, '--quiet']))"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    one_line_error(r, "pip install", "pycnn[onnx]")


def test_progress_says_what_runs_and_that_weights_are_random():
    r = cli("run", "lenet5", "--batch", "2", "--runs", "1")
    assert r.returncode == 0, r.stderr
    for step in ("building lenet5", "random weights", "--weights FILE", "first run, batch 2", "timing 1 runs"):
        assert step in r.stderr, r.stderr
    r = cli("run", "lenet5", "--runs", "1", "--quiet")
    assert r.returncode == 0 and r.stderr == ""


def test_list_builds_nothing(monkeypatch, capsys):
    from pycnn import __main__ as cli_main

    def refuse(**kw):
        raise AssertionError("list must not build a network")

    monkeypatch.setattr(pycnn.models, "_ZOO", {n: i._replace(builder=refuse) for n, i in pycnn.models._ZOO.items()})
    assert cli_main.main(["list"]) == 0
    out = capsys.readouterr().out
    assert all(n in out for n in pycnn.models.names()) and "(N, 3, 224, 224)" in out


def test_run_a_saved_graph_file(tmp_path):
    pycnn.models.lenet5(seed=4).save(tmp_path / "lenet.pycnn")
    x = np.random.default_rng(0).standard_normal((2, 1, 32, 32)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    r = cli("run", str(tmp_path / "lenet.pycnn"), "--input", str(tmp_path / "x.npy"), "--runs", "1", "--top", "1")
    assert r.returncode == 0, r.stderr
    y = pycnn.softmax(pycnn.models.lenet5(seed=4)(x), dim=1)
    assert f"sample 1: class {int(np.argmax(y[1]))} ({y[1].max():.3f})" in r.stdout
