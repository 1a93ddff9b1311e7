// pybind11 glue for the CUDA kernels, compiled twice: against CUDA into pycnn._C_cuda and against
// the CPU emulator (kernels/cuda/emu) into pycnn._C_cuda_emu (PYCNN_CUDA_EMU defined). Arrays
// cross as raw pointers (integers: __cuda_array_interface__'s, or a NumPy array's data in the
// emulator) plus sizes; pycnn/cuda validates shapes before calling. Every CUDA error becomes a
// RuntimeError naming the call; bad parameters a ValueError.
#include <pybind11/pybind11.h>

#include <cstdint>
#include <string>

#include "pycnn/cuda_ops.h"
#if defined(PYCNN_CUDA_EMU)
#include "emu/cuda_emu.h"
#define PYCNN_CUDA_MODULE _C_cuda_emu
#else
#define PYCNN_CUDA_MODULE _C_cuda
#endif

namespace py = pybind11;
namespace pc = pycnn::cuda;

namespace {
template <class T = float>
T* P(std::uintptr_t p) {
  return reinterpret_cast<T*>(p);
}
void* S(std::uintptr_t s) { return reinterpret_cast<void*>(s); }

pc::ConvGeom geom(py::tuple t) {
  if (t.size() != 16) throw py::value_error("conv geometry: 16 integers expected");
  int v[16];
  for (int i = 0; i < 16; ++i) v[i] = t[i].cast<int>();
  return pc::ConvGeom{v[0], v[1], v[2],  v[3],  v[4],  v[5],  v[6],  v[7],
                      v[8], v[9], v[10], v[11], v[12], v[13], v[14], v[15]};
}
pc::PoolGeom pgeom(py::tuple t) {
  if (t.size() != 12) throw py::value_error("pool geometry: 12 integers expected");
  int v[12];
  for (int i = 0; i < 12; ++i) v[i] = t[i].cast<int>();
  return pc::PoolGeom{v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9], v[10], v[11]};
}
}  // namespace

