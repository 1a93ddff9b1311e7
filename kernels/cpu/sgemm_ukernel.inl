// The SGEMM micro-kernel, written once over a SIMD type V and instantiated per ISA by
// sgemm_ukernel__<isa>.cpp. MR rows x NV vectors of C stay in registers for the whole kc loop:
// avx512 uses 12 x 2 zmm or 8 x 3 zmm (24 accumulators), avx2 6 x 2 ymm (12), leaving registers
// for the B vectors and the broadcast A element. Layouts: A panel is kc x MR; B is kc rows of at least
// NV*W floats, ldb apart: a packed panel (ldb = the panel width NR) or, for a B that exists as a
// row-major matrix (a 1x1 convolution's input), that matrix itself (ldb = its row stride).
#pragma once
#include "eltwise_unary.inl"
#include "sgemm.h"
#include "simd.h"

namespace pycnn {

// MRC <= MR: rows computed of an MR-row panel (a matrix's last panel with at most MRC real rows:
// Kim's 100 filters leave 4 in the 13th panel of 8, which paid for 8).
template <class V, int MR, int NV, int MRC = MR>
static void sgemm_ukernel_impl(int64_t kc, const float* __restrict A, const float* __restrict B, int64_t ldb,
                               float* __restrict C, int64_t ldc, int mr, int nr, bool accumulate, bool last,
                               const Epilogue& ep) {
  constexpr int W = V::W;
  // C rows are ldc apart and usually cold: start fetching them now so the epilogue does not
  // stall on MR cache misses after the kc loop.
  for (int i = 0; i < mr; ++i)
#pragma GCC unroll 4
    for (int off = 0; off < NV * W; off += 16) __builtin_prefetch(C + i * ldc + off, 1, 3);
  // Same for the residual the last depth block adds (ResNet's join: 8 MR-row misses per
  // block otherwise).
  if (last && ep.residual)
    for (int i = 0; i < mr; ++i)
#pragma GCC unroll 4
      for (int off = 0; off < NV * W; off += 16) __builtin_prefetch(ep.residual + i * ep.ldr + off, 0, 3);
  typename V::reg acc[MRC][NV];
#pragma GCC unroll 32
  for (int i = 0; i < MRC; ++i)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) acc[i][v] = V::zero();

  // One k step; bc (Epilogue::b_copy, a literal null on the other paths) gets B's row stored.
  auto step = [&](int64_t k, float* bc) __attribute__((always_inline)) {
    typename V::reg b[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) {
      b[v] = V::loadu(B + k * ldb + v * W);
      if (bc) V::storeu(bc + (k * NV + v) * W, b[v]);
    }
#pragma GCC unroll 32
    for (int i = 0; i < MRC; ++i) {
      typename V::reg a = V::set1(A[k * MR + i]);
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) acc[i][v] = V::fmadd(a, b[v], acc[i][v]);
    }
  };
  if (float* bc = ep.b_copy) {  // see Epilogue::b_copy
#pragma GCC unroll 2
    for (int64_t k = 0; k < kc; ++k) step(k, bc);
  } else if (const float* pf = ep.prefetch) {  // see Epilogue::prefetch
#pragma GCC unroll 2
    for (int64_t k = 0; k < kc; ++k) {
      __builtin_prefetch(pf + k * MR, 0, 2);
      step(k, nullptr);
    }
  } else {
#pragma GCC unroll 2
    for (int64_t k = 0; k < kc; ++k) step(k, nullptr);
  }

  const bool full = (mr == MR) && (nr == NV * W);
  const typename V::reg zero = V::zero();
  const bool act = last && ep.act.active(), post = last && ep.act.fn >= 0;
  const typename V::reg lo = V::set1(ep.act.lo), hi = V::set1(ep.act.hi);
  for (int i = 0; i < mr; ++i) {
    float* c = C + i * ldc;
    const typename V::reg brow = (last && ep.bias_row) ? V::set1(ep.bias_row[i]) : zero;
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) {
      int n = nr - v * W;
      if (n <= 0) break;
      if (n > W) n = W;
      typename V::reg r = acc[i][v];
      const bool whole = full || n == W;
      if (accumulate) r = V::add(r, whole ? V::loadu(c + v * W) : V::loadu_n(c + v * W, n));
      if (last) {
        if (ep.residual) {
          const float* rr = ep.residual + i * ep.ldr + v * W;
          r = V::add(r, whole ? V::loadu(rr) : V::loadu_n(rr, n));
        }
        if (ep.bias_row) r = V::add(r, brow);
        if (ep.bias_col) r = V::add(r, whole ? V::loadu(ep.bias_col + v * W) : V::loadu_n(ep.bias_col + v * W, n));
        if (act) r = V::clamp(r, lo, hi);
      }
      if (whole)
        V::storeu(c + v * W, r);
      else
        V::storeu_n(c + v * W, r, n);
    }
    if (post) unary_detail::post(ep.act, c, nr);  // the row just stored, in L1
  }
}

