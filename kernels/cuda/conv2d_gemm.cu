// Convolution as GEMM: im2col + SGEMM, and implicit GEMM (the im2col gather folded into the
// shared-memory tile loads). x (N, C, H, W), w (K, C/groups, R, S), y (N, K, Ho, Wo), NCHW.
//
// Kernel versions:
//   im2col_kernel1:        one thread per element of col[z][(c*R + r)*S + s][oh*Wo + ow] for the
//                          chunk's images (zero where the window reads padding); the products are
//                          then sgemm_kernel2, batched over the chunk's images, per group, with
//                          bias, residual and ReLU fused.
//   conv2d_igemm_kernel1:  M = output channels of a group, N = N*Ho*Wo pixels, K = C/groups*R*S;
//                          128x128x8 block tiles, 8x8 per thread as in sgemm_kernel2, both tiles
//                          filled with 4-byte cp.async (zero-filled for padding and edges, so no
//                          branch in the multiply) into double-buffered shared memory; the block's
//                          pixel columns are decoded once into shared memory, each K step decodes
//                          (c, r, s) once per thread.
#include "cuda_common.cuh"
#include "tile_8x8.cuh"
#include "pycnn/cuda_ops.h"

namespace pycnn {
namespace cuda {

__global__ void im2col_kernel1(const float* __restrict__ x, float* __restrict__ col, ConvGeom g, int64_t total) {
  const int64_t HoWo = (int64_t)g.Ho * g.Wo, CRS = (int64_t)g.C * g.R * g.S;
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total; i += (int64_t)gridDim.x * blockDim.x) {
    const int64_t p = i % HoWo, row = (i / HoWo) % CRS, z = i / (HoWo * CRS);
    const int s = (int)(row % g.S), r = (int)(row / g.S % g.R), c = (int)(row / ((int64_t)g.R * g.S));
    const int oh = (int)(p / g.Wo), ow = (int)(p % g.Wo);
    const int ih = oh * g.sh - g.ph + r * g.dh, iw = ow * g.sw - g.pw + s * g.dw;
    col[i] = (ih >= 0 && ih < g.H && iw >= 0 && iw < g.W) ? x[((z * g.C + c) * g.H + ih) * g.W + iw] : 0.0f;
  }
}

int64_t conv2d_im2col_workspace(const ConvGeom& g, int chunk) { return (int64_t)chunk * g.C * g.R * g.S * g.Ho * g.Wo; }

void conv2d_im2col(const ConvGeom& g, const float* x, const float* w, const float* bias, const float* residual,
                   float* y, bool relu, float* work, int chunk, void* stream) {
  if (chunk <= 0) throw std::invalid_argument("conv2d_im2col: chunk must be positive");
  const int64_t HoWo = (int64_t)g.Ho * g.Wo, CRS = (int64_t)g.C * g.R * g.S;
  const int Kg = g.K / g.groups, Cg = g.C / g.groups;
  const int64_t CgRS = (int64_t)Cg * g.R * g.S;
  for (int n0 = 0; n0 < g.N; n0 += chunk) {
    const int nb = g.N - n0 < chunk ? g.N - n0 : chunk;
    const int64_t total = nb * CRS * HoWo;
    const int64_t blocks = (total + 255) / 256;
    PYCNN_LAUNCH(im2col_kernel1, (int)(blocks < 65535 ? blocks : 65535), 256, 0, stream,
                 x + (int64_t)n0 * g.C * g.H * g.W, work, g, total);
    for (int gi = 0; gi < g.groups; ++gi) {
      GemmEpilogue ep;
      ep.bias = bias ? bias + (int64_t)gi * Kg : nullptr;
      ep.bias_mode = bias ? kBiasPerRow : kBiasNone;
      ep.residual = residual ? residual + ((int64_t)n0 * g.K + (int64_t)gi * Kg) * HoWo : nullptr;
      ep.ldr = HoWo;
      ep.residual_batch_stride = (int64_t)g.K * HoWo;
      ep.relu = relu;
      sgemm(2, Kg, (int)HoWo, (int)CgRS, w + gi * Kg * CgRS, CgRS, 0, work + gi * CgRS * HoWo, HoWo, CRS * HoWo, false,
            y + ((int64_t)n0 * g.K + (int64_t)gi * Kg) * HoWo, HoWo, (int64_t)g.K * HoWo, nb, ep, stream);
    }
  }
}

constexpr int kBM = kTileM, kBN = kTileN, kBK = kTileK, kThreads = kTileThreads;

__global__ void __launch_bounds__(kThreads)
    conv2d_igemm_kernel1(const float* __restrict__ x, const float* __restrict__ w, const float* __restrict__ bias,
                         const float* __restrict__ residual, float* __restrict__ y, ConvGeom g, bool relu) {
  __shared__ __align__(16) float As[2][kBK][kBM];  // weights, transposed: As[k][m]
  __shared__ __align__(16) float Bs[2][kBK][kBN];  // gathered input: Bs[k][pixel]
  const int Kg = g.K / g.groups, Cg = g.C / g.groups, RS = g.R * g.S;
  const int Kdim = Cg * RS;
  const int HoWo = g.Ho * g.Wo, P = g.N * HoWo;  // < 2^31: checked by the launcher
  const int gi = blockIdx.z;
  const int m0 = blockIdx.y * kBM;
  const int p0 = blockIdx.x * kBN;
  const float* wg = w + (int64_t)gi * Kg * Kdim;
  const int t = threadIdx.x, tx = t % 16, ty = t / 16;
  const int ar = t / 2, ak = (t % 2) * 4, bk = t / 32, bp = (t % 32) * 4;
  // The block's 128 pixel columns, decoded once into shared memory (kept out of registers: the
  // 8x8 accumulators need them): the image's channel-0 offset for group gi and the window's
  // origin; a column past the last pixel gets an origin no filter tap can bring inside.
  __shared__ int64_t s_xbase[kBN];
  __shared__ int s_ih0[kBN], s_iw0[kBN];
  if (t < kBN) {
    const int p = p0 + t;
    const int n = p < P ? p / HoWo : 0, hw = p < P ? p % HoWo : 0;
    s_xbase[t] = ((int64_t)n * g.C + (int64_t)gi * Cg) * g.H * g.W;
    s_ih0[t] = p < P ? hw / g.Wo * g.sh - g.ph : -(1 << 30);
    s_iw0[t] = hw % g.Wo * g.sw - g.pw;
  }
  __syncthreads();
  auto issue = [&](int k0, int buf) {
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const int k = k0 + ak + i, m = m0 + ar;
      const bool ok = k < Kdim && m < Kg;
      cp_async4(&As[buf][ak + i][ar], ok ? wg + (int64_t)m * Kdim + k : wg, ok ? 4 : 0);
    }
    const int k = k0 + bk;
    const int c = k / RS, r = (k % RS) / g.S, s = k % g.S;
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const int ih = s_ih0[bp + j] + r * g.dh, iw = s_iw0[bp + j] + s * g.dw;
      const bool ok = k < Kdim && ih >= 0 && ih < g.H && iw >= 0 && iw < g.W;
      cp_async4(&Bs[buf][bk][bp + j], ok ? x + s_xbase[bp + j] + ((int64_t)c * g.H + ih) * g.W + iw : x, ok ? 4 : 0);
    }
  };
  float acc[8][8];
  tile_zero(acc);
  const int ktiles = (Kdim + kBK - 1) / kBK;
  issue(0, 0);
  cp_async_commit();
  for (int kt = 0; kt < ktiles; ++kt) {
    const int cur = kt & 1;
    if (kt + 1 < ktiles) issue((kt + 1) * kBK, cur ^ 1);
    cp_async_commit();
    cp_async_wait<1>();  // this thread's copies of tile kt have landed
    __syncthreads();     // and everyone's
    tile_fma(As[cur], Bs[cur], tx, ty, acc);
    __syncthreads();  // tile kt read by all before iteration kt+1 refills its buffer
  }
  cp_async_wait<0>();
