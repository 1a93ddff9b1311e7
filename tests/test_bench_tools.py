"""The bench's own tools: the runner end to end on one small layer, the markdown report and the
comparison of two runs (the measuring instrument is code too)."""

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import pycnn
from bench import compare as bench_compare
from bench import report, suites


def _run(tmp_path, *args):
    out = tmp_path / "run"
    r = subprocess.run(
        [sys.executable, "-m", "bench", *args, "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=Path(__file__).resolve().parents[1],
    )  # bench/ lives at the repository root
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    if importlib.util.find_spec("matplotlib") is not None:  # the [bench] extra draws plots
        assert (out / "gflops_b1.png").stat().st_size > 10000
    return json.loads((out / "results.json").read_text()), r.stdout


def test_bench_layers_end_to_end(tmp_path):
    res, stdout = _run(tmp_path, "layers", "--filter", "lenet5.conv1", "--batch", "1", "--rounds", "1", "--no-numpy")
    (row,) = res["rows"]
    assert row["layer"] == "lenet5.conv1" and row["N"] == 1
    for algo in ("direct", "direct_oc", "im2col", "auto"):
        assert row[f"{algo}_ms"] > 0 and row[f"{algo}_gflops"] > 0
    assert row["best_algo"] in ("direct", "im2col")
    assert res["meta"]["threads"] == 2 and res["meta"]["pycnn_isa"]
    assert "geomean speed at batch 1" in stdout
    md = report.render(res)
    assert "| 1 | 1 |" in md and "lenet5.conv1" in md
    # comparing a run with itself: every ratio is exactly 1
    text = bench_compare.compare(res, res)
    timed = sum(1 for k, v in row.items() if k.endswith("_ms") and k[:-3] in suites.ALGOS and v)
    assert timed >= 4 and f"geomean old/new over {timed} matched measurements: 1.000x" in text


def test_compare_reports_speedup():
    meta = dict(started="t", threads=2, pycnn_isa="avx512", processor="cpu")
    old = {
        "meta": meta,
        "rows": [
            {"suite": "layers", "layer": "a", "N": 1, "im2col_ms": 2.0, "torch_ms": 5.0},
            {"suite": "sgemm", "name": "s", "pycnn_ms": 4.0},
        ],
    }
    new = {
        "meta": dict(meta, threads=1),
        "rows": [
            {"suite": "layers", "layer": "a", "N": 1, "im2col_ms": 1.0, "torch_ms": 1.0},
            {"suite": "sgemm", "name": "s", "pycnn_ms": 4.0},
        ],
    }
    text = bench_compare.compare(old, new)
    assert "2.00x" in text and "warning" in text  # thread counts differ
    assert "over 2 matched measurements: 1.414x" in text  # torch times are not pycnn's: ignored


def test_timing_compare_takes_turns_and_meets_min_samples():
    """compare() interleaves the candidates' blocks, and a candidate too slow for more than one
    call per block gets extra rounds until it has min_samples timed calls."""
    import time

    from bench import timing

    log = []
    cands = {"fast": lambda: log.append("fast"), "slow": lambda: (time.sleep(0.02), log.append("slow"))}
    out = timing.compare(cands, rounds=2, target_s=0.02, max_reps=50, min_samples=5)
    assert out["slow"]["samples"] >= 5
    assert out["fast"]["samples"] > out["slow"]["samples"]
    assert out["slow"]["median_s"] >= 0.02 > out["fast"]["median_s"]
    runs = [k for i, k in enumerate(log) if i == 0 or log[i - 1] != k]  # blocks in order
    assert runs[:6] == ["fast", "slow"] * 3
    out = timing.compare(cands, rounds=2, target_s=0.02, max_reps=50)
    assert out["slow"]["samples"] == 2


def test_timing_compare_pauses_only_where_the_engine_changes(monkeypatch):
    """The pause before a block (for the previous engine's spinning workers) is skipped after a
    block of the same engine (pycnn's algorithms share one OpenMP team); by default every
    candidate is its own engine. The layers suite runs pycnn's algorithms as one engine."""
    from bench import suites, timing

    pauses = []
    real_sleep = timing.time.sleep
    monkeypatch.setattr(timing.time, "sleep", lambda s: (pauses.append(s), real_sleep(s)))
    cands = {"direct": lambda: None, "im2col": lambda: None, "torch": lambda: None}
    timing.compare(cands, rounds=2, target_s=0.002, max_reps=2)
    assert pauses.count(timing.PAUSE_S) == 6
    pauses.clear()
    timing.compare(cands, rounds=2, target_s=0.002, max_reps=2, engine=suites._engine_of_layer_candidate)
    # round 1: direct (pause), im2col (same engine), torch (pause); round 2 likewise
    assert pauses.count(timing.PAUSE_S) == 4
    assert suites._engine_of_layer_candidate("auto") == "pycnn"
    assert suites._engine_of_layer_candidate("ort") == "ort"


def test_every_bench_tool_has_openblas_workers_sleep_at_once():
    """The package sets OPENBLAS_THREAD_TIMEOUT before its tools import NumPy (bench.sgemm_ab and
    the others run as `python -m bench.TOOL`, not through bench/__main__.py): checked in a fresh
    interpreter without the variable."""
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_THREAD_TIMEOUT"}
    code = "import bench, os; print(os.environ['OPENBLAS_THREAD_TIMEOUT'])"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "4"


def test_timing_block_warms_up_for_a_minimum_time():
    """time_block runs untimed calls for at least warmup_s (and at least `warmup` calls) before
    the timed ones: right after its pause this VM runs slowly for a few milliseconds."""
    import time

    from bench import timing

    calls = []
    fn = lambda: (calls.append(time.perf_counter()), time.sleep(0.001))  # noqa: E731
    out = timing.time_block(fn, reps=3, warmup=1, warmup_s=0.02)
    assert len(out) == 3
    assert len(calls) - 3 >= 10  # 20 ms of 1 ms calls
    assert calls[-3] - calls[0] >= 0.02
    calls.clear()
    timing.time_block(fn, reps=2, warmup=4, warmup_s=0.0)
    assert len(calls) == 6


def test_depthwise_check_runs(capsys, monkeypatch):
    """bench/depthwise_check.py, on two small layers: both depthwise kernels, the blocked one where
    16 | C, and PyTorch timed, the ratio printed."""
    pytest = __import__("pytest")
    pytest.importorskip("torch")
    from bench import depthwise_check

    monkeypatch.setattr(depthwise_check, "LAYERS", [(8, 14, 3, 2), (16, 7, 3, 1)])
    depthwise_check.main(["--batch", "2"])
    lines = capsys.readouterr().out.splitlines()
    assert "batch 2" in lines[0] and "speed" in lines[0]
    assert lines[2].split()[:3] == ["8@14", "3x3", "s2"] and lines[2].split()[5] == "-"  # no blocked run
    assert lines[3].split()[:3] == ["16@7", "3x3", "s1"] and len(lines[3].split()) == 8
    assert all(float(v) > 0 for v in lines[3].split()[3:])


def test_depthwise_check_old_build(capsys, monkeypatch, tmp_path):
    """depthwise_check --old: an older build's blocked call in the same blocks, old ms and old / new."""
    pytest = __import__("pytest")
    pytest.importorskip("torch")
    import shutil

    from bench import depthwise_check

    src = Path(pycnn.__file__).parent
    shutil.copytree(src, tmp_path / "pycnn_old", ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(depthwise_check, "LAYERS", [(16, 20, 3, 2)])
    depthwise_check.main(["--old", str(tmp_path)])
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].endswith("old/new")
    row = lines[2].split()
    assert row[:3] == ["16@20", "3x3", "s2"] and len(row) == 10 and row[-1].endswith("x") and float(row[-2]) > 0


def test_grouped_check_runs(capsys, monkeypatch):
    """bench/grouped_check.py, on two small layers: im2col, direct_oc, grouped_c16 on NCHW and
    blocked tensors and PyTorch timed, GFLOP/s and the ratio printed."""
    pytest = __import__("pytest")
    pytest.importorskip("torch")
    from bench import grouped_check

    monkeypatch.setattr(grouped_check, "LAYERS", [(32, 4, 14, 1), (16, 8, 9, 2)])
    grouped_check.main(["--batch", "2"])
    lines = capsys.readouterr().out.splitlines()
    assert "batch 2" in lines[0] and "speed" in lines[0]
    assert [ln.split()[:2] for ln in lines[2:]] == [["32/4@14", "s1"], ["16/8@9", "s2"]]
    assert all(len(ln.split()) == 9 and all(float(v) > 0 for v in ln.split()[2:]) for ln in lines[2:])


def _needs_torchvision():
    """Skip (naming why) where PyTorch or torchvision cannot be imported: the tools below export
    torchvision's networks."""
    pytest = __import__("pytest")
    pytest.importorskip("torch")
    from bench import torchvision_zoo

    try:
        torchvision_zoo.import_torchvision()
    except ImportError as e:
        pytest.skip(str(e))


def test_layout_ab_runs(capsys):
    """bench/layout_ab.py: the network with one layout rule off and on, both results equal, the
    medians and their ratio printed."""
    _needs_torchvision()
    from bench import layout_ab

    rules = ("gate", "pad_channels", "pw_dw", "pw_dw_split", "pw_dw_project", "chains", "chain_pools", "se", "mean")
    for rule in rules:
        layout_ab.main(["mobilenet_v3_small", "--off", rule, "--rounds", "1"])
        line = capsys.readouterr().out.strip().splitlines()[-1]
        assert line.startswith("mobilenet_v3_small batch 1") and f"rule '{rule}' off" in line and line.endswith("x")
    layout_ab.main(["mobilenet_v3_small", "--off", "mean", "--rounds", "1", "--steps", "1"])
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[-2].startswith("  steps changed: 2, their sum off ")  # its last conv and its pool
    assert "fused into the next step" in lines[-4] and "direct_oc (+ the conv before it" in lines[-3]
    rules = {isa: dict(r) for isa, r in layout_ab.select.ISA_RULES.items()}
    layout_ab.main(["regnet_y_400mf", "--off", "grouped", "--rounds", "1"])  # its grouped 3x3s
    assert "rule 'grouped' off" in capsys.readouterr().out
    assert layout_ab.select.ISA_RULES == rules  # switched back on
    rules = {isa: dict(r) for isa, r in layout_ab.select.ISA_RULES.items()}
    switches = ("concat_prefix", "concat_strided", "ck_per_tile", "ck_per_tile_isa", "small_maps_f2", "windowed")
    for rule in switches + ("windowed_concats",):
        layout_ab.main(["mobilenet_v3_small", "--off", rule, "--rounds", "1"])
        assert f"rule '{rule}' off" in capsys.readouterr().out
    restore = layout_ab._rule_off("small_maps_f2")  # every rule set's threshold off, then each back
    assert all(r["small_map_f2_min_ck"] is None for r in layout_ab.select.ISA_RULES.values())
    restore()
    assert layout_ab.select.ISA_RULES == rules
    layout_ab.main(["mobilenet_v3_small", "--set", "max_ck_per_tile=16", "--rounds", "1"])  # one threshold at a value
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert "rule sets with max_ck_per_tile=16" in line and "as they are" in line and line.endswith("x")
    assert layout_ab.select.ISA_RULES == rules  # each set's own value back
    for bad in ("no_such_threshold=1", "max_ck_per_tile=", "max_ck_per_tile=1.5"):
        with pytest.raises(SystemExit):
            layout_ab.main(["mobilenet_v3_small", "--set", bad])
    with pytest.raises(SystemExit):  # one comparison at a time
        layout_ab.main(["mobilenet_v3_small", "--set", "max_ck_per_tile=16", "--off", "chains"])
    assert "--set" in capsys.readouterr().err
    restore = layout_ab._rule_off("small_map_ck")  # SqueezeNet's 48 -> 192 @13 at batch 1
    squeeze = layout_ab.pycnn.ops.ConvShape((1, 48, 13, 13), (192, 48, 3, 3), 1, 1, 1, 1)
    assert layout_ab.select.heuristic(squeeze, "avx512") == "winograd_f2"
    restore()
    assert layout_ab.select.heuristic(squeeze, "avx512") == "direct_oc"
    assert layout_ab.binding.PREFIX_CONCATS and layout_ab.binding.STRIDED_CONCATS and layout_ab.layout.WINDOWED_READERS
    assert layout_ab.layout.WINDOWED_CONCATS
    layout_ab.main(["convnetjs", "--batch", "8", "--off", "winograd_5x5", "--rounds", "1"])  # its 16 -> 20 5x5
    assert "rule 'winograd_5x5' off" in capsys.readouterr().out
    assert layout_ab.select.WINOGRAD_5X5_MIN_TILES == 16  # switched back on
    restore = layout_ab._rule_off("winograd_5x5")
    shape = layout_ab.pycnn.ops.ConvShape((8, 16, 16, 16), (20, 16, 5, 5), 1, 2, 1, 1)
    at_b1 = layout_ab.pycnn.ops.ConvShape((1, 16, 16, 16), (20, 16, 5, 5), 1, 2, 1, 1)  # the F(2x2,5x5) rule's
    assert layout_ab.select.heuristic(shape, "avx512") == layout_ab.select.heuristic(at_b1, "avx512") == "direct_oc"
    restore()
    assert layout_ab.select.heuristic(shape, "avx512") == "winograd_f4"
    assert layout_ab.select.heuristic(at_b1, "avx512") == "winograd_f2"
    assert layout_ab.select.WINOGRAD_5X5_F2_MIN_TILES == 64
    restore = layout_ab._rule_off("winograd_1d_short")  # the 3-, 4- and 5-tap ones
    short = layout_ab.pycnn.ops.ConvShape((8, 384, 8, 8), (384, 384, 1, 3), 1, (0, 1), 1, 1)
    assert layout_ab.select.heuristic(short, "avx512") == "direct_oc"
    restore()
    assert layout_ab.select.heuristic(short, "avx512") == "winograd_f4"
    restore = layout_ab._rule_off("winograd_1d")
    shape = layout_ab.pycnn.ops.ConvShape((1, 192, 17, 17), (192, 192, 1, 7), 1, (0, 3), 1, 1)
    assert layout_ab.select.heuristic(shape, "avx512") == "direct_oc"
    restore()
    assert layout_ab.select.heuristic(shape, "avx512") == "winograd_f4"
    for net in ("lenet5", "kimcnn"):  # lecture networks (pycnn.models), Kim's with token ids
        layout_ab.main([net, "--batch", "2", "--off", "all", "--rounds", "1"])
        assert capsys.readouterr().out.startswith(f"{net} batch 2")
    assert layout_ab.select.ISA_RULES == rules  # switched back on


def test_build_ab_runs(capsys, tmp_path):
    """bench/build_ab.py: this build against a copy of itself imported as pycnn_old (what an older
    build's copy is), outputs compared, both timed, the ratio printed."""
    _needs_torchvision()
    import pathlib
    import shutil

    from bench import build_ab

    src = pathlib.Path(pycnn.__file__).parent
    shutil.copytree(src, tmp_path / "pycnn_old", ignore=shutil.ignore_patterns("__pycache__"))
    build_ab.main([str(tmp_path), "mobilenet_v3_small", "--rounds", "1"])
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert line.startswith("mobilenet_v3_small batch 1") and "old" in line and "new" in line and line.endswith("x")
    build_ab.main([str(tmp_path), "lenet5", "--batch", "2", "--rounds", "1"])  # a lecture network
    assert capsys.readouterr().out.strip().splitlines()[-1].startswith("lenet5 batch 2")
    from bench import conv_ab

    conv_ab.main([str(tmp_path), "1,16,9,32,5,1,2", "--algo", "direct_oc", "--rounds", "1"])
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert line.startswith("N1 16->32 5x5/1 pad 2 @9 (direct_oc, 2 threads): old") and line.endswith("x")
    # as a Graph's layout pass binds it: blocked x (handed over blocked) and y, on one thread
    conv_ab.main([str(tmp_path), "2,16,9,32,1,1,0", "--algo", "direct_oc", "--rounds", "1", "--blocked", "xy"])
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert line.startswith("N2 16->32 1x1/1 pad 0 @9 (direct_oc, blocked xy, 2 threads): old") and line.endswith("x")
    # blocked x, NCHW y (the 1x1 before a Winograd 3x3 in a Graph)
    conv_ab.main([str(tmp_path), "2,16,9,32,1,1,0", "--algo", "direct_oc", "--rounds", "1", "--blocked", "x"])
    assert "(direct_oc, blocked x, 2 threads): old" in capsys.readouterr().out
    conv_ab.main([str(tmp_path), "1,3,20,32,7,2,3", "--algo", "direct_oc", "--rounds", "1", "--threads", "1"])
    assert "(direct_oc, 1 threads)" in capsys.readouterr().out
    # weights evicted before each call, the two builds alternating
    cold = ["--rounds", "1", "--blocked", "xy", "--cold"]
    conv_ab.main([str(tmp_path), "1,64,7,96,1,1,0", "--algo", "direct_oc", *cold])
    assert "(direct_oc, blocked xy, 2 threads, weights cold): old" in capsys.readouterr().out
    from bench import functional_ab

    functional_ab.main([str(tmp_path), "--filter", "lenet5.*", "--batch", "2", "--rounds", "1"])
    out = capsys.readouterr().out.strip().splitlines()
    assert out[0].startswith("lenet5.conv1") and "N=2: old" in out[0] and out[0].endswith("x")
    assert out[-1].startswith("3 layers, batch 2, 2 threads: geomean") and out[-1].endswith("x")
    with pytest.raises(SystemExit):
        functional_ab.main([str(tmp_path), "--filter", "no_such_layer"])
    capsys.readouterr()
    from bench import linear_ab

    linear_ab.main([str(tmp_path), "6,70,37", "--rounds", "1"])
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert line.startswith("linear N6 70->37") and "old" in line and "new" in line
    from bench import sgemm_ab

    sgemm_ab.main([str(tmp_path), "13,49,70", "--rounds", "1"])
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert line.startswith("13,49,70") and "old" in line and "numpy" in line and line.endswith("x")


def test_blocked_pool_check_runs(capsys, monkeypatch):
    """bench/blocked_pool_check.py: each blocked pool call timed, ms and GB/s per shape."""
    from bench import blocked_pool_check

    monkeypatch.setattr(blocked_pool_check, "SHAPES", [("avg", 1, 32, 9, 3, 1, 1), ("max", 2, 16, 11, 3, 2, 1)])
    from pycnn.graph import chunk_chains

    # pools that would join the conv before them in a chunked chain (batch 8 stems) still time alone
    monkeypatch.setattr(chunk_chains, "POOL_MIN_INPUT_BYTES", 0)
    monkeypatch.setattr(chunk_chains, "MIN_INTERMEDIATE_BYTES", 0)
    monkeypatch.setattr(chunk_chains, "WEIGHTS_PER_IMAGE", 0.0)
    blocked_pool_check.main(["--rounds", "1"])
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("blocked pools, ISA") and len(lines) == 3
    assert lines[1].startswith("avg 1x32x9x9 3x3/1 pad 1: new") and lines[2].endswith("GB/s)")


def test_pause_cost_runs(capsys, monkeypatch):
    """bench/pause_cost.py: the stem pool timed after each pause, one row per thread count."""
    from bench import pause_cost

    monkeypatch.setattr(pause_cost, "PAUSES_MS", (0.0, 0.1))
    pause_cost.main(["--runs", "1"])
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("max pool 3x3/2") and "after 0.1 ms" in lines[1]
    rows = [line.split() for line in lines[2:]]
    assert [r[0] for r in rows] == [str(t) for t in sorted({1, pycnn.get_num_threads()})]
    assert all(len(r) == 3 and float(r[1]) > 0 for r in rows)


def test_eltwise_threads_runs(capsys, monkeypatch):
    """bench/eltwise_threads.py: each pass on 1 and on 2 threads, the thread count restored."""
    from bench import eltwise_threads

    monkeypatch.setattr(eltwise_threads, "SHAPES", [(16, 9), (32, 64)])
    before = pycnn.get_num_threads()
    eltwise_threads.main(["--rounds", "1"])
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("ISA") and len(lines) == 5
    assert lines[1].split()[:2] == ["1296", "batch_norm+relu"] and lines[4].split()[:2] == ["131072", "add"]
    assert all(ln.endswith("x") and " 2T " in ln for ln in lines[1:])
    assert pycnn.get_num_threads() == before


def test_epilogue_cost_runs(capsys):
    """bench/epilogue_cost.py: the conv alone and with each function in its step, timed."""
    from bench import epilogue_cost

    epilogue_cost.main(["--size", "8", "--rounds", "1"])
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("16->96 1x1 at 8x8") and "conv alone" in lines[0]
    assert [ln.split()[1] for ln in lines[1:]] == list(epilogue_cost.FNS[1:])


def test_page_faults_and_per_channel_ab_run(capsys):
    """bench/page_faults.py counts a network's faults per run and per step (none once the arena
    holds its blocks); bench/layout_ab.py takes the per-channel rule off and on."""
    _needs_torchvision()
    from bench import layout_ab, page_faults

    page_faults.main(["mobilenet_v3_small", "--batch", "2"])
    line = capsys.readouterr().out.strip().splitlines()[0]
    assert line.startswith("mobilenet_v3_small batch 2:") and line.endswith("minor page faults per run")
    layout_ab.main(["squeezenet1_1", "--off", "per_channel", "--rounds", "1"])
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert "rule 'per_channel' off" in line and line.endswith("x")


def test_step_context_runs(capsys):
    """bench/step_context.py: every plan step timed in the network's run and alone on the inputs
    that run gave it (each step's output equal either way), the pair test of one step, and the
    probe of one step inside the run."""
    from bench import step_context

    g, x = step_context._graph("lenet5", 2)
    seq, alone, keep = step_context.measure(g, x, runs=2, reps=3)
    assert set(seq) == set(alone) == set(keep) == set(range(len(g.plan_steps)))
    assert all(t > 0 for t in list(seq.values()) + list(alone.values()))
    fn, args = keep[0]
    np.testing.assert_array_equal(fn(*args), fn(*args))  # the kept inputs are alive and reusable
    step_context.main(["lenet5", "--runs", "2", "--top", "3", "--step", "2"])
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("lenet5 batch 1, 2 threads, ISA ") and "sum of steps in sequence" in lines[0]
    assert len(lines) == 2 + 3 + 4 and lines[-1].startswith("  step 2 after a flush, inputs read: ")
    with pytest.raises(SystemExit):
        step_context.main(["lenet5", "--runs", "1", "--step", "0"])  # no step before it
    assert "--step: expected" in capsys.readouterr().err
    step_context.main(["lenet5", "--runs", "2", "--top", "1", "--probe", "1"])
    lines = capsys.readouterr().out.strip().splitlines()
    assert [ln.split(":")[0] for ln in lines[-3:]] == [
        "  step 1 in sequence",
        "  step 1 inputs read first",
        "  step 1 called on copies first",
    ]
    assert all(float(ln.split(":")[1].split()[0]) > 0 for ln in lines[-3:])
    with pytest.raises(SystemExit):
        step_context.main(["lenet5", "--runs", "1", "--probe", "99"])
    assert "--probe: expected" in capsys.readouterr().err


def test_pw_dw_check_runs(capsys, monkeypatch):
    """bench/pw_dw_check.py on two small pairs: the separate and fused kernels agree and are timed."""
    from bench import pw_dw_check

    monkeypatch.setattr(pw_dw_check, "PAIRS", [(16, 32, 10, 3, 2), (16, 16, 7, 5, 1)])
    pw_dw_check.main(["--batch", "2"])
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("ISA ") and len(lines) == 4
    assert lines[1].split()[2:5] == ["separate", "ring", "split"]
    assert lines[2].startswith("16->32@10 3x3/2") and lines[3].split()[-1] in ("yes", "no")


def test_step_cost_runs(capsys):
    """bench/step_cost.py: each bound call run and timed, microseconds per call per row."""
    from bench import step_cost

    step_cost.main(["--threads", "1", "--number", "10"])
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("ISA ") and len(lines) == 7
    assert all(float(ln.split()[-1]) > 0 for ln in lines[1:])
    assert "plan runner, per step" in lines[5] and "plan runner, per step" in lines[6]


def test_ort_nodes_runs(capsys):
    """bench/ort_nodes.py: pycnn's plan steps beside onnxruntime's profiled nodes; the convs match
    onnxruntime's NCHWc nodes (named after their outputs), so the step rows carry its times."""
    _needs_torchvision()
    from bench import ort_nodes

    ort_nodes.main(["mobilenet_v3_small", "--runs", "2", "--top", "200"])
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("mobilenet_v3_small batch 1, 2 threads, ISA ") and "whole run pycnn" in lines[0]
    assert lines[1].startswith("per op, pycnn/onnxruntime ms: ") and "conv2d" in lines[1]
    assert lines[2].startswith("per algorithm, pycnn/onnxruntime ms (steps): ") and "direct_oc" in lines[2]
    rows = [ln for ln in lines[4:] if "direct_oc" in ln]
    assert len(rows) > 20
    matched = [ln for ln in rows if float(ln.split()[3]) > 0 and ln.rstrip().endswith("Conv")]
    assert len(matched) > 0.9 * len(rows), "the convs should match onnxruntime's nodes"


@pytest.mark.parametrize("name,conv_rows", [("tv_resnet50", 52), ("tv_alexnet", 5), ("tv_googlenet", 57)])
def test_ort_nodes_runs_torchvision_lecture_networks(capsys, name, conv_rows):
    """torchvision's exports of the lecture's ResNet-50, AlexNet and GoogLeNet (for the
    node-by-node comparison only, in no suite) run through the same rows: every conv step not
    fused with a pool (at batch 1 ResNet-50's last conv is: its maps' means summed in the kernel)
    is a row of its own carrying onnxruntime's time."""
    _needs_torchvision()
    from bench import ort_nodes
    from bench import torchvision_zoo as zoo

    assert name not in zoo.NETWORKS and zoo.input_shape(name, 2) == (2, 3, 224, 224)
    ort_nodes.main([name, "--runs", "1", "--top", "200"])
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith(f"{name} batch 1, 2 threads, ISA ")
    rows = [ln for ln in lines[4:] if ln.rstrip().endswith("| Conv")]
    assert len(rows) == conv_rows and all(float(ln.split()[3]) > 0 for ln in rows)


def test_ort_nodes_names_a_bad_network(capsys):
    """A name that is not a torchvision network of the zoo (the lecture's resnet50 is pycnn.models')
    is an argparse error naming the argument, not a KeyError."""
    from bench import ort_nodes

    with pytest.raises(SystemExit):
        ort_nodes.main(["resnet50"])
    assert "argument name: invalid choice: 'resnet50'" in capsys.readouterr().err


def test_algo_ab_runs(capsys):
    """bench/algo_ab.py: one layer under each algorithm (results checked equal), warm and cold,
    blocked and NCHW outputs, each time over the first algorithm's."""
    from bench import algo_ab

    algo_ab.main(["1,16,10,32,3,1,1", "--algos", "direct_oc,winograd_f4", "--rounds", "1"])
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert line.startswith("N1 16->32 3x3/1 pad 1 @10, ISA") and "warm, blocked y" in line
    assert "direct_oc" in line and "winograd_f4" in line and line.count("GFLOP/s") == 2
    algo_ab.main(["1,16,10,32,3,1,1", "--algos", "direct_oc,im2col", "--rounds", "1"])  # im2col: NCHW
    assert "warm, NCHW y" in capsys.readouterr().out
    algo_ab.main(["1,32,10,32,3,1,1", "--algos", "direct_oc", "--blocked-x", "--rounds", "1"])
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert "direct_oc+x" in line and line.count("GFLOP/s") == 2 and "blocked y" in line
    # the conv returning its maps' means beside it writing them and then pooled (results checked)
    for shape, extra in (("2,32,9,48,1,1,0", ["--blocked-x"]), ("2,32,9,40,1,1,0", ["--nchw"])):
        algo_ab.main([shape, "--algos", "direct_oc", "--mean", "--rounds", "1"] + extra)
        line = capsys.readouterr().out.strip().splitlines()[-1]
        assert "direct_oc+mean" in line and "direct_oc+pool" in line
        assert line.count("GFLOP/s") == (4 if extra == ["--blocked-x"] else 3)
        assert ("blocked y" in line) == (extra == ["--blocked-x"])
    with pytest.raises(SystemExit):
        algo_ab.main(["1,32,10,32,1,1,0", "--mean", "--offset", "16"])
    capsys.readouterr()
    # x and y placed 16 bytes past a cache line (y through out=)
    algo_ab.main(["1,32,10,32,1,1,0", "--algos", "direct_oc", "--blocked-x", "--rounds", "1", "--offset", "16"])
    assert "x and y 16 bytes past a line: direct_oc" in capsys.readouterr().out
    x = np.arange(10, dtype=np.float32)
    for off in (0, 16, 48):
        y = algo_ab.at_offset(x, off)
        assert y.ctypes.data % 64 == off and (y == x).all()
    algo_ab.main(["2,8,9,12,3,2,1", "--algos", "direct_oc,im2col", "--cold", "--rounds", "1", "--nchw"])
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert line.startswith("N2 8->12 3x3/2 pad 1 @9") and "cold, NCHW y" in line and line.count("GFLOP/s") == 2
    algo_ab.main(["4,24,20x1,16,3x1,1,0", "--algos", "direct_oc,winograd_f4", "--rounds", "1"])  # a 1-D signal
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert line.startswith("N4 24->16 3x1/1 pad 0 @20x1") and line.count("GFLOP/s") == 2
    assert algo_ab.parse_shape("8,300,50x1,100,4x1,1,0") == (8, 300, 50, 1, 100, 4, 1, 1, (0, 0))


def test_cold_input_runs(capsys):
    """bench/cold_input.py: a first conv with its input flushed from the caches beside
    onnxruntime's profiled Conv node (the result checked against the reference first)."""
    from bench import cold_input

    cold_input.main(["1,3,20,16,3,2,1", "--flush", "1", "--runs", "4"])
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("ISA ") and "1 MiB written between calls" in lines[0]
    assert lines[1].startswith("N1 3->16 3x3/2 pad 1 @20: pycnn ") and "onnxruntime" in lines[1]
    nums = [float(v) for v in re.findall(r"\d+\.\d+", lines[1])]
    assert len(nums) == 6 and all(v > 0 for v in nums)


def test_fresh_input_runs(capsys):
    """bench/fresh_input.py: a blocked 1x1 conv timed after each writer of its input, and a shape
    whose channels are not whole blocks refused."""
    from bench import fresh_input

    r = fresh_input.measure(1, 32, 6, 16, reps=3, rounds=1)
    assert list(r) == [
        "none",
        "x read",
        "rows [0, H/2) rewritten",
        "rows [H/2, H) rewritten",
        "all of x rewritten",
        "x written by a conv",
    ]
    assert all(v > 0 for v in r.values())
    fresh_input.main(["1,32,6,16", "--reps", "3"])
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert line.startswith("N1 32->16 1x1 @6 (direct_oc, blocked xy, 2 threads, us after): none ")
    with pytest.raises(SystemExit):
        fresh_input.main(["1,24,6,16"])
    assert "C must be a multiple of 16" in capsys.readouterr().err


def test_winograd_error_tables(capsys):
    """bench/winograd_error.py: per kernel shape, the worst error of every tile over its layers,
    each within the registry's bound for that kernel (the README's accuracy table)."""
    from bench import winograd_error
    from pycnn import registry

    layers, algos, worst = winograd_error.measure(4, 1)  # Kim's 4-row filters as rows as channels
    assert len(layers) == 1 and algos == ["im2col", "winograd_f2", "winograd_f4"]
    for (kind, a), err in worst.items():
        assert 0 < err <= (registry.CONV[a].kernel_error_bound(4, 1) if a != "im2col" else 1e-5), (kind, a)
    winograd_error.main()
    out = capsys.readouterr().out
    for k in ("3x3", "5x5", "1x7", "7x1", "1x3", "3x1", "4x1", "5x1"):
        assert f" {k} stride-1 layers" in out


def test_networks_suite_builds_each_peer_once_per_network(monkeypatch):
    """The models and peers suites run every batch size on one Graph and one of each peer (the
    PyTorch module, the onnxruntime session exported from it): each engine agrees with pycnn
    and is timed at both batch sizes."""
    import argparse

    pytest.importorskip("torch")
    pytest.importorskip("onnxruntime")
    import pycnn.models.torch_reference as tr
    from bench import networks

    made = []
    real = tr.torch_net
    monkeypatch.setattr(tr, "torch_net", lambda *a, **k: (made.append(a[0]), real(*a, **k))[1])
    opts = argparse.Namespace(filter="lenet5", quick=False, batch=[1, 2], threads=2, rounds=1)
    rows = networks.run_networks(opts, suite="peers")
    # the models suite's per-step rows: a step fused into a later one has FLOPs but no time
    g = pycnn.models.resnet18()
    rows_p = networks.profile_rows(g.profile(np.zeros((1, 3, 64, 64), np.float32), runs=1, warmup=0))
    fused = [r for r in rows_p if r["algo"].startswith("fused into")]
    assert fused and all(r["ms"] == 0 and r["gflops"] is None for r in fused)
    assert all(r["gflops"] > 0 for r in rows_p if r["op"] == "conv2d" and r["ms"] > 0)
    assert made == ["lenet5"]
    assert [(r["model"], r["N"]) for r in rows] == [("lenet5", 1), ("lenet5", 2)]
    for r in rows:
        assert not any(k.endswith("_status") and v == "WRONG" for k, v in r.items()), r
        assert r["pycnn_ms"] > 0 and r["torch_ms"] > 0 and r["onnxruntime_ms"] > 0
