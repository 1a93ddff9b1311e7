// Bindings: threads, ISA selection, and SGEMM (exposed for the bench and the tests).
#include <atomic>
#include <chrono>
#include <vector>

#include "bindings_cpu.h"
#include "pycnn/buffer.h"
#include "cpu_kernels.h"
#include "ops_cpu.h"
#include "pycnn/isa.h"
#include "pycnn/parallel.h"
#include "sgemm.h"

namespace pycnn {

namespace {

// The kernel table of the ISA named (the tests' direct kernel calls, fma_peak's isa), if this CPU runs it.
const CpuKernels& runnable_kernels(const std::string& isa) {
  const Isa want = isa_from_name(isa);
  PYCNN_REQUIRE(static_cast<int>(want) <= static_cast<int>(cpu_best_isa()), "isa: this CPU cannot run " + isa);
  return cpu_kernels(want);
}

}  // namespace

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
  m.def(
      "cpu_isa", [] { return std::string(isa_name(cpu_best_isa())); },
      "The best ISA this CPU supports: 'avx512', 'avx2' or 'generic'.");
  // StealingRanges (parallel.h) on a team of `threads`, thread `late` starting only once the
  // others are done (a thread whose core was busy elsewhere): per thread, the units it ran, in
  // order. For the tests: every unit once, owners front to back, the late thread's range taken.
  m.def(
      "stealing_ranges_trace",
      [](std::vector<int64_t> begin, int threads, int late) {
        PYCNN_REQUIRE(threads >= 1 && threads <= 64, "threads: expected 1..64");
        PYCNN_REQUIRE(begin.size() >= 2, "begin: expected at least two boundaries");
        for (size_t i = 1; i < begin.size(); ++i)
          PYCNN_REQUIRE(begin[i - 1] <= begin[i], "begin: expected non-decreasing");
        StealingRanges work(begin);
        std::vector<std::vector<int64_t>> ran((size_t)threads);
        std::atomic<int> done{0};
        py::gil_scoped_release nogil;
#pragma omp parallel num_threads(threads)
        {
          const int t = omp_get_thread_num(), nth = omp_get_num_threads();
          if (t == late)
            while (done.load() < nth - 1) {
            }
          for (int64_t u = 0; work.next(t, u);) ran[(size_t)t].push_back(u);
          if (t != late) done.fetch_add(1);
        }
        return ran;
      },
      py::arg("begin"), py::arg("threads"), py::arg("late") = -1);
  m.def("get_isa", [] { return std::string(isa_name(active_isa())); });
  m.def("set_isa", [](const std::string& name) { set_isa(isa_from_name(name)); }, py::arg("isa"));
  // The hash of a C-contiguous array's bytes (pycnn/_weight_cache.py: was the array written?).
  m.def(
      "content_hash",
      [](py::array a) {
        PYCNN_REQUIRE(a.flags() & py::array::c_style, "a: expected a C-contiguous array");
        const void* p = a.data();
        const size_t n = (size_t)a.nbytes();
        py::gil_scoped_release nogil;
        return content_hash(p, n);
      },
      py::arg("a"));
  // The FP32 FMA peak of an ISA's kernel table (fma_peak.inl; default the active one) on `threads`
  // threads, each running `iters` iterations of 12 independent FMAs: GFLOP/s over the slowest thread.
  m.def(
      "fma_peak",
      [](int threads, int64_t iters, const std::string& isa) {
        PYCNN_REQUIRE(threads >= 1 && threads <= 1024, "threads: expected 1..1024");
        PYCNN_REQUIRE(iters >= 1, "iters: expected >= 1");
        const FmaPeakFn fn = (isa.empty() ? active_kernels() : runnable_kernels(isa)).fma_peak;
        std::vector<float> sink((size_t)threads);
        double flops = 0.0;
        py::gil_scoped_release nogil;
        const auto t0 = std::chrono::steady_clock::now();
#pragma omp parallel for num_threads(threads) schedule(static, 1) reduction(+ : flops)
        for (int t = 0; t < threads; ++t) flops += fn(iters, &sink[(size_t)t]);
        const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        return flops / s / 1e9;
      },
      py::arg("threads"), py::arg("iters") = 20000000, py::arg("isa") = "");
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
        PYCNN_REQUIRE((b_transposed ? b.shape(1) : b.shape(0)) == K, "b: inner dimension does not match a");
        PYCNN_REQUIRE(c.shape(0) == M && c.shape(1) == N, "c: expected shape (M, N)");
        const float* br = nullptr;
        const float* bc = nullptr;
        farray brow, bcol;
        if (!bias_row.is_none()) {
          brow = bias_row.cast<farray>();
          PYCNN_REQUIRE(brow.ndim() == 1 && brow.shape(0) == M, "bias_row: expected M entries");
          br = brow.data();
        }
        if (!bias_col.is_none()) {
          bcol = bias_col.cast<farray>();
          PYCNN_REQUIRE(bcol.ndim() == 1 && bcol.shape(0) == N, "bias_col: expected N entries");
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
      py::arg("a"), py::arg("b"), py::arg("c"), py::arg("bias_row") = py::none(), py::arg("bias_col") = py::none(),
      py::arg("relu") = false, py::arg("b_transposed") = false);

