// Winograd F(m x m, 3 x 3) convolution, written once over a SIMD type V and the tile size m,
// instantiated per ISA by conv2d_winograd__<isa>.cpp.
//
// Per group, tiles are processed in chunks of whole tile rows (bounded workspace):
//  1. input transform: for channel c and tile row (n, th), the alpha input rows are gathered into
//     a zero-padded, m-phase-split buffer so that element (i, j) of W consecutive tiles is one
//     contiguous vector (the same trick as the direct kernel); V = B^T d B is computed on vectors
//     of W tiles and stored to Vbuf[xi][c][t] (t = tile index in the chunk);
//  2. alpha^2 GEMMs on our SGEMM: Mbuf[xi] (Kg x T) = U[xi] (Kg x Cg) * Vbuf[xi] (Cg x T);
//  3. output transform: Y = A^T M A on vectors of W tiles, + bias, ReLU, written into y with the
//     partial tiles at the bottom/right edges clipped.
// Coefficients 0 and +-1 of the constant matrices are skipped or turned into add/sub at compile
// time (the loops are fully unrolled over constexpr arrays). NaN/Inf: a NaN input reaches at least
// every output a direct convolution makes NaN and at most the outputs of the tiles whose input
// patch holds it (entries with a zero coefficient skip it); an Inf can become NaN (Inf - Inf) in
// the transforms.
#pragma once
#include <algorithm>
#include <cstring>
#include <vector>

#include "conv2d.h"
#include "pycnn/buffer.h"
#include "pycnn/parallel.h"
#include "simd.h"
#include "winograd_matrices.h"

namespace pycnn {

// out = sum_j coef[j] * in[j] over n terms, with 0 skipped and +-1 as add/sub.
template <class V, int n>
static inline typename V::reg lincomb(const float (&coef)[n], const typename V::reg* in) {
  typename V::reg acc = V::zero();
  bool first = true;
#pragma GCC unroll 8
  for (int j = 0; j < n; ++j) {
    const float c = coef[j];
    if (c == 0.0f) continue;
    if (first) {
      acc = c == 1.0f ? in[j] : V::mul(V::set1(c), in[j]);
      first = false;
    } else if (c == 1.0f) {
      acc = V::add(acc, in[j]);
    } else if (c == -1.0f) {
      acc = V::sub(acc, in[j]);
    } else {
      acc = V::fmadd(V::set1(c), in[j], acc);
    }
  }
  return acc;
}

template <class V, int m>
struct WinogradConv {
  using Mat = WinogradMatrices<m>;
  static constexpr int a = Mat::a;
  static constexpr int W = V::W;

  const ConvParams& p;
  int64_t TH, TW, TWq;

  explicit WinogradConv(const ConvParams& p_) : p(p_) {
    TH = (p.Ho + m - 1) / m;
    TW = (p.Wo + m - 1) / m;
    TWq = (TW + W - 1) / W * W + 2;  // phase length: vector loads at tw0 + j/m stay inside
  }
  int64_t scratch_size() const { return (int64_t)a * m * TWq; }

  // Tile row gr = n*TH + th of channel c (xc points at that image's channel plane); writes V for
  // the row's TW tiles at Vb + xi*vstride + t0.
  void input_row(const float* xc, int64_t th, float* Vb, int64_t vstride, int64_t t0, float* ph) const {
    for (int i = 0; i < a; ++i) {
      const int64_t ih = th * m - p.pad_t + i;
      float* rowph = ph + (int64_t)i * m * TWq;
      if (ih < 0 || ih >= p.H) {
        std::fill(rowph, rowph + m * TWq, 0.0f);
        continue;
      }
      const float* xr = xc + ih * p.W;
      for (int ph_i = 0; ph_i < m; ++ph_i) {
        // o[q] = x[q*m + ph_i - pad_l], zero outside the image: zeros, a gather, zeros.
        float* o = rowph + ph_i * TWq;
        const int64_t base = ph_i - p.pad_l;
        int64_t lo, hi;
        valid_range(base, m, p.W, TWq, lo, hi);
        std::fill(o, o + lo, 0.0f);
        gather_floats<V>(o + lo, xr + base + lo * m, m, hi - lo);
        std::fill(o + hi, o + TWq, 0.0f);
      }
    }
    for (int64_t tw0 = 0; tw0 < TW; tw0 += W) {
      const int nt = (int)std::min<int64_t>(W, TW - tw0);
      typename V::reg d[a][a], t[a][a];
#pragma GCC unroll 8
      for (int i = 0; i < a; ++i)
#pragma GCC unroll 8
        for (int j = 0; j < a; ++j) d[i][j] = V::loadu(ph + ((int64_t)i * m + j % m) * TWq + tw0 + j / m);
      // t[i][b] = sum_j d[i][j] * B[j][b] = sum_j BT[b][j] d[i][j]
#pragma GCC unroll 8
      for (int i = 0; i < a; ++i)
#pragma GCC unroll 8
        for (int b = 0; b < a; ++b) t[b][i] = lincomb<V, a>(Mat::BT[b], d[i]);
      // V[r][b] = sum_i BT[r][i] t[i][b]  (t is stored transposed: t[b][i])
#pragma GCC unroll 8
      for (int r = 0; r < a; ++r)
#pragma GCC unroll 8
        for (int b = 0; b < a; ++b) {
          const typename V::reg v = lincomb<V, a>(Mat::BT[r], t[b]);
          float* dst = Vb + (int64_t)(r * a + b) * vstride + t0 + tw0;
          if (nt == W)
            V::storeu(dst, v);
          else
            V::storeu_n(dst, v, nt);
        }
    }
  }

