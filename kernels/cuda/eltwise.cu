// Element-wise CUDA kernels and the device queries.
//
// Kernel versions:
//   relu_kernel1:     one thread per element, grid-stride loop. NaN kept (x < 0 is false for NaN).
//   add_kernel1:      one thread per element, grid-stride loop, optional fused ReLU.
//   bias_act_kernel1: in place y = act(y + bias[c] + residual), a grid-stride loop over (n, c, hw)
//                     with the channel recovered per element: the standalone conv epilogue.
//   channel_affine_kernel1: y = act(x * scale[c] + shift[c]), a grid-stride loop (batch norm
//                     with its statistics folded).
#include "cuda_common.cuh"
#include "pycnn/cuda_ops.h"

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

__global__ void bias_act_kernel1(float* __restrict__ y, const float* __restrict__ bias,
                                 const float* __restrict__ residual, int64_t C, int64_t HW, int64_t n, bool relu) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
    float v = y[i];
    if (bias) v += bias[(i / HW) % C];
    if (residual) v += residual[i];
    y[i] = (relu && v < 0.0f) ? 0.0f : v;
  }
}

__global__ void channel_affine_kernel1(const float* __restrict__ x, const float* __restrict__ scale,
                                       const float* __restrict__ shift, float* __restrict__ y, int64_t C, int64_t HW,
                                       int64_t n, bool relu) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
    const int64_t c = (i / HW) % C;
    const float v = fmaf(x[i], scale[c], shift[c]);
    y[i] = (relu && v < 0.0f) ? 0.0f : v;
  }
}

__device__ __forceinline__ float unary_value(int fn, float v, float a, float b) {
  switch (fn) {
    case 0:
      return v < a ? a : (v > b ? b : v);
    case 1:
      return 1.0f / (1.0f + expf(-v));
    case 2: {
      const float h = a * v + b;
      return h < 0.0f ? 0.0f : (h > 1.0f ? 1.0f : h);
    }
    case 3: {
      const float h = v * (1.0f / 6.0f) + 0.5f;
      return v * (h < 0.0f ? 0.0f : (h > 1.0f ? 1.0f : h));
    }
    case 4:
      return v / (1.0f + expf(-v));
    case 5:
      return erff(v);
    case 6:
      return 0.5f * v * (1.0f + erff(v * 0.70710678118654752f));
    case 7:
      return sqrtf(v);
    case 8:
      return expf(v);
    case 9:
      return -v;
    case 10:
      return tanhf(v);
    case 11:
      return fabsf(v);
    default:
      return 1.0f / v;
  }
}

__global__ void unary_kernel1(const float* x, float* y, int64_t n, int fn, float a, float b) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
    const float v = x[i];
    const float r = unary_value(fn, v, a, b);
    y[i] = v != v ? v : r;  // the clamps drop a NaN: keep it
  }
}

__global__ void binary_kernel1(const float* __restrict__ a, const float* __restrict__ b, float* __restrict__ y, Bcast g,
                               int64_t n, int fn) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
    int64_t rest = i, ia = 0, ib = 0;
    for (int d = g.nd - 1; d >= 0; --d) {  // y's index, last dimension fastest
      const int64_t c = rest % g.shape[d];
      rest /= g.shape[d];
      ia += c * g.sa[d];
      ib += c * g.sb[d];
    }
    const float u = a[ia], v = b[ib];
    float r;
    switch (fn) {
      case 0:
        r = u + v;
        break;
      case 1:
        r = u - v;
        break;
      case 2:
        r = u * v;
        break;
      case 3:
        r = u / v;
        break;
      default:
        r = powf(u, v);
        break;
    }
    y[i] = r;
  }
}

static int grid_for(int64_t n, int block) {
  const int64_t g = (n + block - 1) / block;
  return (int)(g < 65535 ? (g > 0 ? g : 1) : 65535);
}

const char* device_name() { return PYCNN_DEVICE_NAME; }

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
  PYCNN_LAUNCH(relu_kernel1, grid_for(n, 256), 256, 0, stream, x, y, n);
}

void add(const float* a, const float* b, float* y, int64_t n, bool relu, void* stream) {
  if (n == 0) return;
  PYCNN_LAUNCH(add_kernel1, grid_for(n, 256), 256, 0, stream, a, b, y, n, relu);
}

void bias_act(float* y, const float* bias, const float* residual, int64_t N, int64_t C, int64_t HW, bool relu,
              void* stream) {
  const int64_t n = N * C * HW;
  if (n == 0 || (!bias && !residual && !relu)) return;
  PYCNN_LAUNCH(bias_act_kernel1, grid_for(n, 256), 256, 0, stream, y, bias, residual, C, HW, n, relu);
}

void channel_affine(const float* x, const float* scale, const float* shift, float* y, int64_t N, int64_t C, int64_t HW,
                    bool relu, void* stream) {
  const int64_t n = N * C * HW;
  if (n == 0) return;
  PYCNN_LAUNCH(channel_affine_kernel1, grid_for(n, 256), 256, 0, stream, x, scale, shift, y, C, HW, n, relu);
}

void unary(int fn, const float* x, float* y, int64_t n, float a, float b, void* stream) {
  if (fn < 0 || fn > kUnaryLast) throw std::invalid_argument("fn: expected an element-wise function code 0 .. 12");
  if (n == 0) return;
  PYCNN_LAUNCH(unary_kernel1, grid_for(n, 256), 256, 0, stream, x, y, n, fn, a, b);
}

void binary(int fn, const float* a, const float* b, float* y, const Bcast& g, void* stream) {
  if (fn < 0 || fn > 4) throw std::invalid_argument("fn: expected 0 add, 1 sub, 2 mul, 3 div or 4 pow");
  if (g.nd < 1 || g.nd > kBcastDims) throw std::invalid_argument("shape: expected 1 .. 6 dimensions");
  int64_t n = 1;
  for (int d = 0; d < g.nd; ++d) {
    if (g.shape[d] < 0) throw std::invalid_argument("shape: negative size");
    n *= g.shape[d];
  }
  if (n == 0) return;
  PYCNN_LAUNCH(binary_kernel1, grid_for(n, 256), 256, 0, stream, a, b, y, g, n, fn);
}

}  // namespace cuda
}  // namespace pycnn
