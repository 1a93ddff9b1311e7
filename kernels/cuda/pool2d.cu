// Pooling, with the CPU's semantics (pycnn/reference.py): windows clipped to the image, so padding
// never wins a max; NaN in a window gives NaN; ceil_mode's extra window is counted by the caller
// (Ho, Wo); average divisor counts the padding (not the columns past it) with count_include_pad.
// x (N, C, H, W) -> y (N, C, Ho, Wo), NCHW.
//
// Kernel versions:
//   max_pool2d_kernel1, avg_pool2d_kernel1: one thread per output element, consecutive along ow.
//   global_avg_pool_kernel1: one warp per (n, c) plane, lanes stride the plane, __shfl_xor_sync
//                            tree to sum, lane 0 writes.
#include "cuda_common.cuh"
#include "pycnn/cuda_ops.h"

namespace pycnn {
namespace cuda {

// The window of output element i (n, c, oh, ow): its start (hs, ws, padding included) and its
// part inside the image [h0, h1) x [w0, w1).
struct PoolWindow {
  int64_t nc;
  int hs, ws, h0, h1, w0, w1;
};

__device__ __forceinline__ PoolWindow pool_window(const PoolGeom& g, int64_t i) {
  const int ow = (int)(i % g.Wo), oh = (int)(i / g.Wo % g.Ho);
  PoolWindow w;
  w.nc = i / ((int64_t)g.Wo * g.Ho);
  w.hs = oh * g.sh - g.ph;
  w.ws = ow * g.sw - g.pw;
  w.h0 = w.hs > 0 ? w.hs : 0;
  w.w0 = w.ws > 0 ? w.ws : 0;
  w.h1 = w.hs + g.kh < g.H ? w.hs + g.kh : g.H;
  w.w1 = w.ws + g.kw < g.W ? w.ws + g.kw : g.W;
  return w;
}

__global__ void max_pool2d_kernel1(const float* __restrict__ x, float* __restrict__ y, PoolGeom g, int64_t total) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total; i += (int64_t)gridDim.x * blockDim.x) {
    const PoolWindow win = pool_window(g, i);
    const int h0 = win.h0, h1 = win.h1, w0 = win.w0, w1 = win.w1;
    const float* xp = x + win.nc * g.H * g.W;
    float m = -INFINITY;
    for (int h = h0; h < h1; ++h)
      for (int w = w0; w < w1; ++w) {
        const float v = xp[(int64_t)h * g.W + w];
        m = (v > m || v != v) ? v : m;  // NaN wins and stays (m != m then keeps it: v > NaN is false)
        if (m != m) h = h1, w = w1;
      }
    y[i] = m;
  }
}

__global__ void avg_pool2d_kernel1(const float* __restrict__ x, float* __restrict__ y, PoolGeom g, int64_t total,
                                   bool count_include_pad) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total; i += (int64_t)gridDim.x * blockDim.x) {
    const PoolWindow win = pool_window(g, i);
    const int h0 = win.h0, h1 = win.h1, w0 = win.w0, w1 = win.w1, hs = win.hs, ws = win.ws;
    const float* xp = x + win.nc * g.H * g.W;
    float s = 0.0f;
    for (int h = h0; h < h1; ++h)
      for (int w = w0; w < w1; ++w) s += xp[(int64_t)h * g.W + w];
    int count;
    if (count_include_pad) {
      const int hp = hs + g.kh < g.H + g.ph ? hs + g.kh : g.H + g.ph;
      const int wp = ws + g.kw < g.W + g.pw ? ws + g.kw : g.W + g.pw;
      count = (hp - hs) * (wp - ws);
    } else {
      count = (h1 - h0) * (w1 - w0);
    }
    y[i] = s / (float)count;
  }
}

__global__ void global_avg_pool_kernel1(const float* __restrict__ x, float* __restrict__ y, int64_t NC, int64_t HW) {
  const int64_t warp = (blockIdx.x * (int64_t)blockDim.x + threadIdx.x) / 32;
  const int lane = threadIdx.x % 32;
  if (warp >= NC) return;  // whole warps leave together: the shuffles below see all 32 lanes
  const float* xp = x + warp * HW;
  float s = 0.0f;
  for (int64_t i = lane; i < HW; i += 32) s += xp[i];
  for (int o = 16; o > 0; o /= 2) s += __shfl_xor_sync(0xffffffffu, s, o);
  if (lane == 0) y[warp] = s / (float)HW;
}

static int blocks_for(int64_t n, int block) {
  const int64_t b = (n + block - 1) / block;
  return (int)(b < 65535 ? b : 65535);
}

void max_pool2d(const PoolGeom& g, const float* x, float* y, void* stream) {
  const int64_t total = (int64_t)g.N * g.C * g.Ho * g.Wo;
  if (total == 0) return;
  PYCNN_LAUNCH(max_pool2d_kernel1, blocks_for(total, 256), 256, 0, stream, x, y, g, total);
}

void avg_pool2d(const PoolGeom& g, const float* x, float* y, bool count_include_pad, void* stream) {
  const int64_t total = (int64_t)g.N * g.C * g.Ho * g.Wo;
  if (total == 0) return;
  PYCNN_LAUNCH(avg_pool2d_kernel1, blocks_for(total, 256), 256, 0, stream, x, y, g, total, count_include_pad);
}

void global_avg_pool2d(const float* x, float* y, int64_t NC, int64_t HW, void* stream) {
  if (NC == 0) return;
  if (HW == 0) throw std::invalid_argument("global_avg_pool2d: empty planes");
  PYCNN_LAUNCH(global_avg_pool_kernel1, (int)((NC * 32 + 255) / 256), 256, 0, stream, x, y, NC, HW);
}

}  // namespace cuda
}  // namespace pycnn
