#!/usr/bin/env bash
# pycnn as a user installs it, checked from outside the clone (`make package-check`; .ci/run):
#   1. python -m build --sdist, and its file list against git: every tracked file the build and
#      the package read (the CMake project, kernels/, pycnn/, setup.py, pyproject.toml) is in it,
#      so the sdist builds what a checkout builds (`pip install pycnn-<v>.tar.gz`);
#   2. `pip install .[onnx]` from this checkout into a fresh venv: pip builds the wheel in an
#      isolated environment (pyproject.toml's build requirements) and installs it, after earlier
#      builds here (build/ holds a CMake cache from another environment, which must not break it);
#   3. .ci/smoke_installed.py from a scratch directory with that venv's interpreter: the installed
#      wheel imports and works.
# One build of the kernels: building the sdist's unpacked copy as well compiled the same files
# again (step 1 checks they are the same). Needs network access to PyPI (or its mirror).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PY=${PYTHON:-python3}
BUILD_PY=${BUILD_PY:-$ROOT/.venv/bin/python}   # an interpreter with `build` (the [test] extra has it)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
quiet() { grep -v "^WARNING: Location" || true; }

"$BUILD_PY" -m build --sdist --outdir "$WORK/dist" "$ROOT" > "$WORK/build.log" 2>&1 || { tail -40 "$WORK/build.log"; exit 1; }
SDIST=$(ls "$WORK"/dist/*.tar.gz)
echo "built $(basename "$SDIST")"
# (listed to files first: with pipefail, `tar | grep -q` fails when grep exits at its first match)
tar tzf "$SDIST" | sed 's|^[^/]*/||' | grep -v '/$' | sort > "$WORK/sdist_files.txt"
git -C "$ROOT" ls-files CMakeLists.txt setup.py pyproject.toml README.md MANIFEST.in kernels pycnn | sort \
  > "$WORK/needed_files.txt"
comm -13 "$WORK/sdist_files.txt" "$WORK/needed_files.txt" > "$WORK/missing.txt"
if [ -s "$WORK/missing.txt" ]; then
  echo "the sdist lacks files the build or the package reads (MANIFEST.in):"
  cat "$WORK/missing.txt"
  exit 1
fi
echo "sdist holds all $(wc -l < "$WORK/needed_files.txt") tracked files of the build and the package"

"$PY" -m venv "$WORK/venv"
"$WORK/venv/bin/python" -m pip install -q "$ROOT[onnx]" 2>&1 | quiet
(cd "$WORK" && PYCNN_REPO="$ROOT" "$WORK/venv/bin/python" "$ROOT/.ci/smoke_installed.py")
echo "package check: ok"
