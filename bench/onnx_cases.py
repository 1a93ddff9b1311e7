"""ONNX's own operator test cases (onnx.backend.test.case.node) run through pycnn.load_onnx, for
every case whose nodes are all operators pycnn imports. Each case passes (outputs within the
case's tolerance), or is refused with a ValueError (at load, naming the node, operator and
attribute, or at run, naming the input), or is WRONG (a result off the expected one) or a CRASH
(any other exception): the tests (tests/test_onnx_cases.py) allow only the first two.

    python -m bench.onnx_cases            # a Markdown table: per operator, passed / refused, and why
"""

from __future__ import annotations

import collections
import sys
import warnings

import numpy as np


def imported_ops() -> set:
    from pycnn.io.onnx_import import supported_ops

    return set(supported_ops())


def cases() -> list:
    """The ONNX test cases whose nodes are all operators pycnn imports (onnx must be installed)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from onnx.backend.test.case.node import collect_testcases

        every = collect_testcases()
    ops = imported_ops()
    return [c for c in every if c.model.graph.node and all(n.op_type in ops for n in c.model.graph.node)]


def run_case(c) -> tuple:
    """(operator, status, message): status 'pass', 'refused', 'WRONG' or 'CRASH'."""
    import pycnn

    op = c.model.graph.node[-1].op_type
    try:
        g = pycnn.load_onnx(c.model)
    except ValueError as e:
        return op, "refused", str(e)
    except Exception as e:  # noqa: BLE001 - anything but ValueError is a defect the tests report
        return op, "CRASH", f"load: {type(e).__name__}: {e}"
    inits = {t.name for t in c.model.graph.initializer}
    names = [i.name for i in c.model.graph.input if i.name not in inits]
    ins, outs = c.data_sets[0]
    feed = dict(zip(names, ins))
    try:
        with np.errstate(all="ignore"):
            y = g(feed if len(feed) != 1 else next(iter(feed.values())))
    except ValueError as e:
        return op, "refused", str(e)
    except Exception as e:  # noqa: BLE001
        return op, "CRASH", f"run: {type(e).__name__}: {e}"
    ys = y if isinstance(y, dict) else {g.outputs[0]: y}
    for o, want in zip(c.model.graph.output, outs):
        got = ys.get(o.name)
        if got is None or np.shape(got) != np.shape(want):
            return op, "WRONG", f"output {o.name!r}: shape {np.shape(got)}, expected {np.shape(want)}"
        rtol, atol = max(c.rtol, 1e-4), max(c.atol, 1e-5)
        if not np.allclose(
            np.asarray(got, np.float64), np.asarray(want, np.float64), rtol=rtol, atol=atol, equal_nan=True
        ):
            return op, "WRONG", f"output {o.name!r} differs beyond rtol {rtol}, atol {atol}"
    return op, "pass", ""


def table(results: dict) -> str:
    """Markdown: per operator the passed and refused case counts and the reasons for refusal."""
    by_op = collections.defaultdict(list)
    for name, (op, status, msg) in results.items():
        by_op[op].append((name, status, msg))
    lines = ["| operator | passed | refused | why refused (cases) |", "| --- | ---: | ---: | --- |"]
    for op in sorted(by_op):
        rs = by_op[op]
        why = collections.Counter(_reason(m) for _, s, m in rs if s == "refused")
        lines.append(
            f"| {op} | {sum(s == 'pass' for _, s, _ in rs)} | {sum(s == 'refused' for _, s, _ in rs)} | "
            + "; ".join(f"{w} ({n})" for w, n in why.most_common())
            + " |"
        )
    return "\n".join(lines)


# A key of a refusal message -> the reason it stands for, tried in order.
_REASONS = {
    "must be a constant": "weights, shapes or axes given as graph inputs",
    "element type": "non-float input type",
    "extra outputs": "training-mode / argmax outputs",
    "only 2-D": "1-D or 3-D",
    "dilations": "dilations",
    "auto_pad": "auto_pad SAME with stride > 1 or SAME_LOWER",
    "asymmetric padding": "asymmetric pooling pads",
    "more than half the kernel": "padding over half the window",
    "transA": "transA",
    "allowzero": "allowzero",
    "all axes": "no axes",
    "integer tensor": "integer input to a float operator",
    "embedding lookup": "Gather other than an embedding lookup",
    "not computed by any supported node": "a Constant as the only node",
    "dimensions like": "a scalar graph input",
}


def _reason(msg: str) -> str:
    """A refusal message without the node name, so equal reasons group."""
    return next((why for key, why in _REASONS.items() if key in msg), msg[:60])


def main(argv=None) -> int:
    results = {c.name: run_case(c) for c in cases()}
    print(table(results))
    bad = {n: r for n, r in results.items() if r[1] in ("WRONG", "CRASH")}
    for n, (op, status, msg) in bad.items():
        print(f"{status}: {n} ({op}): {msg}", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
