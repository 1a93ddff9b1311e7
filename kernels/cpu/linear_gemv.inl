// linear for small batches, one template per ISA (linear_gemv__<isa>.cpp):
// y (N, Out) = x (N, In) W^T + b, W (Out, In) row-major as PyTorch stores it, N <= 16.
// Bound by reading W once (AlexNet's fc6 is 151 MB): each thread takes a block of W's rows and
// streams each row once in V::W-wide chunks, multiplying it into one accumulator per x row; x
// (N x In floats, 295 KB for N = 8, In = 9216) stays in L2. RB W rows are done together (see
// gemv_rows), which also gives at least 4 independent FMA chains when the batch is tiny.
#include <algorithm>
#include <cstdint>

#include "pycnn/parallel.h"
#include "simd.h"

namespace pycnn {

template <class V, int NB, int RB>
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
    for (int r = 0; r < rb; ++r)
      for (int j = 0; j < NB; ++j) {
        alignas(64) float lanes[W];
        V::storeu(lanes, acc[r][j]);
        float s = 0.0f;
        for (int l = 0; l < W; ++l) s += lanes[l];
        s += b ? b[o + r] : 0.0f;
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

template <class V>
static void linear_gemv(int64_t N, int64_t In, int64_t Out, const float* x, const float* w, const float* b, float* y,
                        bool relu) {
  const int nt = threads_for(2.0 * N * In * Out, Out);
  parallel_run(nt, [&] {
    int64_t o0, o1;
    split_range(Out, omp_get_num_threads(), omp_get_thread_num(), o0, o1);
    // x rows in blocks of up to 8 (8 accumulators); rows of W re-read per block only when N > 8
    for (int64_t n0 = 0; n0 < N; n0 += 8) {
      const int nb = (int)std::min<int64_t>(8, N - n0);
      const float* xb = x + n0 * In;
      float* yb = y + n0 * Out;
      switch (nb) {
        case 1:
          gemv_block<V, 1, gemv_rows<V>(1)>(o0, o1, In, Out, xb, w, b, yb, relu);
          break;
        case 2:
          gemv_block<V, 2, gemv_rows<V>(2)>(o0, o1, In, Out, xb, w, b, yb, relu);
          break;
        case 3:
          gemv_block<V, 3, gemv_rows<V>(3)>(o0, o1, In, Out, xb, w, b, yb, relu);
          break;
        case 4:
          gemv_block<V, 4, gemv_rows<V>(4)>(o0, o1, In, Out, xb, w, b, yb, relu);
          break;
        case 5:
          gemv_block<V, 5, gemv_rows<V>(5)>(o0, o1, In, Out, xb, w, b, yb, relu);
          break;
        case 6:
          gemv_block<V, 6, gemv_rows<V>(6)>(o0, o1, In, Out, xb, w, b, yb, relu);
          break;
        case 7:
          gemv_block<V, 7, gemv_rows<V>(7)>(o0, o1, In, Out, xb, w, b, yb, relu);
          break;
        default:
          gemv_block<V, 8, gemv_rows<V>(8)>(o0, o1, In, Out, xb, w, b, yb, relu);
          break;
      }
    }
  });
}

#define PYCNN_LINEAR_ISA(isa)                                                                                 \
  void linear_gemv__##isa(int64_t N, int64_t In, int64_t Out, const float* x, const float* w, const float* b, \
                          float* y, bool relu) {                                                              \
    linear_gemv<simd::isa>(N, In, Out, x, w, b, y, relu);                                                     \
  }

}  // namespace pycnn
