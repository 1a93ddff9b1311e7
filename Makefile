# The README's two commands: `make test` and `make bench`. Each creates .venv, installs pycnn
# with what it needs (build tools; test, bench and lint extras for `make test` and the other
# targets, the bench extra alone for `make bench`), builds the native modules and runs.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
TOOLS  := $(VENV)/.pycnn-build-tools
STAMP  := $(VENV)/.pycnn-installed
BENCH_STAMP := $(VENV)/.pycnn-installed-bench
BENCH_OUT ?= bench/results/latest

.PHONY: test bench build lint format fuzz sanitize package-check cuda-report clean
SAN    := build/sanitize
SAN_ENV = PYTHONPATH=.:$(abspath tests) \
	LD_PRELOAD="$$(gcc -print-file-name=libasan.so) $$(gcc -print-file-name=libubsan.so)" \
	ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1

$(PY):
	$(PYTHON) -m venv $(VENV)

# Build tools (and NumPy, whose headers _C includes) first so `build` can run without isolation
# (and so rebuilds are incremental in build/); then the package, editable, with its [test],
# [bench] and [lint] extras, but without its native modules (PYCNN_BUILD_EXT=0: an editable
# install would compile them in a temporary directory, one whole build thrown away); `build`
# compiles them once, in place.
# `make bench` installs the [bench] extra only: the test and lint tools (Ray, scikit-learn,
# hypothesis, ruff, ...) took a share of its 10-minute budget.
$(TOOLS): $(PY)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "setuptools>=64" wheel "pybind11>=2.12" "cmake>=3.18" ninja "numpy>=1.23"
	touch $(TOOLS)

$(STAMP): $(TOOLS) pyproject.toml setup.py
	PYCNN_BUILD_EXT=0 $(PY) -m pip install -q --no-build-isolation -e ".[test,bench,lint]"
	touch $(STAMP) $(BENCH_STAMP)

$(BENCH_STAMP): $(TOOLS) pyproject.toml setup.py
	PYCNN_BUILD_EXT=0 $(PY) -m pip install -q --no-build-isolation -e ".[bench]"
	touch $(BENCH_STAMP)

# Re-runs CMake's incremental build so edited kernels are picked up (needs only the build tools).
build: $(TOOLS)
	$(PY) setup.py -q build_ext --inplace

test: $(STAMP) build
	$(PY) -m pytest tests

bench: $(BENCH_STAMP) build
	$(PY) -m bench default --out $(BENCH_OUT)

# Style: ruff (checks and formatting, pyproject.toml) on the Python, clang-format (.clang-format)
# on the C++ and CUDA sources. `make format` applies both.
LINT_PY  := pycnn bench tests examples .ci setup.py
LINT_CXX  = $$(find kernels -name '*.h' -o -name '*.cpp' -o -name '*.inl' -o -name '*.cu' -o -name '*.cuh')
lint: $(STAMP)
	$(VENV)/bin/ruff check $(LINT_PY)
	$(VENV)/bin/ruff format --check $(LINT_PY)
	$(VENV)/bin/clang-format --dry-run --Werror $(LINT_CXX)

format: $(STAMP)
	$(VENV)/bin/ruff check --fix $(LINT_PY)
	$(VENV)/bin/ruff format $(LINT_PY)
	$(VENV)/bin/clang-format -i $(LINT_CXX)

# The sdist's file list checked against git, and `pip install .` into a fresh venv, smoke-tested
# from outside the clone (.ci/check_package.sh; one build of the kernels).
package-check: $(STAMP)
	.ci/check_package.sh

# Long shape fuzzing (tests/test_hardening.py draws 40 problems per run in `make test`).
fuzz: $(STAMP) build
	PYCNN_FUZZ_EXAMPLES=$${PYCNN_FUZZ_EXAMPLES:-3000} $(PY) -m pytest tests/test_hardening.py -k fuzz \
		--hypothesis-show-statistics

# AddressSanitizer + UndefinedBehaviorSanitizer build of pycnn._C and pycnn._C_cuda_emu (the CUDA
# kernels on the CPU emulator) in $(SAN), then the kernel
# and Graph tests against it (the ONNX, CLI and training tests, which exercise the peers and
# subprocesses rather than the kernels, are left out). The Python package is copied next to the
# sanitized module; the ASan runtime is preloaded because python itself is not instrumented; leaks are not checked).
sanitize: $(STAMP)
	rm -rf $(SAN) && mkdir -p $(SAN)/pkg/pycnn
	cp -r pycnn/*.py pycnn/*/ $(SAN)/pkg/pycnn/
	cmake -S . -B $(SAN)/cmake -G Ninja -DPYCNN_SANITIZE=ON -DPYCNN_CUDA=OFF \
		-DCMAKE_BUILD_TYPE=RelWithDebInfo -DPython3_EXECUTABLE=$(abspath $(PY)) \
		-Dpybind11_DIR=$$($(PY) -m pybind11 --cmakedir) \
		-DCMAKE_LIBRARY_OUTPUT_DIRECTORY=$(abspath $(SAN)/pkg/pycnn) > $(SAN)/cmake.log
	cmake --build $(SAN)/cmake
	cd $(SAN)/pkg && $(SAN_ENV) $(abspath $(PY)) -c \
		"import pycnn, pycnn._C_cuda_emu as e, sys; fs = [pycnn._C.__file__, e.__file__]; print('sanitized modules:', fs); sys.exit(any('$(SAN)' not in f for f in fs))"
	cd $(SAN)/pkg && $(SAN_ENV) PYCNN_FUZZ_EXAMPLES=20 $(abspath $(PY)) -m pytest $(abspath tests) -q \
		-p no:cacheprovider -k "not torch and not hostile and not bench_tools and not onnx and not digits and not cli and not batch_inference and not pool and not zoo_networks and not resource_report and not readme"
	@echo "sanitize: clean"

# Registers, shared memory, stack and spills of every CUDA kernel for sm_90 (nvcc -Xptxas -v), and
# the occupancy each reaches on an H200, into docs/cuda_resources.md; fails if a kernel spills.
cuda-report: $(STAMP)
	$(PY) -m bench.cuda_report --out docs/cuda_resources.md

clean:
	rm -rf build pycnn/*.so *.egg-info
