// Host-side entry points of the CUDA kernels (kernels/cuda/*.cu). Pointers are device pointers;
// `stream` is a cudaStream_t passed as void* so this header needs no CUDA include.
// Errors are thrown as std::runtime_error with the CUDA error string.
#pragma once
#include <cstdint>

namespace pycnn {
namespace cuda {

int device_count();
int runtime_version();
void relu(const float* x, float* y, int64_t n, void* stream);
void add(const float* a, const float* b, float* y, int64_t n, bool relu, void* stream);

}  // namespace cuda
}  // namespace pycnn
