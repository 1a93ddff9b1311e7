// pybind11 glue for the CUDA kernels: pycnn._C_cuda. Arrays cross as raw device pointers
// (integers from __cuda_array_interface__) plus sizes; pycnn validates shapes before calling.
// Every CUDA error becomes a RuntimeError naming the call.
#include <pybind11/pybind11.h>

#include <cstdint>
#include <string>

#include "pycnn/cuda_ops.h"

namespace py = pybind11;

PYBIND11_MODULE(_C_cuda, m) {
  m.doc() = "pycnn CUDA kernels";
  m.def("device_count", &pycnn::cuda::device_count, "Number of CUDA devices (0 when there is no driver or no device).");
  m.def("runtime_version", &pycnn::cuda::runtime_version);
  m.def(
      "relu",
      [](std::uintptr_t x, std::uintptr_t y, int64_t n, std::uintptr_t stream) {
        pycnn::cuda::relu(reinterpret_cast<const float*>(x), reinterpret_cast<float*>(y), n,
                          reinterpret_cast<void*>(stream));
      },
      py::arg("x"), py::arg("y"), py::arg("n"), py::arg("stream") = 0);
  m.def(
      "add",
      [](std::uintptr_t a, std::uintptr_t b, std::uintptr_t y, int64_t n, bool relu, std::uintptr_t stream) {
        pycnn::cuda::add(reinterpret_cast<const float*>(a), reinterpret_cast<const float*>(b),
                         reinterpret_cast<float*>(y), n, relu, reinterpret_cast<void*>(stream));
      },
      py::arg("a"), py::arg("b"), py::arg("y"), py::arg("n"), py::arg("relu") = false, py::arg("stream") = 0);
}