  // Output tile row th of channel k: M at Mb + xi*mstride + t0; y row plane yk (Ho x Wo).
  void output_row(const float* Mb, int64_t mstride, int64_t t0, int64_t th, float bias, bool relu,
                  float* yk) const {
    for (int64_t tw0 = 0; tw0 < TW; tw0 += W) {
      const int nt = (int)std::min<int64_t>(W, TW - tw0);
      typename V::reg M[a][a], t[m][a];
#pragma GCC unroll 8
      for (int i = 0; i < a; ++i)
#pragma GCC unroll 8
        for (int j = 0; j < a; ++j) {
          const float* src = Mb + (int64_t)(i * a + j) * mstride + t0 + tw0;
          M[i][j] = nt == W ? V::loadu(src) : V::loadu_n(src, nt);
        }
      // t[jj][i] = sum_b M[i][b] AT[jj][b]
#pragma GCC unroll 8
      for (int i = 0; i < a; ++i)
#pragma GCC unroll 8
        for (int jj = 0; jj < m; ++jj) t[jj][i] = lincomb<V, a>(Mat::AT[jj], M[i]);
      const typename V::reg bv = V::set1(bias);
#pragma GCC unroll 8
      for (int ii = 0; ii < m; ++ii) {
        const int64_t oh = th * m + ii;
        if (oh >= p.Ho) break;
        // Output column (tw0 + q)*m + jj of this row takes lane q of Y[ii][jj]: a strided
        // scatter per jj, clipped at the right edge.
        float* yr = yk + oh * p.Wo + tw0 * m;
        const int64_t nw = std::min<int64_t>((int64_t)nt * m, p.Wo - tw0 * m);
#pragma GCC unroll 8
        for (int jj = 0; jj < m; ++jj) {
          typename V::reg y = V::add(lincomb<V, a>(Mat::AT[ii], t[jj]), bv);
          if (relu) y = V::max0(y);
          const int64_t cnt = nw > jj ? (nw - jj + m - 1) / m : 0;
          if (cnt > 0) V::scatter_n(yr + jj, m, y, (int)cnt);
        }
      }
    }
  }

  // Full convolution with prepared weights.
  void run(const float* x, const WinogradWeights& U, const float* bias, float* y, bool relu) const {
    const int64_t Cg = p.Cg(), Kg = p.Kg(), rows = p.N * TH;
    const int64_t a2 = (int64_t)a * a;
    // Chunk: whole tile rows, about 1536 tiles or a 24 MiB workspace, whichever is smaller.
    const int64_t per_row = a2 * (Cg + Kg) * TW * (int64_t)sizeof(float);
    int64_t chunk_rows = std::max<int64_t>(1, std::min<int64_t>((24ll << 20) / std::max<int64_t>(per_row, 1),
                                                                 (1536 + TW - 1) / TW));
    chunk_rows = std::min(chunk_rows, rows);
    const int64_t Tmax = chunk_rows * TW;
    float* Vbuf = workspace(kSlotConvIn, (size_t)(a2 * Cg * Tmax));
    float* Mbuf = workspace(kSlotConvOut, (size_t)(a2 * Kg * Tmax));
    const int nt = threads_for(p.flops(), 1 << 30);
    for (int64_t g = 0; g < p.groups; ++g) {
      for (int64_t r0 = 0; r0 < rows; r0 += chunk_rows) {
        const int64_t r1 = std::min(rows, r0 + chunk_rows), T = (r1 - r0) * TW;
#pragma omp parallel num_threads(nt)
        {
          std::vector<float> ph((size_t)scratch_size());
#pragma omp for schedule(static)
          for (int64_t it = 0; it < Cg * (r1 - r0); ++it) {
            const int64_t c = it / (r1 - r0), gr = r0 + it % (r1 - r0);
            const int64_t n = gr / TH, th = gr % TH;
            input_row(x + ((n * p.C + g * Cg + c) * p.H) * p.W, th, Vbuf + c * T, Cg * T,
                      (gr - r0) * TW, ph.data());
          }
        }
        std::vector<MatrixBSource> srcs;
        srcs.reserve((size_t)a2);
        std::vector<GemmProblem> probs;
        for (int64_t xi = 0; xi < a2; ++xi) {
          srcs.emplace_back(Vbuf + xi * Cg * T, T, 1);
          probs.push_back(GemmProblem{&U.U[(size_t)(g * a2 + xi)], &srcs.back(), T,
                                      Mbuf + xi * Kg * T, T, nullptr, nullptr});
        }
        sgemm_run(probs, Kg, Cg, false);
#pragma omp parallel num_threads(nt)
        {
#pragma omp for schedule(static)
          for (int64_t it = 0; it < Kg * (r1 - r0); ++it) {
            const int64_t k = it / (r1 - r0), gr = r0 + it % (r1 - r0);
            const int64_t n = gr / TH, th = gr % TH;
            const int64_t kk = g * Kg + k;
            output_row(Mbuf + k * T, Kg * T, (gr - r0) * TW, th, bias ? bias[kk] : 0.0f, relu,
                       y + (n * p.K + kk) * p.Ho * p.Wo);
          }
        }
      }
    }
  }
};

}  // namespace pycnn
