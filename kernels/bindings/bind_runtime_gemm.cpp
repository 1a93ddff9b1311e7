// Bindings: threads, ISA selection, and SGEMM (exposed for the bench and the tests).
#include "bindings_cpu.h"
#include "pycnn/buffer.h"
#include "pycnn/isa.h"
#include "pycnn/parallel.h"
#include "sgemm.h"

namespace pycnn {

void bind_runtime(py::module_& m) {
  m.def("get_num_threads", &get_num_threads);
  m.def("set_num_threads", &set_num_threads, py::arg("n"));
  m.def("get_workspace_limit", [] { return workspace_limit(); });
  m.def("set_workspace_limit", [](size_t bytes) { set_workspace_limit(bytes); }, py::arg("nbytes"));
  // WorkspaceLimitError derives from std::bad_alloc: pybind11 raises MemoryError with its text.
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const WorkspaceLimitError& e) {
      PyErr_SetString(PyExc_MemoryError, e.what());
    }
  });
  m.def("cpu_isa", [] { return std::string(isa_name(cpu_best_isa())); },
        "The best ISA this CPU supports: 'avx512', 'avx2' or 'generic'.");
  m.def("get_isa", [] { return std::string(isa_name(active_isa())); });
  m.def("set_isa", [](const std::string& name) { set_isa(isa_from_name(name)); }, py::arg("isa"));
}

void bind_gemm(py::module_& m) {
  // c = a @ b (+ bias per row / per column) (ReLU): a (M, K), b (K, N), or b_transposed (N, K).
  m.def(
      "sgemm",
      [](farray a, farray b, farray c, py::object bias_row, py::object bias_col, bool relu, bool b_transposed) {
        require_ndim(a, 2, "a");
        require_ndim(b, 2, "b");
        require_ndim(c, 2, "c");
        const int64_t M = a.shape(0), K = a.shape(1);
        const int64_t N = b_transposed ? b.shape(0) : b.shape(1);
        require((b_transposed ? b.shape(1) : b.shape(0)) == K, "b: inner dimension does not match a");
        require(c.shape(0) == M && c.shape(1) == N, "c: expected shape (M, N)");
        const float* br = nullptr;
        const float* bc = nullptr;
        farray brow, bcol;
        if (!bias_row.is_none()) {
          brow = bias_row.cast<farray>();
          require(brow.ndim() == 1 && brow.shape(0) == M, "bias_row: expected M entries");
          br = brow.data();
        }
        if (!bias_col.is_none()) {
          bcol = bias_col.cast<farray>();
          require(bcol.ndim() == 1 && bcol.shape(0) == N, "bias_col: expected N entries");
          bc = bcol.data();
        }
        float* cp = wptr(c, "c");
        const float* ap = a.data();
        const float* bp = b.data();
        py::gil_scoped_release nogil;
        if (b_transposed)
          sgemm(M, N, K, ap, K, 1, bp, 1, K, cp, N, br, bc, relu);
        else
          sgemm(M, N, K, ap, K, 1, bp, N, 1, cp, N, br, bc, relu);
      },
      py::arg("a"), py::arg("b"), py::arg("c"), py::arg("bias_row") = py::none(),
      py::arg("bias_col") = py::none(), py::arg("relu") = false, py::arg("b_transposed") = false);
}

}  // namespace pycnn
