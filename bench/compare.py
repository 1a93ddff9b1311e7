"""Change against an earlier run: `python -m bench SUITE --compare OLD.json` (or
`python -m bench.compare OLD.json NEW.json`). Rows are matched by suite and key; for each pycnn
time the ratio old / new is shown (> 1: faster now). Both runs should come from the same
machine and thread count (the header says if they do not)."""

from __future__ import annotations

import json
import sys

from .peers import PEER_NAMES
from .timing import geomean


def _key(r):
    if r["suite"] == "sgemm":
        return ("sgemm", r["name"])
    if r["suite"] == "threads":
        return ("threads", r["layer"])
    return (r["suite"], r.get("layer"), r.get("N"))


def _times(r):
    """pycnn's times (seconds or ms, same unit in both runs) in a row, by name."""
    if r["suite"] == "sgemm":
        return {"pycnn": r.get("pycnn_ms")}
    if r["suite"] == "pool":
        return {"pycnn": r.get("pycnn_ms")}
    if r["suite"] == "threads":
        return {"2py_threads": r.get("2py_threads_1omp_s"), "serial": r.get("serial_1omp_s")}
    return {
        k[:-3]: v for k, v in r.items() if k.endswith("_ms") and v and k[:-3] not in PEER_NAMES + ("best", "wino_best")
    }


def compare(old, new) -> str:
    mo, mn = old["meta"], new["meta"]
    lines = [
        f"compare: old {mo.get('started')} ({mo.get('threads')} threads, {mo.get('pycnn_isa')}) -> "
        f"new {mn.get('started')} ({mn.get('threads')} threads, {mn.get('pycnn_isa')})"
    ]
    if (mo.get("threads"), mo.get("pycnn_isa"), mo.get("processor")) != (
        mn.get("threads"),
        mn.get("pycnn_isa"),
        mn.get("processor"),
    ):
        lines.append("warning: different machine, ISA or thread count: ratios are not like for like")
    old_rows = {_key(r): r for r in old["rows"]}
    ratios = []
    lines.append(f"{'row':<44}{'measure':<14}{'old':>10}{'new':>10}{'old/new':>9}")
    for r in new["rows"]:
        o = old_rows.get(_key(r))
        if o is None:
            continue
        to, tn = _times(o), _times(r)
        for name, v in tn.items():
            if v and to.get(name):
                ratio = to[name] / v
                ratios.append(ratio)
                label = " ".join(str(k) for k in _key(r)[1:] if k is not None)
                lines.append(f"{label:<44}{name:<14}{to[name]:10.3f}{v:10.3f}{ratio:8.2f}x")
    lines.append(f"geomean old/new over {len(ratios)} matched measurements: {geomean(ratios):.3f}x (> 1: faster now)")
    return "\n".join(lines)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2:
        sys.exit("usage: python -m bench.compare OLD.json NEW.json")
    with open(argv[0]) as f, open(argv[1]) as g:
        print(compare(json.load(f), json.load(g)))


if __name__ == "__main__":
    main()
