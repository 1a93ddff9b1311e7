// The SGEMM's packers, written once over a SIMD type V and instantiated per ISA by
// sgemm_pack__<isa>.cpp (PYCNN_SGEMM_PACK_ISA).
//
// pack_transposed: a block whose source runs along k (a row-major A's rows, a transposed B's
// columns) into k-major panels of P floats per k. Layout: dst[k * P + r] = src[r * ld + k] for r < rows, k < kc, and
// 0 for rows <= r < P. Groups of W source rows are read W floats at a time and transposed in
// registers, so every load and store is a whole vector (the scalar loop wrote one float per
// cycle at best, which on a 512 x 4608 A cost a third of the GEMM).
#pragma once
#include <algorithm>
#include <cstdint>

#include "simd.h"

namespace pycnn {
namespace {

template <class V>
void pack_group(const float* __restrict s, int64_t ld, int real, int g0, int n, int P, int64_t kc,
                float* __restrict dst) {
  constexpr int W = V::W;
  typename V::reg r[W];
  for (int64_t k = 0; k < kc; k += W) {
    const int m = kc - k < W ? (int)(kc - k) : W;  // k values this step
#pragma GCC unroll 16
    for (int i = 0; i < W; ++i)
      r[i] = i >= real ? V::zero() : (m == W ? V::loadu(s + i * ld + k) : V::loadu_n(s + i * ld + k, m));
    V::transpose(r);
    float* d = dst + k * P;
    for (int j = 0; j < m; ++j) {
      // A narrow group's row is stored whole too (masked stores are slow on AMD's cores): the
      // W - n floats past it land in the next rows' first columns, which are written after it
      // (see pack_transposed_impl); rows within W floats of the block's end are stored masked.
      if (n == W || (kc - k - j) * P - g0 >= W)
        V::storeu(d + (int64_t)j * P, r[j]);
      else
        V::storeu_n(d + (int64_t)j * P, r[j], n);
    }
  }
}

template <class V>
void pack_transposed_impl(const float* __restrict src, int64_t ld, int rows, int P, int64_t kc, float* __restrict dst) {
  constexpr int W = V::W;
  auto group = [&](int g0) {
    const int n = P - g0 < W ? P - g0 : W;                                  // lanes of each dst row
    const int real = rows - g0 <= 0 ? 0 : (rows - g0 < W ? rows - g0 : W);  // source rows of the group
    pack_group<V>(src + (int64_t)g0 * ld, ld, real, g0, n, P, kc, dst + g0);
  };
  // The narrow last group first: its whole-vector stores spill into the next row's first
  // W - n columns, which are its own (one group) or a whole group's, written after it.
  const int whole = P / W * W;  // lanes of the whole groups
  if (whole < P) group(whole);
  for (int g0 = 0; g0 < whole; g0 += W) group(g0);
}

// pack_rows: B(k, j) = src[k * ld + j] (a row-major matrix, a 1x1 convolution's input) into
// NR-column panels, dst[p * kc * NR + (k - k0) * NR + jj] = B(k, j0 + p * NR + jj), zero for
// columns >= j0 + nc. Row by row over all panels: each row is read as one run of nc floats (panel
// by panel read NR floats per row, rows a page or more apart), and rows a few ahead are
// prefetched: at batch 8 x comes from DRAM, where page-strided 128-byte reads are slow.
template <class V>
void pack_rows_impl(const float* src, int64_t ld, int64_t k0, int64_t kc, int64_t j0, int64_t nc, int NR, float* dst) {
  constexpr int64_t kAhead = 4;
  for (int64_t k = 0; k < kc; ++k) {
    const float* s = src + (k0 + k) * ld + j0;
    if (k + kAhead < kc)
      for (int64_t off = 0; off < nc; off += 16) __builtin_prefetch(s + kAhead * ld + off, 0, 2);
    for (int64_t pj = 0; pj * NR < nc; ++pj) {
      const int64_t nr = std::min<int64_t>(NR, nc - pj * NR);
      float* d = dst + pj * kc * NR + k * NR;
      copy_floats<V>(d, s + pj * NR, nr);
      std::fill(d + nr, d + NR, 0.0f);
    }
  }
}

}  // namespace

// The table entries pack_transposed__<isa> and pack_rows__<isa> (cpu_kernels.h) of one ISA build.
#define PYCNN_SGEMM_PACK_ISA(isa)                                                                             \
  void pack_transposed__##isa(const float* src, int64_t ld, int rows, int P, int64_t kc, float* dst) {        \
    pack_transposed_impl<simd::isa>(src, ld, rows, P, kc, dst);                                               \
  }                                                                                                           \
  void pack_rows__##isa(const float* src, int64_t ld, int64_t k0, int64_t kc, int64_t j0, int64_t nc, int NR, \
                        float* dst) {                                                                         \
    pack_rows_impl<simd::isa>(src, ld, k0, kc, j0, nc, NR, dst);                                              \
  }

}  // namespace pycnn
