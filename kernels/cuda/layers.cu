// LRN, softmax, LayerNorm over channels and the channel concatenation copy. NCHW float32.
//
// Kernel versions:
//   lrn_kernel1:         one thread per element; the window's sum of squares over channels
//                        [c - size/2, c + (size-1)/2] read from global memory (AlexNet: 5 reads).
//   softmax_kernel1:     one block of 256 threads per row: max then sum of exp, each reduced
//                        within warps by __shfl_xor_sync and across the 8 warps in shared memory.
//   concat_copy_kernel1: one thread per element of one input, written at its channel offset.
//   channel_norm_kernel1: one thread per (image, pixel): the pixel's C values (a plane apart, so a
//                        warp's 32 pixels read 128 contiguous bytes per channel) in three passes:
//                        mean, then the biased variance of the deviations (two passes: no
//                        cancellation), then y = (x - mean) / sqrt(var + eps) * w[c] + b[c].
#include "cuda_common.cuh"
#include "pycnn/cuda_ops.h"

namespace pycnn {
namespace cuda {

__global__ void lrn_kernel1(const float* __restrict__ x, float* __restrict__ y, int C, int64_t HW, int64_t total,
                            int size, float alpha, float beta, float k) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total; i += (int64_t)gridDim.x * blockDim.x) {
    const int64_t hw = i % HW;
    const int c = (int)(i / HW % C);
    const int64_t n = i / (HW * C);
    const int lo = c - size / 2 > 0 ? c - size / 2 : 0, hi = c + (size - 1) / 2 + 1 < C ? c + (size - 1) / 2 + 1 : C;
    float s = 0.0f;
    for (int j = lo; j < hi; ++j) {
      const float v = x[(n * C + j) * HW + hw];
      s = fmaf(v, v, s);
    }
    y[i] = x[i] / powf(k + alpha / (float)size * s, beta);
  }
}

constexpr int kSoftmaxThreads = 256;

// The reduction of v over the block (op: 0 max, 1 sum), returned to every thread.
__device__ float block_reduce(float v, int op, float* scratch) {
  for (int o = 16; o > 0; o /= 2) {
    const float u = __shfl_xor_sync(0xffffffffu, v, o);
    v = op == 0 ? (u > v || u != u ? u : v) : v + u;
  }
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  if (warp == 0) {
    v = lane < kSoftmaxThreads / 32 ? scratch[lane] : (op == 0 ? -INFINITY : 0.0f);
    for (int o = 16; o > 0; o /= 2) {
      const float u = __shfl_xor_sync(0xffffffffu, v, o);
      v = op == 0 ? (u > v || u != u ? u : v) : v + u;
    }
    if (lane == 0) scratch[0] = v;
  }
  __syncthreads();
  v = scratch[0];
  __syncthreads();  // scratch is reused by the next reduction
  return v;
}

__global__ void __launch_bounds__(kSoftmaxThreads)
    softmax_kernel1(const float* __restrict__ x, float* __restrict__ y, int64_t cols) {
  __shared__ float scratch[kSoftmaxThreads / 32];
  const float* xr = x + blockIdx.x * cols;
  float* yr = y + blockIdx.x * cols;
  float m = -INFINITY;
  for (int64_t i = threadIdx.x; i < cols; i += kSoftmaxThreads) m = (xr[i] > m || xr[i] != xr[i]) ? xr[i] : m;
  m = block_reduce(m, 0, scratch);
  if (m == -INFINITY) m = 0.0f;  // a row of -inf: exp(-inf - 0) = 0, then 0/0 = NaN, as the reference
  float s = 0.0f;
  for (int64_t i = threadIdx.x; i < cols; i += kSoftmaxThreads) s += expf(xr[i] - m);
  s = block_reduce(s, 1, scratch);
  for (int64_t i = threadIdx.x; i < cols; i += kSoftmaxThreads) yr[i] = expf(xr[i] - m) / s;
}

__global__ void concat_copy_kernel1(const float* __restrict__ x, float* __restrict__ y, int64_t CxHW, int64_t CyHW,
                                    int64_t off, int64_t total) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total; i += (int64_t)gridDim.x * blockDim.x)
    y[(i / CxHW) * CyHW + off + i % CxHW] = x[i];
}

__global__ void channel_norm_kernel1(const float* __restrict__ x, const float* __restrict__ w,
                                     const float* __restrict__ b, float* __restrict__ y, int64_t C, int64_t P,
                                     int64_t total, float eps) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total; i += (int64_t)gridDim.x * blockDim.x) {
    const int64_t n = i / P, p = i % P;
    const float* xp = x + n * C * P + p;
    float* yp = y + n * C * P + p;
    float s = 0.0f;
    for (int64_t c = 0; c < C; ++c) s += xp[c * P];
    const float mean = s / (float)C;
    float q = 0.0f;
    for (int64_t c = 0; c < C; ++c) {
      const float d = xp[c * P] - mean;
      q = fmaf(d, d, q);
    }
    const float r = 1.0f / sqrtf(q / (float)C + eps);
    for (int64_t c = 0; c < C; ++c) yp[c * P] = fmaf((xp[c * P] - mean) * r, w[c], b[c]);
  }
}

static int blocks_for(int64_t n, int block) {
  const int64_t b = (n + block - 1) / block;
  return (int)(b < 65535 ? b : 65535);
}

void lrn(const float* x, float* y, int N, int C, int64_t HW, int size, float alpha, float beta, float k, void* stream) {
  const int64_t total = (int64_t)N * C * HW;
  if (total == 0) return;
  PYCNN_LAUNCH(lrn_kernel1, blocks_for(total, 256), 256, 0, stream, x, y, C, HW, total, size, alpha, beta, k);
}

void softmax(const float* x, float* y, int64_t rows, int64_t cols, void* stream) {
  if (rows == 0 || cols == 0) return;
  if (rows > 0x7fffffff) throw std::invalid_argument("softmax: more than 2^31 - 1 rows");
  PYCNN_LAUNCH(softmax_kernel1, (unsigned)rows, kSoftmaxThreads, 0, stream, x, y, cols);
}

void concat_copy(const float* x, float* y, int64_t N, int64_t Cx, int64_t HW, int64_t Cy, int64_t c_off, void* stream) {
  const int64_t total = N * Cx * HW;
  if (total == 0) return;
  PYCNN_LAUNCH(concat_copy_kernel1, blocks_for(total, 256), 256, 0, stream, x, y, Cx * HW, Cy * HW, c_off * HW, total);
}

void channel_norm(const float* x, const float* w, const float* b, float* y, int64_t N, int64_t C, int64_t P, float eps,
                  void* stream) {
  const int64_t total = N * P;
  if (total == 0 || C == 0) return;
  PYCNN_LAUNCH(channel_norm_kernel1, blocks_for(total, 256), 256, 0, stream, x, w, b, y, C, P, total, eps);
}

}  // namespace cuda
}  // namespace pycnn
