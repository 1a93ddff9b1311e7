#!/usr/bin/env bash
# pycnn as a user installs it, checked from outside the clone (`make package-check`; .ci/run):
#   1. python -m build: the sdist, then the wheel built from that unpacked sdist (what
#      `pip install pycnn-<v>.tar.gz` does), so the sdist builds on its own;
#   2. that wheel, pip-installed with [onnx] into a fresh venv;
#   3. `pip install .` from this checkout into a second venv: a build after earlier ones here (a
#      CMake cache from another build environment) must work.
# Each venv runs .ci/smoke_installed.py from a scratch directory. Needs network access to PyPI.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PY=${PYTHON:-python3}
BUILD_PY=${BUILD_PY:-$ROOT/.venv/bin/python}   # an interpreter with `build` (the [test] extra has it)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
quiet() { grep -v "^WARNING: Location" || true; }

"$BUILD_PY" -m build --outdir "$WORK/dist" "$ROOT" > "$WORK/build.log" 2>&1 || { tail -40 "$WORK/build.log"; exit 1; }
WHEEL=$(ls "$WORK"/dist/*.whl)
SDIST=$(ls "$WORK"/dist/*.tar.gz)
echo "built $(basename "$SDIST") and $(basename "$WHEEL")"
# (listed to a file first: with pipefail, `unzip | grep -q` fails when grep exits at its first
# match and unzip dies writing the rest of the listing)
unzip -l "$WHEEL" > "$WORK/wheel_files.txt"
grep -q "pycnn/models/__init__.py" "$WORK/wheel_files.txt" || { echo "the wheel lacks pycnn/models"; exit 1; }

smoke() {  # venv, what to pip install
  "$PY" -m venv "$WORK/$1"
  "$WORK/$1/bin/python" -m pip install -q "$2" 2>&1 | quiet
  (cd "$WORK" && PYCNN_REPO="$ROOT" "$WORK/$1/bin/python" "$ROOT/.ci/smoke_installed.py")
}
smoke wheel "$WHEEL[onnx]"
smoke checkout "$ROOT[onnx]"
echo "package check: ok"
