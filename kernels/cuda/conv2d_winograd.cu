// Winograd F(m x m, 3 x 3), m = 2 (alpha = 4) or m = 4 (alpha = 6), stride 1, dilation 1,
// groups 1 (Lavin & Gray; the points 0, +-1, +-2 for F4). x (N, C, H, W), y (N, K, Ho, Wo).
// U [alpha*alpha][K][C] (filter transform, once at prepare time), V [alpha*alpha][C][T] (input
// tiles, T = N * tiles_h * tiles_w), M [alpha*alpha][K][T] = U V by sgemm_kernel2 batched over
// the alpha*alpha positions.
//
// Kernel versions:
//   winograd_filter_kernel1: one thread per (k, c): U = G g G^T.
//   winograd_input_kernel1:  one thread per (c, tile): V = B^T d B, padding read as zeros.
//   winograd_output_kernel1: one thread per (k, tile): Y = A^T M A with bias, residual and ReLU
//                            fused, the tile's part inside Ho x Wo written.
#include "cuda_common.cuh"
#include "pycnn/cuda_ops.h"

namespace pycnn {
namespace cuda {

__constant__ float kG2[4 * 3] = {1, 0, 0, 0.5f, 0.5f, 0.5f, 0.5f, -0.5f, 0.5f, 0, 0, 1};
__constant__ float kBT2[4 * 4] = {1, 0, -1, 0, 0, 1, 1, 0, 0, -1, 1, 0, 0, 1, 0, -1};
__constant__ float kAT2[2 * 4] = {1, 1, 1, 0, 0, 1, -1, -1};
__constant__ float kG4[6 * 3] = {0.25f,     0,          0,         -1.0f / 6, -1.0f / 6, -1.0f / 6,
                                 -1.0f / 6, 1.0f / 6,   -1.0f / 6, 1.0f / 24, 1.0f / 12, 1.0f / 6,
                                 1.0f / 24, -1.0f / 12, 1.0f / 6,  0,         0,         1};
__constant__ float kBT4[6 * 6] = {4, 0,  -5, 0, 1, 0, 0, -4, -4, 1,  1, 0, 0, 4, -4, -1, 1, 0,
                                  0, -2, -1, 2, 1, 0, 0, 2,  -1, -2, 1, 0, 0, 4, 0,  -5, 0, 1};
__constant__ float kAT4[4 * 6] = {1, 1, 1, 1, 1, 0, 0, 1, -1, 2, -2, 0, 0, 1, 1, 4, 4, 0, 0, 1, -1, 8, -8, 1};

template <int M>
struct Wino {
  static constexpr int A = M + 2;
};

template <int M>
__global__ void winograd_filter_kernel1(const float* __restrict__ w, float* __restrict__ U, int K, int C) {
  constexpr int A = Wino<M>::A;
  const float* G = M == 2 ? kG2 : kG4;
  const int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
  if (i >= (int64_t)K * C) return;
  const float* g = w + i * 9;
  float t[A][3];  // G g
  for (int a = 0; a < A; ++a)
    for (int s = 0; s < 3; ++s) t[a][s] = G[a * 3] * g[s] + G[a * 3 + 1] * g[3 + s] + G[a * 3 + 2] * g[6 + s];
  for (int a = 0; a < A; ++a)
    for (int b = 0; b < A; ++b)
      U[(int64_t)(a * A + b) * K * C + i] = t[a][0] * G[b * 3] + t[a][1] * G[b * 3 + 1] + t[a][2] * G[b * 3 + 2];
}

template <int M>
__global__ void winograd_input_kernel1(const float* __restrict__ x, float* __restrict__ V, ConvGeom g, int th, int tw,
                                       int64_t T) {
  constexpr int A = Wino<M>::A;
  const float* BT = M == 2 ? kBT2 : kBT4;
  const int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
  if (i >= (int64_t)g.C * T) return;
  const int64_t t = i % T;
  const int c = (int)(i / T);
  const int64_t n = t / ((int64_t)th * tw);
  const int ty = (int)(t / tw % th), tx = (int)(t % tw);
  const int h0 = ty * M - g.ph, w0 = tx * M - g.pw;
  const float* xc = x + (n * g.C + c) * g.H * g.W;
  float d[A][A], u[A][A];
  for (int a = 0; a < A; ++a)
    for (int b = 0; b < A; ++b) {
      const int ih = h0 + a, iw = w0 + b;
      d[a][b] = (ih >= 0 && ih < g.H && iw >= 0 && iw < g.W) ? xc[(int64_t)ih * g.W + iw] : 0.0f;
    }
  for (int a = 0; a < A; ++a)  // u = B^T d
    for (int b = 0; b < A; ++b) {
      float s = 0.0f;
      for (int e = 0; e < A; ++e) s += BT[a * A + e] * d[e][b];
      u[a][b] = s;
    }
  for (int a = 0; a < A; ++a)  // V = u B
    for (int b = 0; b < A; ++b) {
      float s = 0.0f;
      for (int e = 0; e < A; ++e) s += u[a][e] * BT[b * A + e];
      V[(int64_t)(a * A + b) * g.C * T + (int64_t)c * T + t] = s;
    }
}

template <int M>
__global__ void winograd_output_kernel1(const float* __restrict__ Mt, const float* __restrict__ bias,
                                        const float* __restrict__ residual, float* __restrict__ y, ConvGeom g, int th,
                                        int tw, int64_t T, bool relu) {
  constexpr int A = Wino<M>::A;
  const float* AT = M == 2 ? kAT2 : kAT4;
  const int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
  if (i >= (int64_t)g.K * T) return;
  const int64_t t = i % T;
  const int k = (int)(i / T);
  const int64_t n = t / ((int64_t)th * tw);
  const int ty = (int)(t / tw % th), tx = (int)(t % tw);
  float m[A][A], u[M][A];
  for (int a = 0; a < A; ++a)
    for (int b = 0; b < A; ++b) m[a][b] = Mt[(int64_t)(a * A + b) * g.K * T + (int64_t)k * T + t];
  for (int a = 0; a < M; ++a)  // u = A^T m
    for (int b = 0; b < A; ++b) {
      float s = 0.0f;
      for (int e = 0; e < A; ++e) s += AT[a * A + e] * m[e][b];
      u[a][b] = s;
    }
  const float bk = bias ? bias[k] : 0.0f;
  for (int a = 0; a < M; ++a)
    for (int b = 0; b < M; ++b) {
      const int oh = ty * M + a, ow = tx * M + b;
      if (oh >= g.Ho || ow >= g.Wo) continue;
      float s = 0.0f;
      for (int e = 0; e < A; ++e) s += u[a][e] * AT[b * A + e];
      const int64_t o = ((n * g.K + k) * g.Ho + oh) * g.Wo + ow;
      s += bk;
      if (residual) s += residual[o];
      y[o] = (relu && s < 0.0f) ? 0.0f : s;
    }
}

static void check_m(int m) {
  if (m != 2 && m != 4) throw std::invalid_argument("winograd: m must be 2 or 4, got " + std::to_string(m));
}

int winograd_alpha(int m) {
  check_m(m);
  return m + 2;
}

static int64_t tiles(int m, const ConvGeom& g, int* th, int* tw) {
  *th = (g.Ho + m - 1) / m;
  *tw = (g.Wo + m - 1) / m;
  return (int64_t)g.N * *th * *tw;
}

void winograd_filter_transform(int m, const float* w, int K, int C, float* U, void* stream) {
  check_m(m);
  const int64_t n = (int64_t)K * C;
  if (n == 0) return;
  const int blocks = (int)((n + 127) / 128);
  if (m == 2)
    PYCNN_LAUNCH(winograd_filter_kernel1<2>, blocks, 128, 0, stream, w, U, K, C);
  else
    PYCNN_LAUNCH(winograd_filter_kernel1<4>, blocks, 128, 0, stream, w, U, K, C);
}

int64_t winograd_workspace(int m, const ConvGeom& g) {
  int th, tw;
  const int A = winograd_alpha(m);
  const int64_t T = tiles(m, g, &th, &tw);
  return (int64_t)A * A * T * ((int64_t)g.C + g.K);
}

void conv2d_winograd(int m, const ConvGeom& g, const float* x, const float* U, const float* bias, const float* residual,
                     float* y, bool relu, float* work, void* stream) {
  const int A = winograd_alpha(m);
  if (g.R != 3 || g.S != 3 || g.sh != 1 || g.sw != 1 || g.dh != 1 || g.dw != 1 || g.groups != 1)
    throw std::invalid_argument("winograd: 3x3, stride 1, dilation 1, groups 1 only");
  int th, tw;
  const int64_t T = tiles(m, g, &th, &tw);
  if (T == 0 || g.K == 0) return;
  float* V = work;
  float* Mt = work + (int64_t)A * A * g.C * T;
  const int bin = (int)(((int64_t)g.C * T + 127) / 128), bout = (int)(((int64_t)g.K * T + 127) / 128);
  auto* input = m == 2 ? winograd_input_kernel1<2> : winograd_input_kernel1<4>;
  auto* output = m == 2 ? winograd_output_kernel1<2> : winograd_output_kernel1<4>;
  PYCNN_LAUNCH(input, bin, 128, 0, stream, x, V, g, th, tw, T);
  GemmEpilogue none;
  sgemm(2, g.K, (int)T, g.C, U, g.C, (int64_t)g.K * g.C, V, T, (int64_t)g.C * T, false, Mt, T, (int64_t)g.K * T, A * A,
        none, stream);
  PYCNN_LAUNCH(output, bout, 128, 0, stream, Mt, bias, residual, y, g, th, tw, T, relu);
}

}  // namespace cuda
}  // namespace pycnn
