#!/usr/bin/env bash
# The one script for a lent GPU machine (Python 3.12, CUDA 13, CuPy, PyTorch, pybind11, CMake,
# ninja; no package registry): build pycnn there (sm_90 only, no emulator module), run the GPU
# tests (tests/test_cuda.py, torchvision's 14 ONNX networks included, and the GPU half of
# tests/test_cuda_kernels.py), compute-sanitizer's
# memcheck on a subset, then the gpu bench suite (bench/gpu_suite.py: the kernels against cuBLAS
# and cuDNN, the networks against PyTorch eager). Each step has its own time limit
# (200 + 200 + 50 + 130 s): the whole stays under 9.5 minutes. Under OUT_DIR, at most 7 files
# (the device tool brings 8 back): steps.log, build.log, tests.log, memcheck.log, bench.log,
# bench.json and all.tgz (every log and the bench folder).
#
#   bench/gpu_check.sh OUT_DIR          (GPU_CHECK_BENCH=0: without the bench step)
set -u
OUT=${1:?usage: bench/gpu_check.sh OUT_DIR}
mkdir -p "$OUT"
PY=${PYTHON:-python3}
start=$(date +%s)
step() { echo "== $1 (at $(( $(date +%s) - start )) s)" | tee -a "$OUT/steps.log"; }
pack() { tar czf "$OUT/all.tgz" -C "$OUT" --exclude all.tgz . 2>/dev/null; }

step "machine"
{ nvidia-smi --query-gpu=name,memory.total,clocks.sm,clocks.max.sm,clocks.mem,driver_version --format=csv
  nvcc --version | tail -2; gcc --version | head -1; nproc
  $PY -c "import sys, torch, cupy, numpy; print(sys.version.split()[0], 'torch', torch.__version__, 'cupy', cupy.__version__, 'numpy', numpy.__version__)"
} 2>&1 | tee -a "$OUT/steps.log"

step "build (pycnn._C and the sm_90 CUDA module; the emulator module is left out here)"
export CUDACXX=${CUDACXX:-$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)}
export CMAKE_ARGS="${CMAKE_ARGS:-} -DPYCNN_CUDA_EMU=OFF -DPYCNN_CUDA_ARCHS=90"
if ! timeout 200 $PY setup.py -q build_ext --inplace > "$OUT/build.log" 2>&1; then
  tail -40 "$OUT/build.log"; step "build failed"; pack; exit 1
fi
if ! $PY -c "import pycnn, pycnn._C_cuda as c; print('pycnn', pycnn.__version__, 'isa', pycnn._C.cpu_isa(), 'devices', c.device_count(), 'why_not', repr(pycnn.cuda.why_not('cuda')))" 2>&1 | tee -a "$OUT/build.log" "$OUT/steps.log"; then
  step "pycnn._C_cuda does not import"; pack; exit 1
fi

step "GPU tests"
timeout 200 $PY -m pytest -v -p no:cacheprovider -rfEsP tests/test_cuda.py tests/test_cuda_kernels.py > "$OUT/tests.log" 2>&1
echo "tests rc=$?" >> "$OUT/tests.log"
grep -E "FAILED|ERROR|passed|failed|rc=|relative error" "$OUT/tests.log" | tail -40

step "compute-sanitizer memcheck (self-tests, pools and layers, the kernels' GPU cases)"
timeout 50 compute-sanitizer --tool memcheck --error-exitcode 9 $PY -m pytest -q -p no:cacheprovider \
  tests/test_cuda.py tests/test_cuda_kernels.py -k "selftests or pools_and_layers or relu_add or (gpu and conv_algorithms)" \
  > "$OUT/memcheck.log" 2>&1
echo "memcheck rc=$?" >> "$OUT/memcheck.log"; grep -E "ERROR SUMMARY|passed|failed|rc=" "$OUT/memcheck.log" | tail -6

if [ "${GPU_CHECK_BENCH:-1}" = 1 ]; then  # GPU_CHECK_BENCH=0: build, tests and memcheck only
  step "gpu bench suite (kernels vs cuBLAS / cuDNN, networks vs PyTorch eager; torch.compile left out for time)"
  PYCNN_BENCH_COMPILE= PYTHONUNBUFFERED=1 timeout 130 $PY -m bench gpu --out "$OUT/bench" > "$OUT/bench.log" 2>&1
  echo "bench rc=$?" >> "$OUT/bench.log"
  cp "$OUT/bench/results.json" "$OUT/bench.json" 2>/dev/null
fi
pack
rm -rf "$OUT/bench"
[ -f "$OUT/bench.log" ] && grep -v "^gpu row:" "$OUT/bench.log" | tail -60
step "done"