// A panel's last few columns (nr <= NC) for A panels of MR <= V::W rows: the vectors run down the
// rows (one vector of the A panel per k) and each B value is broadcast, so no lane is spent on
// columns that do not exist (a 14x14 map's 196 columns leave 4 after four 48-column panels; the
// 1-vector kernel used 4 of its 16 lanes and was load-bound: 1x1 convs there ran 7% slower per
// flop than on 192 columns). U accumulator sets (k mod U) keep U FMA chains per column in
// flight: with one column (Winograd F2's 49 tiles on 14x14 maps = 48 + 1) a step is one A load,
// one broadcast and one FMA, so two sets left it bound by the FMA latency. B must hold NC
// readable columns per row (packed panels are zero-padded). With MR < W (avx2's 6-row panels in
// 8-float vectors) a vector load of A's row k also reads W - MR floats of row k + 1, lanes the
// epilogue never reads; the last row is loaded masked, so nothing past the panel is read.
template <class V, int NC, int U, int MR = V::W>
static void sgemm_cols_impl(int64_t kc, const float* __restrict A, const float* __restrict B, int64_t ldb,
                            float* __restrict C, int64_t ldc, int mr, int nr, bool accumulate, bool last,
                            const Epilogue& ep) {
  static_assert(MR <= V::W, "one vector holds a panel's rows");
  const int64_t kwhole = MR == V::W ? kc : kc - 1;  // rows of A loaded as whole vectors
  typename V::reg acc[U][NC];
#pragma GCC unroll 8
  for (int u = 0; u < U; ++u)
#pragma GCC unroll 8
    for (int j = 0; j < NC; ++j) acc[u][j] = V::zero();
  int64_t k = 0;
  for (; k + U <= kwhole; k += U) {
    if (ep.prefetch)  // see Epilogue::prefetch: U * MR floats per step, one prefetch per line
#pragma GCC unroll 8
      for (int f = 0; f < U * MR; f += 16) __builtin_prefetch(ep.prefetch + k * MR + f, 0, 2);
#pragma GCC unroll 8
    for (int u = 0; u < U; ++u) {
      const typename V::reg a = V::loadu(A + (k + u) * MR);
#pragma GCC unroll 8
      for (int j = 0; j < NC; ++j) acc[u][j] = V::fmadd(a, V::set1(B[(k + u) * ldb + j]), acc[u][j]);
    }
  }
  for (int u = 0; k < kc; ++k, ++u) {  // at most U rows: kwhole - k < U, plus the masked one
    const typename V::reg a = k < kwhole ? V::loadu(A + k * MR) : V::loadu_n(A + k * MR, MR);
#pragma GCC unroll 8
    for (int j = 0; j < NC; ++j) acc[u][j] = V::fmadd(a, V::set1(B[k * ldb + j]), acc[u][j]);
  }
#pragma GCC unroll 8
  for (int u = 1; u < U; ++u)
#pragma GCC unroll 8
    for (int j = 0; j < NC; ++j) acc[0][j] = V::add(acc[0][j], acc[u][j]);
  alignas(64) float t[NC][V::W];
#pragma GCC unroll 8
  for (int j = 0; j < NC; ++j) V::storeu(t[j], acc[0][j]);
  // The same epilogue as the row kernel, one element at a time (mr x nr <= MR x NC of them).
  for (int i = 0; i < mr; ++i)
    for (int j = 0; j < nr; ++j) {
      float v = t[j][i];
      if (accumulate) v += C[i * ldc + j];
      if (last) {
        if (ep.residual) v += ep.residual[i * ep.ldr + j];
        if (ep.bias_row) v += ep.bias_row[i];
        if (ep.bias_col) v += ep.bias_col[j];
        v = ep.act.apply(v);  // NaN stays NaN
      }
      C[i * ldc + j] = v;
    }
  if (last && ep.act.fn >= 0)
    for (int i = 0; i < mr; ++i) unary_detail::post(ep.act, C + i * ldc, nr);
}

}  // namespace pycnn
