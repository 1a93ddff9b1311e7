"""ONNX's operator test cases for every operator pycnn imports (bench/onnx_cases.py): each passes or
is refused with a ValueError; none gives a wrong result or another exception."""

import pytest

pytest.importorskip("onnx", reason="onnx is not installed (pip install '.[onnx]')")

from bench import onnx_cases  # noqa: E402

CASES = onnx_cases.cases()


def test_there_are_cases_for_the_imported_operators():
    ops = {c.model.graph.node[-1].op_type for c in CASES}
    assert len(CASES) >= 100 and {"Conv", "MaxPool", "Gemm", "Softmax", "Concat"} <= ops


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_case_passes_or_is_refused_clearly(case):
    op, status, msg = onnx_cases.run_case(case)
    assert status in ("pass", "refused"), f"{status}: {msg}"
    if status == "refused":  # the message says which node, input or output it is about
        assert any(w in msg for w in ("node", "input", "output", "x[", "x:")), msg