#pragma unroll
  for (int j = 0; j < 8; ++j) {
    const int p = p0 + tile_row(tx, j);
    if (p >= P) continue;
    const int n = p / HoWo, hw = p % HoWo;
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      const int m = m0 + tile_row(ty, i);
      if (m >= Kg) continue;
      const int ko = gi * Kg + m;
      const int64_t o = ((int64_t)n * g.K + ko) * HoWo + hw;
      float v = acc[i][j];
      if (bias) v += bias[ko];
      if (residual) v += residual[o];
      y[o] = (relu && v < 0.0f) ? 0.0f : v;
    }
  }
}

void conv2d_implicit_gemm(const ConvGeom& g, const float* x, const float* w, const float* bias, const float* residual,
                          float* y, bool relu, void* stream) {
  const int64_t P = (int64_t)g.N * g.Ho * g.Wo;
  if (P == 0 || g.K == 0) return;
  if (P > 0x7fffffff - kBN)
    throw std::invalid_argument("conv2d_implicit_gemm: N*Ho*Wo must be below 2^31; use im2col for this batch");
  const dim3 grid((unsigned)((P + kBN - 1) / kBN), (unsigned)ceil_div(g.K / g.groups, kBM), (unsigned)g.groups);
  PYCNN_LAUNCH(conv2d_igemm_kernel1, grid, dim3(kThreads), 0, stream, x, w, bias, residual, y, g, relu);
}

}  // namespace cuda
}  // namespace pycnn
