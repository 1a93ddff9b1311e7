// linear for small batches, one template per ISA (linear_gemv__<isa>.cpp):
// y (N, Out) = x (N, In) W^T + b, W (Out, In) row-major as PyTorch stores it, N <= 16.
// Bound by reading W once (AlexNet's fc6 is 151 MB): each thread takes a block of W's rows and
// streams each row once in V::W-wide chunks, multiplying it into one accumulator per x row; x
// (N x In floats, 295 KB for N = 8, In = 9216) stays in L2. RB W rows are done together (see
// gemv_rows), which also gives at least 4 independent FMA chains when the batch is tiny.
#include <algorithm>
#include <cstdint>

#include "ops_cpu.h"
#include "pycnn/parallel.h"
#include "simd.h"

namespace pycnn {

// PF: the next pass's RB rows of W prefetched into L2 as this pass reads its own.
template <class V, int NB, int RB, bool PF>
static void gemv_block(int64_t o0, int64_t o1, int64_t In, int64_t Out, const float* x, const float* w, const float* b,
                       float* y, bool relu) {
  using reg = typename V::reg;
  constexpr int W = V::W;
  for (int64_t o = o0; o < o1; o += RB) {
    const int rb = (int)std::min<int64_t>(RB, o1 - o);
    reg acc[RB][NB];
    for (int r = 0; r < RB; ++r)
      for (int j = 0; j < NB; ++j) acc[r][j] = V::zero();
    int64_t i = 0;
    for (; i + W <= In; i += W) {
      reg xv[NB];
      for (int j = 0; j < NB; ++j) xv[j] = V::loadu(x + j * In + i);
      for (int r = 0; r < RB; ++r) {
        if (r >= rb) break;
        if (PF && o + RB + r < o1) __builtin_prefetch(w + (o + RB + r) * In + i, 0, 2);
        const reg wv = V::loadu(w + (o + r) * In + i);
        for (int j = 0; j < NB; ++j) acc[r][j] = V::fmadd(wv, xv[j], acc[r][j]);
      }
    }
    if (i < In) {
      const int n = (int)(In - i);
      for (int r = 0; r < rb; ++r) {
        const reg wv = V::loadu_n(w + (o + r) * In + i, n);
        for (int j = 0; j < NB; ++j) acc[r][j] = V::fmadd(wv, V::loadu_n(x + j * In + i, n), acc[r][j]);
      }
    }
    // The RB * NB lane sums at once: accumulator r * NB + j as row of a W x W transpose, whose
    // rows then add up to one vector of the sums (lane r * NB + j). One at a time, each sum was a
    // store and W dependent scalar adds: at batch 8 (16 sums per 2 rows of W) that was as long as
    // the FMAs of a 1280-wide row.
    static_assert(RB * NB <= W, "the accumulators fit one transpose");
    reg sumv[W];
    for (int r = 0; r < RB; ++r)
      for (int j = 0; j < NB; ++j) sumv[r * NB + j] = acc[r][j];
    for (int k = RB * NB; k < W; ++k) sumv[k] = V::zero();
    V::transpose(sumv);
    for (int k = 1; k < W; ++k) sumv[0] = V::add(sumv[0], sumv[k]);
    alignas(64) float sums[W];
    V::storeu(sums, sumv[0]);
    for (int r = 0; r < rb; ++r)
      for (int j = 0; j < NB; ++j) {
        const float s = sums[r * NB + j] + (b ? b[o + r] : 0.0f);
        y[j * Out + o + r] = (relu && s < 0.0f) ? 0.0f : s;  // NaN passes (s < 0 is false)
      }
  }
}

// W rows done together for NB x rows: every x vector loaded is used for RB rows, so with 32
// registers (AVX-512) RB * NB accumulators up to 16 (at batch 8 one row per pass loaded 8 x
// vectors from L2 per W vector and fell to half the bandwidth). AVX2 (16 registers) keeps
// RB * NB <= 8.
template <class V>
constexpr int gemv_rows(int nb) {
  return V::W == 16 ? (nb <= 4 ? 4 : 2) : (nb <= 2 ? 4 : nb <= 4 ? 2 : 1);
}

// One block of nb <= 8 x rows against the thread's W rows [o0, o1); PF for blocks of 5 or more
// (two W rows a pass on AVX-512, one on AVX2: with four rows a pass the streams keep enough
// loads in flight without it).
template <class V, bool PF>
static void gemv_x_block(int nb, int64_t o0, int64_t o1, int64_t In, int64_t Out, const float* x, const float* w,
                         const float* b, float* y, bool relu) {
  switch (nb) {
    case 1:
      return gemv_block<V, 1, gemv_rows<V>(1), false>(o0, o1, In, Out, x, w, b, y, relu);
    case 2:
      return gemv_block<V, 2, gemv_rows<V>(2), false>(o0, o1, In, Out, x, w, b, y, relu);
    case 3:
      return gemv_block<V, 3, gemv_rows<V>(3), false>(o0, o1, In, Out, x, w, b, y, relu);
    case 4:
      return gemv_block<V, 4, gemv_rows<V>(4), false>(o0, o1, In, Out, x, w, b, y, relu);
    case 5:
      return gemv_block<V, 5, gemv_rows<V>(5), PF>(o0, o1, In, Out, x, w, b, y, relu);
    case 6:
      return gemv_block<V, 6, gemv_rows<V>(6), PF>(o0, o1, In, Out, x, w, b, y, relu);
    case 7:
      return gemv_block<V, 7, gemv_rows<V>(7), PF>(o0, o1, In, Out, x, w, b, y, relu);
    default:
      return gemv_block<V, 8, gemv_rows<V>(8), PF>(o0, o1, In, Out, x, w, b, y, relu);
  }
}

template <class V>
static void linear_gemv(int64_t N, int64_t In, int64_t Out, const float* x, const float* w, const float* b, float* y,
                        bool relu) {
  const int nt = threads_for(2.0 * N * In * Out, Out);
  // W from memory (beyond the L3) for 5-8 x rows: a pass's one or two W rows then wait on their
  // loads between the FMAs of the x rows, so the next pass's rows are prefetched into L2 alongside.
  // At batch 1 the bare streams run at memory speed already, and from the L3 the prefetches cost
  // more than they hide.
  const bool pf = N >= 5 && In * Out >= kLinearStreamedFloats;
  parallel_run(nt, [&] {
    int64_t o0, o1;
    split_range(Out, omp_get_num_threads(), omp_get_thread_num(), o0, o1);
    // x rows in blocks of up to 8 (8 accumulators); rows of W re-read per block only when N > 8
    for (int64_t n0 = 0; n0 < N; n0 += 8) {
      const int nb = (int)std::min<int64_t>(8, N - n0);
      if (pf)
        gemv_x_block<V, true>(nb, o0, o1, In, Out, x + n0 * In, w, b, y + n0 * Out, relu);
      else
        gemv_x_block<V, false>(nb, o0, o1, In, Out, x + n0 * In, w, b, y + n0 * Out, relu);
    }
  });
}

// Prepared weights for the bound call (a Graph's linear step, batches of 2-16): W^T in panels of
// NP = 2 V::W output features, wp[p][k][j] = W[p * NP + j][k] (zero past Out), so a panel is one
// sequential stream and each k step's 2 vectors meet up to R x rows as broadcasts: R x 2
// accumulators, no lane sums (the GEMV's transposes). linear_pack returns the floats it needs
// (dst null) or fills dst.
template <class V>
static int64_t linear_pack(int64_t In, int64_t Out, const float* w, float* dst) {
  constexpr int64_t NP = 2 * V::W;
  const int64_t P = (Out + NP - 1) / NP;
  if (!dst) return P * In * NP;
  for (int64_t p = 0; p < P; ++p)
    for (int64_t k = 0; k < In; ++k)
      for (int64_t j = 0; j < NP; ++j) {
        const int64_t o = p * NP + j;
        dst[(p * In + k) * NP + j] = o < Out ? w[o * In + k] : 0.0f;
      }
  return P * In * NP;
}

// Panels [p0, p1) for x rows [0, R): y[r][p NP + j] = sum_k x[r][k] wp[p][k][j] + b, ReLU.
template <class V, int R>
static void panels_rows(int64_t p0, int64_t p1, int64_t In, int64_t Out, const float* x, const float* wp,
                        const float* b, float* y, bool relu) {
  using reg = typename V::reg;
  constexpr int W = V::W, NP = 2 * W;
  for (int64_t p = p0; p < p1; ++p) {
    const float* wk = wp + p * In * NP;
    reg acc[R][2];
    for (int r = 0; r < R; ++r) acc[r][0] = acc[r][1] = V::zero();
    for (int64_t k = 0; k < In; ++k, wk += NP) {
      const reg w0 = V::loadu(wk), w1 = V::loadu(wk + W);
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r) {
        const reg xv = V::set1(x[r * In + k]);
        acc[r][0] = V::fmadd(w0, xv, acc[r][0]);
        acc[r][1] = V::fmadd(w1, xv, acc[r][1]);
      }
    }
    const int64_t o = p * NP;
    const int n0 = (int)std::min<int64_t>(W, Out - o), n1 = (int)std::min<int64_t>(W, Out - o - W);
    const reg b0 = b ? V::loadu_n(b + o, n0) : V::zero();
    const reg b1 = b && n1 > 0 ? V::loadu_n(b + o + W, n1) : V::zero();
    for (int r = 0; r < R; ++r) {
      reg v0 = V::add(acc[r][0], b0), v1 = V::add(acc[r][1], b1);
      if (relu) v0 = V::max0(v0), v1 = V::max0(v1);  // NaN passes
      float* yr = y + r * Out + o;
      V::storeu_n(yr, v0, n0);
      if (n1 > 0) V::storeu_n(yr + W, v1, n1);
    }
  }
}

