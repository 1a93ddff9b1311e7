// pybind11 glue for the CPU kernels: pycnn._C. Thin on purpose: pycnn/ops.py validates user
// input; the checks here only guard memory safety (shapes consistent with the buffers) so that
// a wrong call into the private module raises instead of crashing. The GIL is released around
// every kernel.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "bindings_cpu.h"

namespace py = pybind11;
using namespace pycnn;

PYBIND11_MODULE(_C, m) {
  m.doc() = "pycnn CPU kernels (OpenMP; generic, AVX2+FMA and AVX-512 paths chosen at run time)";
  bind_runtime(m);
  bind_gemm(m);
  bind_conv(m);
  bind_pool(m);
  bind_eltwise(m);
  bind_graph_arena(m);
  bind_plan_runner(m);
}
