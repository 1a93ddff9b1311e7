# The README's two commands: `make test` and `make bench`. Each creates .venv, installs pycnn
# with what it needs (build tools, test and bench extras), builds the native modules and runs.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.pycnn-installed
BENCH_OUT ?= bench/results/latest

.PHONY: test bench build fuzz sanitize clean

$(PY):
	$(PYTHON) -m venv $(VENV)

# Build tools first so the editable install can build without isolation (and so rebuilds are
# incremental in build/); then the package with its [test] and [bench] extras.
$(STAMP): $(PY) pyproject.toml setup.py
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "setuptools>=64" wheel "pybind11>=2.12" "cmake>=3.18" ninja
	$(PY) -m pip install -q --no-build-isolation -e ".[test,bench]"
	touch $(STAMP)

# Re-runs CMake's incremental build so edited kernels are picked up.
build: $(STAMP)
	$(PY) setup.py -q build_ext --inplace

test: build
	$(PY) -m pytest tests

bench: build
	$(PY) -m bench default --out $(BENCH_OUT)

clean:
	rm -rf build pycnn/*.so *.egg-info
