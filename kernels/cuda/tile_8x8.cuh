// The register tile shared by sgemm_kernel2 and conv2d_igemm_kernel1: 256 threads compute a
// 128x128 block of C, thread (tx, ty) = (t % 16, t / 16) owning rows ty*4+i and 64+ty*4+i and
// columns tx*4+j and 64+tx*4+j (i, j < 4), so each shared-memory read is a conflict-free float4.
// As[k][m] and Bs[k][n] are one K step of 8 (A transposed into shared memory, B as is).
#pragma once
#include "cuda_common.cuh"

namespace pycnn {
namespace cuda {

constexpr int kTileM = 128, kTileN = 128, kTileK = 8, kTileThreads = 256;

__device__ __forceinline__ void tile_zero(float (&acc)[8][8]) {
#pragma unroll
  for (int i = 0; i < 8; ++i)
#pragma unroll
    for (int j = 0; j < 8; ++j) acc[i][j] = 0.0f;
}

// acc += As^T Bs over the K step.
__device__ __forceinline__ void tile_fma(const float (*As)[kTileM], const float (*Bs)[kTileN], int tx, int ty,
                                         float (&acc)[8][8]) {
#pragma unroll
  for (int k = 0; k < kTileK; ++k) {
    const float4 a0 = *reinterpret_cast<const float4*>(&As[k][ty * 4]);
    const float4 a1 = *reinterpret_cast<const float4*>(&As[k][64 + ty * 4]);
    const float4 b0 = *reinterpret_cast<const float4*>(&Bs[k][tx * 4]);
    const float4 b1 = *reinterpret_cast<const float4*>(&Bs[k][64 + tx * 4]);
    const float a[8] = {a0.x, a0.y, a0.z, a0.w, a1.x, a1.y, a1.z, a1.w};
    const float b[8] = {b0.x, b0.y, b0.z, b0.w, b1.x, b1.y, b1.z, b1.w};
#pragma unroll
    for (int i = 0; i < 8; ++i)
#pragma unroll
      for (int j = 0; j < 8; ++j) acc[i][j] = fmaf(a[i], b[j], acc[i][j]);
  }
}

// The block-relative row (or column) of a thread's i-th accumulator row (column).
__device__ __forceinline__ int tile_row(int ty, int i) { return i < 4 ? ty * 4 + i : 64 + ty * 4 + i - 4; }

}  // namespace cuda
}  // namespace pycnn
