#!/usr/bin/env bash
# The one script for a lent GPU machine (Python 3.12, CUDA 13, CuPy, PyTorch, pybind11, CMake,
# ninja; no package registry): build pycnn there, run the GPU tests, compute-sanitizer's memcheck
# on a small subset, then the gpu bench suite (bench/gpu_suite.py: the kernels of bench/gpu_kernels.py
# and the networks), writing every log and the JSON under OUT_DIR. Each step has its own time
# limit (200 + 70 + 60 + 150 s): the whole stays under 8 minutes.
#
#   bench/gpu_check.sh OUT_DIR
set -u
OUT=${1:?usage: bench/gpu_check.sh OUT_DIR}
mkdir -p "$OUT"
PY=${PYTHON:-python3}
start=$(date +%s)
step() { echo "== $1 (at $(( $(date +%s) - start )) s)" | tee -a "$OUT/steps.log"; }

step "machine"
{ nvidia-smi --query-gpu=name,memory.total,clocks.sm,clocks.mem,driver_version --format=csv; nvcc --version | tail -1;
  $PY -c "import torch, cupy; print('torch', torch.__version__, 'cupy', cupy.__version__)"; } > "$OUT/machine.log" 2>&1
cat "$OUT/machine.log"

step "build (sm_80 + sm_90 CUDA module; the emulator module is left out here)"
export CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-16}
export CMAKE_ARGS="${CMAKE_ARGS:-} -DPYCNN_CUDA_EMU=OFF"
if ! timeout 200 $PY -m pip install --no-build-isolation --no-deps -e . > "$OUT/build.log" 2>&1; then
  tail -40 "$OUT/build.log"; step "build failed"; exit 1
fi
$PY -c "import pycnn, pycnn._C_cuda as c; print('pycnn', pycnn.__version__, 'devices', c.device_count())" 2>&1 | tee -a "$OUT/build.log"

step "GPU tests"
timeout 70 $PY -m pytest -q -p no:cacheprovider tests/test_cuda.py > "$OUT/tests.log" 2>&1
echo "tests rc=$?" >> "$OUT/tests.log"; tail -15 "$OUT/tests.log"

step "compute-sanitizer memcheck (self-tests, pools and layers)"
timeout 60 compute-sanitizer --tool memcheck --error-exitcode 9 $PY -m pytest -q -p no:cacheprovider \
  tests/test_cuda.py -k "selftests or pools_and_layers or relu_add" > "$OUT/memcheck.log" 2>&1
echo "memcheck rc=$?" >> "$OUT/memcheck.log"; tail -8 "$OUT/memcheck.log"

step "gpu bench suite (kernels vs cuBLAS / cuDNN / a device copy, networks vs PyTorch eager and torch.compile)"
timeout 150 $PY -m bench gpu --out "$OUT/bench" > "$OUT/bench.log" 2>&1
echo "bench rc=$?" >> "$OUT/bench.log"; tail -60 "$OUT/bench.log"
step "done"
