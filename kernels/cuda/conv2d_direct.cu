// Direct convolution for first layers (3 input channels) and small shapes, where a GEMM's
// tiles would be mostly empty. x (N, C, H, W), w (K, C/groups, R, S), y (N, K, Ho, Wo), NCHW.
//
// Kernel versions:
//   conv2d_direct_kernel1: one thread per output element, consecutive threads along ow (so the
//                          input reads of a warp are consecutive for stride 1), the filter taps
//                          through the read-only cache; bias, residual and ReLU fused.
#include "cuda_common.cuh"
#include "pycnn/cuda_ops.h"

namespace pycnn {
namespace cuda {

__global__ void conv2d_direct_kernel1(const float* __restrict__ x, const float* __restrict__ w,
                                      const float* __restrict__ bias, const float* __restrict__ residual,
                                      float* __restrict__ y, ConvGeom g, bool relu, int64_t total) {
  const int Kg = g.K / g.groups, Cg = g.C / g.groups;
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total; i += (int64_t)gridDim.x * blockDim.x) {
    const int ow = (int)(i % g.Wo), oh = (int)(i / g.Wo % g.Ho);
    const int k = (int)(i / ((int64_t)g.Wo * g.Ho) % g.K);
    const int64_t n = i / ((int64_t)g.Wo * g.Ho * g.K);
    const int c0 = (k / Kg) * Cg;
    const float* wk = w + (int64_t)k * Cg * g.R * g.S;
    float acc = 0.0f;
    for (int c = 0; c < Cg; ++c) {
      const float* xc = x + ((n * g.C + c0 + c) * g.H) * g.W;
      for (int r = 0; r < g.R; ++r) {
        const int ih = oh * g.sh - g.ph + r * g.dh;
        if (ih < 0 || ih >= g.H) continue;
        for (int s = 0; s < g.S; ++s) {
          const int iw = ow * g.sw - g.pw + s * g.dw;
          if (iw < 0 || iw >= g.W) continue;
          acc = fmaf(__ldg(xc + (int64_t)ih * g.W + iw), __ldg(wk + (c * g.R + r) * g.S + s), acc);
        }
      }
    }
    if (bias) acc += bias[k];
    if (residual) acc += residual[i];
    y[i] = (relu && acc < 0.0f) ? 0.0f : acc;
  }
}

void conv2d_direct(const ConvGeom& g, const float* x, const float* w, const float* bias, const float* residual,
                   float* y, bool relu, void* stream) {
  const int64_t total = (int64_t)g.N * g.K * g.Ho * g.Wo;
  if (total == 0) return;
  const int64_t blocks = (total + 127) / 128;
  PYCNN_LAUNCH(conv2d_direct_kernel1, (int)(blocks < 65535 ? blocks : 65535), 128, 0, stream, x, w, bias, residual, y,
               g, relu, total);
}

}  // namespace cuda
}  // namespace pycnn