  // One GEMM of few rows with a large row-major B: packed (0), read in place (1) or copied by its
  // first use (2) (sgemm.h); -1 picks per vendor (the default). The tests run every mode.
  m.def("set_sgemm_large_b", &set_sgemm_large_b, py::arg("mode"));
  m.def("sgemm_large_b", &sgemm_large_b);
  m.def("cpu_is_amd", &cpu_is_amd);
  m.def("l2_cache_bytes", &l2_cache_bytes);  // what direct_oc sizes its weight groups by

  // Every SGEMM micro-kernel of an ISA, run directly over its m/n/k edge cases by the tests
  // (tests/test_sgemm_ukernels.py, as XNNPACK's GemmMicrokernelTester): (name, MR, MRC, NR, cols).
  m.def(
      "sgemm_variants",
      [](const std::string& isa) {
        const SgemmVariants vs = cpu_kernels(isa_from_name(isa)).sgemm_variants();
        std::vector<py::tuple> out;
        for (int i = 0; i < vs.count; ++i) {
          const SgemmVariant& v = vs.items[i];
          out.push_back(py::make_tuple(v.name, v.MR, v.MRC, v.NR, v.cols));
        }
        return out;
      },
      py::arg("isa"));
  // C[0:mr, 0:nr] (+)= A (kc x MR panel) * B (kc x ldb) with the epilogue, by one micro-kernel.
  // Every array is checked against what the kernel may touch (a: kc x MR; b: kc rows of >= NR;
  // c, residual: mr rows of >= nr; the biases: mr / nr entries), so a kernel reading or writing
  // outside its tile shows up under AddressSanitizer or in C's untouched margins.
  m.def(
      "sgemm_ukernel_run",
      [](const std::string& isa, const std::string& name, farray a, farray b, farray c, int mr, int nr, bool accumulate,
         bool last, py::object bias_row, py::object bias_col, py::object residual, bool relu, bool prefetch) {
        const CpuKernels& table = runnable_kernels(isa);
        const SgemmVariants vs = table.sgemm_variants();
        const SgemmVariant* v = nullptr;
        for (int i = 0; i < vs.count; ++i)
          if (name == vs.items[i].name) v = &vs.items[i];
        PYCNN_REQUIRE(v != nullptr, "name: no " + isa + " micro-kernel '" + name + "'");
        require_ndim(a, 2, "a");
        require_ndim(b, 2, "b");
        require_ndim(c, 2, "c");
        const int64_t kc = a.shape(0);
        PYCNN_REQUIRE(kc >= 1 && a.shape(1) == v->MR, "a: expected (kc, MR) with kc >= 1");
        PYCNN_REQUIRE(b.shape(0) == kc && b.shape(1) >= v->NR, "b: expected (kc, ldb) with ldb >= NR");
        PYCNN_REQUIRE(mr >= 1 && mr <= v->MRC && nr >= 1 && nr <= v->NR, "mr, nr: outside the kernel's tile");
        PYCNN_REQUIRE(c.shape(0) >= mr && c.shape(1) >= nr, "c: expected at least (mr, nr)");
        Epilogue ep;
        farray br, bc, rr;
        ep.bias_row = optional_vector(bias_row, mr, br, "bias_row: expected mr entries");
        ep.bias_col = optional_vector(bias_col, nr, bc, "bias_col: expected nr entries");
        if (!residual.is_none()) {
          rr = residual.cast<farray>();
          PYCNN_REQUIRE(rr.ndim() == 2 && rr.shape(0) >= mr && rr.shape(1) >= nr,
                        "residual: expected at least (mr, nr)");
          ep.residual = rr.data();
          ep.ldr = rr.shape(1);
        }
        ep.act = relu ? Activation::relu() : Activation::none();
        ep.prefetch = prefetch ? a.data() : nullptr;  // any readable lines: a prefetch never faults
        float* cp = wptr(c, "c");
        v->fn(kc, a.data(), b.data(), b.shape(1), cp, c.shape(1), mr, nr, accumulate, last, ep);
      },
      py::arg("isa"), py::arg("name"), py::arg("a"), py::arg("b"), py::arg("c"), py::arg("mr"), py::arg("nr"),
      py::arg("accumulate"), py::arg("last"), py::arg("bias_row") = py::none(), py::arg("bias_col") = py::none(),
      py::arg("residual") = py::none(), py::arg("relu") = false, py::arg("prefetch") = false);
  // One ISA's SGEMM packers run directly (tests/test_sgemm_ukernels.py): out is the destination
  // including any guard the test poisons; the packer writes only its first kc * P floats
  // (pack_transposed) or ceil(nc / NR) * kc * NR (pack_rows).
  m.def(
      "sgemm_pack_transposed",
      [](const std::string& isa, farray src, int P, farray out) {
        const CpuKernels& table = runnable_kernels(isa);
        require_ndim(src, 2, "src");
        const int64_t rows = src.shape(0), kc = src.shape(1);
        PYCNN_REQUIRE(P >= 1 && rows <= P, "P: expected rows <= P");
        PYCNN_REQUIRE(out.size() >= kc * P, "out: expected at least kc * P floats");
        float* o = wptr(out, "out");
        table.pack_transposed(src.data(), kc, (int)rows, P, kc, o);
      },
      py::arg("isa"), py::arg("src"), py::arg("P"), py::arg("out"));
  m.def(
      "sgemm_pack_rows",
      [](const std::string& isa, farray src, int64_t k0, int64_t kc, int64_t j0, int64_t nc, int NR, farray out) {
        const CpuKernels& table = runnable_kernels(isa);
        require_ndim(src, 2, "src");
        PYCNN_REQUIRE(k0 >= 0 && kc >= 1 && k0 + kc <= src.shape(0), "k0, kc: outside src's rows");
        PYCNN_REQUIRE(j0 >= 0 && nc >= 1 && j0 + nc <= src.shape(1), "j0, nc: outside src's columns");
        PYCNN_REQUIRE(NR >= 1, "NR: expected >= 1");
        PYCNN_REQUIRE(out.size() >= (nc + NR - 1) / NR * kc * NR,
                      "out: expected at least ceil(nc / NR) * kc * NR floats");
        float* o = wptr(out, "out");
        table.pack_rows(src.data(), src.shape(1), k0, kc, j0, nc, NR, o);
      },
      py::arg("isa"), py::arg("src"), py::arg("k0"), py::arg("kc"), py::arg("j0"), py::arg("nc"), py::arg("NR"),
      py::arg("out"));
}

}  // namespace pycnn
