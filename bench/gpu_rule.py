"""The GPU's conv2d rule (pycnn/cuda/select.py) against measured timings: for every layer and
batch of a gpu suite run (each algorithm timed with CUDA events), the rule's pick, the fastest
algorithm, and fastest / pick (1.0: the rule picked the fastest). No GPU needed: it reads a
results JSON (the recorded H200 run by default).

    python -m bench.gpu_rule [RESULTS_JSON]
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from pycnn.cuda import select
from pycnn.models import CONV_LAYERS

MEASURED = Path(__file__).resolve().parent / "measured" / "h200_gpu_suite.json"


def evaluate(path: Path = MEASURED) -> dict:
    """Per row: layer, N, the rule's pick, the fastest, fastest / pick; the recorded run's own auto."""
    res = json.loads(Path(path).read_text())
    layers = {la.id: la for la in CONV_LAYERS}
    rows = []
    for r in res["rows"]:
        if r.get("kind") != "conv":
            continue
        la = layers[r["layer"]]
        s = la.shape(r["N"])
        algos = r["algos"]
        pick = select.choose(s)
        best = min(algos, key=algos.get)
        rows.append(
            {
                "layer": r["layer"],
                "N": r["N"],
                "pick": pick,
                "best": best,
                "ratio": algos[best] / algos[pick],
                "recorded_auto": r["auto"],
                "recorded_ratio": algos[best] / algos[r["auto"]],
            }
        )
    ratios = [r["ratio"] for r in rows]
    old = [r["recorded_ratio"] for r in rows]
    return {
        "rows": rows,
        "geomean": math.exp(sum(map(math.log, ratios)) / len(ratios)),
        "worst": min(ratios),
        "recorded_geomean": math.exp(sum(map(math.log, old)) / len(old)),
        "recorded_worst": min(old),
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("results", nargs="?", default=str(MEASURED), help="a gpu suite results.json")
    opts = ap.parse_args(argv)
    e = evaluate(Path(opts.results))
    print(f"{'layer':28s} {'N':>3s} {'rule':>14s} {'fastest':>14s} {'fastest/rule':>12s} {'run auto':>14s}")
    for r in e["rows"]:
        pick, best, auto = r["pick"], r["best"], r["recorded_auto"]
        print(f"{r['layer']:28s} {r['N']:3d} {pick:>14s} {best:>14s} {r['ratio']:12.2f} {auto:>14s}")
    print(f"fastest / rule: geomean {e['geomean']:.3f}, worst {e['worst']:.2f} over {len(e['rows'])} layer-batches; "
          f"the run's own auto: geomean {e['recorded_geomean']:.3f}, worst {e['recorded_worst']:.2f}")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
