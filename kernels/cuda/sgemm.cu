// SGEMM with the conv epilogue fused: C = act(A B + bias + R), batched over blockIdx.z.
// Layouts: A (M, K) row-major, lda; B (K, N) row-major, ldb, or with trans_b (N, K) row-major
// (a linear layer's weight); C and R (M, N) row-major, ldc / ldr; bias per row (a conv's output
// channel) or per column (a linear layer's output feature).
//
// Kernel versions:
//   sgemm_kernel1: one thread per element of C, K loop from global memory. The reference the
//                  tiled kernel is tested against, and the path for tiny products.
//   sgemm_kernel2: 128x128 block tile, K in steps of 8, 256 threads each holding an 8x8 register
//                  tile (rows ty*4+i and 64+ty*4+i, columns tx*4+j and 64+tx*4+j, so the shared
//                  memory reads are float4 and conflict-free); shared tiles double-buffered with
//                  one barrier per K step, the next tile's global loads (float4 when the rows are
//                  16-byte aligned, else scalar with bounds) issued before the current tile's
//                  multiply; any M, N, K; epilogue fused.
#include "cuda_common.cuh"
#include "tile_8x8.cuh"
#include "pycnn/cuda_ops.h"

namespace pycnn {
namespace cuda {

__device__ __forceinline__ float epilogue(float v, int m, int n, const GemmEpilogue& ep, const float* R, int64_t ldr) {
  if (ep.bias_mode == kBiasPerRow) v += ep.bias[m];
  if (ep.bias_mode == kBiasPerCol) v += ep.bias[n];
  if (R) v += R[(int64_t)m * ldr + n];
  if (ep.relu && v < 0.0f) v = 0.0f;  // NaN kept: NaN < 0 is false
  return v;
}

__global__ void sgemm_kernel1(int M, int N, int K, const float* __restrict__ A, int64_t lda, int64_t sA,
                              const float* __restrict__ B, int64_t ldb, int64_t sB, bool trans_b, float* __restrict__ C,
                              int64_t ldc, int64_t sC, GemmEpilogue ep) {
  const int n = blockIdx.x * blockDim.x + threadIdx.x, m = blockIdx.y * blockDim.y + threadIdx.y;
  const int z = blockIdx.z;
  if (m >= M || n >= N) return;
  A += z * sA;
  B += z * sB;
  C += z * sC;
  const float* R = ep.residual ? ep.residual + z * ep.residual_batch_stride : nullptr;
  float acc = 0.0f;
  for (int k = 0; k < K; ++k) acc = fmaf(A[m * lda + k], trans_b ? B[n * ldb + k] : B[(int64_t)k * ldb + n], acc);
  C[m * ldc + n] = epilogue(acc, m, n, ep, R, ep.ldr);
}

constexpr int kBM = kTileM, kBN = kTileN, kBK = kTileK, kThreads = kTileThreads;

// Four elements of a row-major matrix X at (row, col..col+3), zero outside rows x cols.
__device__ __forceinline__ void load4_row(const float* X, int64_t ld, int row, int col, int rows, int cols, bool vec,
                                          float out[4]) {
  if (row < rows && vec && col + 3 < cols) {
    const float4 v = __ldg(reinterpret_cast<const float4*>(X + row * ld + col));
    out[0] = v.x, out[1] = v.y, out[2] = v.z, out[3] = v.w;
    return;
  }
  for (int i = 0; i < 4; ++i) out[i] = (row < rows && col + i < cols) ? __ldg(X + row * ld + col + i) : 0.0f;
}

__global__ void __launch_bounds__(kThreads)
    sgemm_kernel2(int M, int N, int K, const float* __restrict__ A, int64_t lda, int64_t sA,
                  const float* __restrict__ B, int64_t ldb, int64_t sB, bool trans_b, float* __restrict__ C,
                  int64_t ldc, int64_t sC, GemmEpilogue ep) {
  __shared__ __align__(16) float As[2][kBK][kBM];  // A tile transposed: As[k][m]
  __shared__ __align__(16) float Bs[2][kBK][kBN];  // Bs[k][n]
  const int z = blockIdx.z;
  A += z * sA;
  B += z * sB;
  C += z * sC;
  const float* R = ep.residual ? ep.residual + z * ep.residual_batch_stride : nullptr;
  const int m0 = blockIdx.y * kBM, n0 = blockIdx.x * kBN;
  const int t = threadIdx.x, tx = t % 16, ty = t / 16;
  // Global loads: A and a transposed B as 128 rows x 8 k (thread: row t/2, k (t%2)*4 ..+3);
  // a plain B as 8 k x 128 columns (thread: k t/32, columns (t%32)*4 ..+3).
  const bool vec_a = lda % 4 == 0 && (reinterpret_cast<uintptr_t>(A) % 16) == 0;
  const bool vec_b = ldb % 4 == 0 && (reinterpret_cast<uintptr_t>(B) % 16) == 0;
  const int ar = t / 2, ak = (t % 2) * 4, bk = t / 32, bn = (t % 32) * 4;
  float ra[4], rb[4];
  auto load = [&](int k0) {
    load4_row(A, lda, m0 + ar, k0 + ak, M, K, vec_a, ra);
    if (trans_b)
      load4_row(B, ldb, n0 + ar, k0 + ak, N, K, vec_b, rb);
    else
      load4_row(B, ldb, k0 + bk, n0 + bn, K, N, vec_b, rb);
  };
  auto store = [&](int buf) {
    for (int i = 0; i < 4; ++i) As[buf][ak + i][ar] = ra[i];
    if (trans_b) {
      for (int i = 0; i < 4; ++i) Bs[buf][ak + i][ar] = rb[i];
    } else {
      *reinterpret_cast<float4*>(&Bs[buf][bk][bn]) = make_float4(rb[0], rb[1], rb[2], rb[3]);
    }
  };
  float acc[8][8];
  tile_zero(acc);
  const int ktiles = (K + kBK - 1) / kBK;
  load(0);
  store(0);
  __syncthreads();
  for (int kt = 0; kt < ktiles; ++kt) {
    const int cur = kt & 1;
    if (kt + 1 < ktiles) load((kt + 1) * kBK);
    tile_fma(As[cur], Bs[cur], tx, ty, acc);
    if (kt + 1 < ktiles) store(cur ^ 1);
    __syncthreads();
  }
#pragma unroll
  for (int i = 0; i < 8; ++i) {
    const int m = m0 + tile_row(ty, i);
    if (m >= M) continue;
#pragma unroll
    for (int j = 0; j < 8; ++j) {
      const int n = n0 + tile_row(tx, j);
      if (n < N) C[m * ldc + n] = epilogue(acc[i][j], m, n, ep, R, ep.ldr);
    }
  }
}

void sgemm(int version, int M, int N, int K, const float* A, int64_t lda, int64_t sA, const float* B, int64_t ldb,
           int64_t sB, bool trans_b, float* C, int64_t ldc, int64_t sC, int batch, const GemmEpilogue& ep,
           void* stream) {
  if (M <= 0 || N <= 0 || batch <= 0) return;
  if (version == 1) {
    const dim3 block(16, 16);
    const dim3 grid(ceil_div(N, 16), ceil_div(M, 16), batch);
    PYCNN_LAUNCH(sgemm_kernel1, grid, block, 0, stream, M, N, K, A, lda, sA, B, ldb, sB, trans_b, C, ldc, sC, ep);
  } else if (version == 2) {
    const dim3 grid(ceil_div(N, kBN), ceil_div(M, kBM), batch);
    PYCNN_LAUNCH(sgemm_kernel2, grid, dim3(kThreads), 0, stream, M, N, K, A, lda, sA, B, ldb, sB, trans_b, C, ldc, sC,
                 ep);
  } else {
    throw std::invalid_argument("sgemm: version must be 1 or 2, got " + std::to_string(version));
  }
}

}  // namespace cuda
}  // namespace pycnn
