// Element-wise CUDA kernels (the first part of the CUDA backend; see issue "CUDA backend").
//
// Kernel versions (llm.c style):
//   relu_kernel1: one thread per element, grid-stride loop. NaN kept (x < 0 is false for NaN).
//   add_kernel1:  one thread per element, grid-stride loop, optional fused ReLU.
#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

#include "pycnn/cuda_ops.h"

#define CUDA_CHECK(call)                                                                                 \
  do {                                                                                                   \
    cudaError_t err_ = (call);                                                                           \
    if (err_ != cudaSuccess)                                                                             \
      throw std::runtime_error(std::string("CUDA error in ") + #call + ": " + cudaGetErrorString(err_)); \
  } while (0)

namespace pycnn {
namespace cuda {

__global__ void relu_kernel1(const float* __restrict__ x, float* __restrict__ y, int64_t n) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
    const float v = x[i];
    y[i] = v < 0.0f ? 0.0f : v;
  }
}

__global__ void add_kernel1(const float* __restrict__ a, const float* __restrict__ b, float* __restrict__ y, int64_t n,
                            bool relu) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
    const float v = a[i] + b[i];
    y[i] = (relu && v < 0.0f) ? 0.0f : v;
  }
}

static int grid_for(int64_t n, int block) {
  const int64_t g = (n + block - 1) / block;
  return (int)(g < 65535 ? (g > 0 ? g : 1) : 65535);
}

int device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no driver" error
    return 0;
  }
  return n;
}

int runtime_version() {
  int v = 0;
  CUDA_CHECK(cudaRuntimeGetVersion(&v));
  return v;
}

void relu(const float* x, float* y, int64_t n, void* stream) {
  if (n == 0) return;
  relu_kernel1<<<grid_for(n, 256), 256, 0, (cudaStream_t)stream>>>(x, y, n);
  CUDA_CHECK(cudaGetLastError());
}

void add(const float* a, const float* b, float* y, int64_t n, bool relu, void* stream) {
  if (n == 0) return;
  add_kernel1<<<grid_for(n, 256), 256, 0, (cudaStream_t)stream>>>(a, b, y, n, relu);
  CUDA_CHECK(cudaGetLastError());
}

}  // namespace cuda
}  // namespace pycnn