PYBIND11_MODULE(PYCNN_CUDA_MODULE, m) {
  m.doc() = "pycnn CUDA kernels (the same sources in the GPU build and the CPU emulator build)";
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const std::invalid_argument& e) {
      PyErr_SetString(PyExc_ValueError, e.what());
    }
  });
  m.attr("device") = pc::device_name();
  m.def("device_count", &pc::device_count, "Number of CUDA devices (0 when there is no driver or no device).");
  m.def("runtime_version", &pc::runtime_version);
  const auto nogil = py::call_guard<py::gil_scoped_release>();

  m.def(
      "relu", [](std::uintptr_t x, std::uintptr_t y, int64_t n, std::uintptr_t s) { pc::relu(P(x), P(y), n, S(s)); },
      py::arg("x"), py::arg("y"), py::arg("n"), py::arg("stream") = 0, nogil);
  m.def(
      "add",
      [](std::uintptr_t a, std::uintptr_t b, std::uintptr_t y, int64_t n, bool relu, std::uintptr_t s) {
        pc::add(P(a), P(b), P(y), n, relu, S(s));
      },
      py::arg("a"), py::arg("b"), py::arg("y"), py::arg("n"), py::arg("relu") = false, py::arg("stream") = 0, nogil);
  m.def(
      "bias_act",
      [](std::uintptr_t y, std::uintptr_t bias, std::uintptr_t res, int64_t N, int64_t C, int64_t HW, bool relu,
         std::uintptr_t s) { pc::bias_act(P(y), P(bias), P(res), N, C, HW, relu, S(s)); },
      nogil);
  m.def(
      "channel_affine",
      [](std::uintptr_t x, std::uintptr_t scale, std::uintptr_t shift, std::uintptr_t y, int64_t N, int64_t C,
         int64_t HW, bool relu,
         std::uintptr_t s) { pc::channel_affine(P(x), P(scale), P(shift), P(y), N, C, HW, relu, S(s)); },
      nogil);
  m.def(
      "unary",
      [](int fn, std::uintptr_t x, std::uintptr_t y, int64_t n, float a, float b, std::uintptr_t s) {
        pc::unary(fn, P(x), P(y), n, a, b, S(s));
      },
      py::arg("fn"), py::arg("x"), py::arg("y"), py::arg("n"), py::arg("a") = 0.0f, py::arg("b") = 0.0f,
      py::arg("stream") = 0, nogil);
  m.def(
      "binary",
      [](int fn, std::uintptr_t a, py::tuple sa, std::uintptr_t b, py::tuple sb, std::uintptr_t y, py::tuple shape,
         std::uintptr_t s) {
        const size_t nd = shape.size();
        if (nd < 1 || nd > (size_t)pc::kBcastDims || sa.size() != nd || sb.size() != nd)
          throw std::invalid_argument("shape: expected 1 .. 6 dimensions, with as many strides for each operand");
        pc::Bcast g{};
        g.nd = (int)nd;
        for (size_t d = 0; d < nd; ++d) {
          g.shape[d] = shape[d].cast<int64_t>();
          g.sa[d] = sa[d].cast<int64_t>();
          g.sb[d] = sb[d].cast<int64_t>();
        }
        py::gil_scoped_release nogil_;
        pc::binary(fn, P(a), P(b), P(y), g, S(s));
      },
      py::arg("fn"), py::arg("a"), py::arg("a_strides"), py::arg("b"), py::arg("b_strides"), py::arg("y"),
      py::arg("shape"), py::arg("stream") = 0);
  m.def(
      "sgemm",
      [](int version, int M, int N, int K, std::uintptr_t A, int64_t lda, int64_t sA, std::uintptr_t B, int64_t ldb,
         int64_t sB, bool trans_b, std::uintptr_t C, int64_t ldc, int64_t sC, int batch, std::uintptr_t bias,
         int bias_mode, std::uintptr_t res, int64_t ldr, int64_t sR, bool relu, std::uintptr_t s) {
        pc::GemmEpilogue ep;
        ep.bias = P(bias);
        ep.bias_mode = bias ? bias_mode : pc::kBiasNone;
        ep.residual = P(res);
        ep.ldr = ldr;
        ep.residual_batch_stride = sR;
        ep.relu = relu;
        pc::sgemm(version, M, N, K, P(A), lda, sA, P(B), ldb, sB, trans_b, P(C), ldc, sC, batch, ep, S(s));
      },
      nogil);
  m.def("conv2d_im2col_workspace", [](py::tuple g, int chunk) { return pc::conv2d_im2col_workspace(geom(g), chunk); });
  m.def("conv2d_im2col", [](py::tuple gt, std::uintptr_t x, std::uintptr_t w, std::uintptr_t b, std::uintptr_t r,
                            std::uintptr_t y, bool relu, std::uintptr_t work, int chunk, std::uintptr_t s) {
    const pc::ConvGeom g = geom(gt);
    py::gil_scoped_release release;
    pc::conv2d_im2col(g, P(x), P(w), P(b), P(r), P(y), relu, P(work), chunk, S(s));
  });
  m.def("conv2d_implicit_gemm", [](py::tuple gt, std::uintptr_t x, std::uintptr_t w, std::uintptr_t b, std::uintptr_t r,
                                   std::uintptr_t y, bool relu, std::uintptr_t s) {
    const pc::ConvGeom g = geom(gt);
    py::gil_scoped_release release;
    pc::conv2d_implicit_gemm(g, P(x), P(w), P(b), P(r), P(y), relu, S(s));
  });
  m.def("conv2d_direct", [](py::tuple gt, std::uintptr_t x, std::uintptr_t w, std::uintptr_t b, std::uintptr_t r,
                            std::uintptr_t y, bool relu, std::uintptr_t s) {
    const pc::ConvGeom g = geom(gt);
    py::gil_scoped_release release;
    pc::conv2d_direct(g, P(x), P(w), P(b), P(r), P(y), relu, S(s));
  });
  m.def("winograd_alpha", &pc::winograd_alpha);
  m.def("winograd_workspace", [](int mt, py::tuple g) { return pc::winograd_workspace(mt, geom(g)); });
  m.def(
      "winograd_filter_transform",
      [](int mt, std::uintptr_t w, int K, int C, std::uintptr_t U, std::uintptr_t s) {
        pc::winograd_filter_transform(mt, P(w), K, C, P(U), S(s));
      },
      nogil);
  m.def("conv2d_winograd", [](int mt, py::tuple gt, std::uintptr_t x, std::uintptr_t U, std::uintptr_t b,
                              std::uintptr_t r, std::uintptr_t y, bool relu, std::uintptr_t work, std::uintptr_t s) {
    const pc::ConvGeom g = geom(gt);
    py::gil_scoped_release release;
    pc::conv2d_winograd(mt, g, P(x), P(U), P(b), P(r), P(y), relu, P(work), S(s));
  });
  m.def("max_pool2d", [](py::tuple gt, std::uintptr_t x, std::uintptr_t y, std::uintptr_t s) {
    const pc::PoolGeom g = pgeom(gt);
    py::gil_scoped_release release;
    pc::max_pool2d(g, P(x), P(y), S(s));
  });
  m.def("avg_pool2d", [](py::tuple gt, std::uintptr_t x, std::uintptr_t y, bool cip, std::uintptr_t s) {
    const pc::PoolGeom g = pgeom(gt);
    py::gil_scoped_release release;
    pc::avg_pool2d(g, P(x), P(y), cip, S(s));
  });
  m.def(
      "global_avg_pool2d",
      [](std::uintptr_t x, std::uintptr_t y, int64_t NC, int64_t HW, std::uintptr_t s) {
        pc::global_avg_pool2d(P(x), P(y), NC, HW, S(s));
      },
      nogil);
  m.def(
      "lrn",
      [](std::uintptr_t x, std::uintptr_t y, int N, int C, int64_t HW, int size, float alpha, float beta, float k,
         std::uintptr_t s) { pc::lrn(P(x), P(y), N, C, HW, size, alpha, beta, k, S(s)); },
      nogil);
  m.def(
      "softmax",
      [](std::uintptr_t x, std::uintptr_t y, int64_t rows, int64_t cols, std::uintptr_t s) {
        pc::softmax(P(x), P(y), rows, cols, S(s));
      },
      nogil);
  m.def(
      "concat_copy",
      [](std::uintptr_t x, std::uintptr_t y, int64_t N, int64_t Cx, int64_t HW, int64_t Cy, int64_t off,
         std::uintptr_t s) { pc::concat_copy(P(x), P(y), N, Cx, HW, Cy, off, S(s)); },
      nogil);
  m.def(
      "channel_norm",
      [](std::uintptr_t x, std::uintptr_t w, std::uintptr_t b, std::uintptr_t y, int64_t N, int64_t C, int64_t pixels,
         float eps, std::uintptr_t s) { pc::channel_norm(P(x), P(w), P(b), P(y), N, C, pixels, eps, S(s)); },
      nogil);
  m.def(
      "selftest",
      [](const std::string& name, std::uintptr_t a, std::uintptr_t b, int blocks, int threads, int arg,
         std::uintptr_t s) { pc::selftest(name.c_str(), P<void>(a), P<void>(b), blocks, threads, arg, S(s)); },
      py::arg("name"), py::arg("a"), py::arg("b"), py::arg("blocks"), py::arg("threads"), py::arg("arg") = 0,
      py::arg("stream") = 0, nogil);
#if defined(PYCNN_CUDA_EMU)
  m.def(
      "set_schedule",
      [](const std::string& order, uint64_t seed) {
        const char* names[] = {"forward", "reverse", "shuffle", "mixed"};
        for (int i = 0; i < 4; ++i)
          if (order == names[i]) return pycnn_emu::set_schedule(i, seed);
        throw py::value_error("order: expected 'forward', 'reverse', 'shuffle' or 'mixed', got '" + order + "'");
      },
      py::arg("order"), py::arg("seed") = 0x5EED,
      "How the emulator orders a block's threads between barriers ('mixed': forward, reverse and a seeded "
      "shuffle in turn, the default).");
  m.def("schedule", []() {
    const char* names[] = {"forward", "reverse", "shuffle", "mixed"};
    return std::string(names[pycnn_emu::schedule_order()]);
  });
#endif
}