// x rows per pass: R x 2 accumulators, 2 W vectors and a broadcast in the registers (32 on
// AVX-512: 8 rows; 16 on AVX2: 6).
template <class V>
constexpr int panel_rows_max() {
  return V::W == 16 ? 8 : 6;
}

template <class V, int R = panel_rows_max<V>()>
static void panels_x_block(int nb, int64_t p0, int64_t p1, int64_t In, int64_t Out, const float* x, const float* wp,
                           const float* b, float* y, bool relu) {
  if constexpr (R > 1) {
    if (nb < R) return panels_x_block<V, R - 1>(nb, p0, p1, In, Out, x, wp, b, y, relu);
  }
  panels_rows<V, R>(p0, p1, In, Out, x, wp, b, y, relu);
}

template <class V>
static void linear_panels(int64_t N, int64_t In, int64_t Out, const float* x, const float* wp, const float* b, float* y,
                          bool relu) {
  constexpr int NP = 2 * V::W, RM = panel_rows_max<V>();
  const int64_t P = (Out + NP - 1) / NP;
  const int nt = threads_for(2.0 * N * In * Out, P);
  StealingRanges work(StealingRanges::even(P, nt));
  parallel_run(nt, [&] {
    for (int64_t p = 0; work.next(omp_get_thread_num(), p);)
      for (int64_t n0 = 0; n0 < N; n0 += RM)  // the panel (In x NP floats) re-read from L2 per pass
        panels_x_block<V>((int)std::min<int64_t>(RM, N - n0), p, p + 1, In, Out, x + n0 * In, wp, b, y + n0 * Out,
                          relu);
  });
}

#define PYCNN_LINEAR_ISA(isa)                                                                                    \
  void linear_gemv__##isa(int64_t N, int64_t In, int64_t Out, const float* x, const float* w, const float* b,    \
                          float* y, bool relu) {                                                                 \
    linear_gemv<simd::isa>(N, In, Out, x, w, b, y, relu);                                                        \
  }                                                                                                              \
  int64_t linear_pack__##isa(int64_t In, int64_t Out, const float* w, float* dst) {                              \
    return linear_pack<simd::isa>(In, Out, w, dst);                                                              \
  }                                                                                                              \
  void linear_panels__##isa(int64_t N, int64_t In, int64_t Out, const float* x, const float* wp, const float* b, \
                            float* y, bool relu) {                                                               \
    linear_panels<simd::isa>(N, In, Out, x, wp, b, y, relu);                                                     \
  }

}  // namespace pycnn
