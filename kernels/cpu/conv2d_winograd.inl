// Winograd F(mh x mw, rh x rw) convolution, written once over a SIMD type V and the tile: square
// F(m x m, r x r) (r = 3, 5) and one-dimensional F(1 x m, 1 x r) / F(m x 1, r x 1) (Inception's
// 1x7 and 7x1, 1-D signals), the other axis then F(1, 1) (alpha 1, every matrix the identity); the tiles are
// with_winograd_tile's (winograd_matrices.h), instantiated per ISA by conv2d_winograd__<isa>.cpp.
// alpha = m + r - 1 per axis (ah, aw), up to 10: the loops over it are unrolled whole (16), so
// every coefficient is a compile-time constant.
//
// Tiles are numbered in (n, th, tw) order and processed in chunks (bounded workspace), per group:
//  1. input transform: W consecutive tiles form a vector group whatever rows or images they span;
//     element (i, j) of their input patches is one masked gather (the masks are the padding),
//     V = B^T d B is computed on those vectors and stored to Vbuf[xi][c][t] (t = tile in chunk);
//  2. ah * aw GEMMs on our SGEMM: Mbuf[xi] (Kg x T) = U[xi] (Kg x Cg) * Vbuf[xi] (Cg x T);
//  3. output transform: Y = A^T M A on vectors of W tiles, + bias, ReLU, scattered into y with
//     masks that clip the partial tiles at the bottom/right edges.
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
#include "eltwise_unary.inl"
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
#pragma GCC unroll 16
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

template <class V, int mh, int rh, int mw, int rw>
struct WinogradConv {
  using MatH = WinogradMatrices<mh, rh>;  // along the rows (H)
  using MatW = WinogradMatrices<mw, rw>;  // along the columns (W)
  static constexpr int ah = MatH::a, aw = MatW::a;
  static constexpr int W = V::W;

  // W consecutive tiles of the flattened (n, th, tw) order, wherever they fall (several tile
  // rows or images), so every lane works even on 7x7 maps. Per lane: the offset of the tile's
  // top-left input and output pixel relative to image n0's channel plane, and bit masks of the
  // lanes whose input row/column (output row/column) lies inside the image. Built once per chunk
  // and shared by every channel.
  struct Group {
    int64_t n0 = 0;
    int nt = 0;
    alignas(64) int32_t xoff[W];
    alignas(64) int32_t yoff[W];
    uint32_t rin[ah], cin[aw], rout[mh], cout[mw];
  };

  const ConvParams& p;
  int64_t TH, TW;
  bool cross_images;  // lane offsets across images fit in int32
  // y channel-blocked, NCHW16c (N, K/16, Ho, Wo, 16) (conv2d.h): a pixel's 16 channels are one
  // run, so Group::yoff are pixel offsets x 16 and a channel's base is its block plus k % 16.
  // (A Graph keeps ResNet's residual stream in that layout; a bottleneck's 3x3 writes it for
  // the 1x1 expansion after it.) No residual with it.
  bool yblk;

  explicit WinogradConv(const ConvParams& p_, bool yblk_ = false) : p(p_), yblk(yblk_) {
    TH = (p.Ho + mh - 1) / mh;
    TW = (p.Wo + mw - 1) / mw;
    const int64_t span = W * std::max(p.C * p.H * p.W, p.y_image_stride());
    cross_images = span < (int64_t(1) << 31);
  }

  // Groups covering tiles [g0, g1) (global flattened indices), in order.
  void make_groups(int64_t g0, int64_t g1, std::vector<Group>& out) const {
    out.clear();
    const int64_t per_image = TH * TW;
    for (int64_t t = g0; t < g1;) {
      int64_t end = std::min(g1, t + W);
      if (!cross_images) end = std::min(end, (t / per_image + 1) * per_image);
      Group g;
      g.n0 = t / per_image;
      g.nt = (int)(end - t);
      for (int i = 0; i < ah; ++i) g.rin[i] = 0;
      for (int i = 0; i < aw; ++i) g.cin[i] = 0;
      for (int i = 0; i < mh; ++i) g.rout[i] = 0;
      for (int i = 0; i < mw; ++i) g.cout[i] = 0;
      for (int l = 0; l < W; ++l) {
        g.xoff[l] = g.yoff[l] = 0;
        if (l >= g.nt) continue;
        const int64_t tt = t + l, n = tt / per_image, th = (tt % per_image) / TW, tw = tt % TW;
        const int64_t r0 = th * mh - p.pad_t, c0 = tw * mw - p.pad_l;
        g.xoff[l] = (int32_t)((n - g.n0) * p.C * p.H * p.W + r0 * p.W + c0);
        g.yoff[l] = (int32_t)((n - g.n0) * p.y_image_stride() + (th * mh * p.Wo + tw * mw) * (yblk ? 16 : 1));
        for (int i = 0; i < ah; ++i)
          if (r0 + i >= 0 && r0 + i < p.H) g.rin[i] |= 1u << l;
        for (int i = 0; i < aw; ++i)
          if (c0 + i >= 0 && c0 + i < p.W) g.cin[i] |= 1u << l;
        for (int i = 0; i < mh; ++i)
          if (th * mh + i < p.Ho) g.rout[i] |= 1u << l;
        for (int i = 0; i < mw; ++i)
          if (tw * mw + i < p.Wo) g.cout[i] |= 1u << l;
      }
      out.push_back(g);
      t = end;
    }
  }

  // V = B^T d B for one group and input channel ch (0 <= ch < C); stored to
  // Vb[xi * vstride + t] for the group's tiles, t from tv.
  void input_group(const float* x, const Group& g, int64_t ch, float* Vb, int64_t vstride, int64_t tv) const {
    const float* base = x + (g.n0 * p.C + ch) * p.H * p.W;
    typename V::reg d[ah][aw], t[aw][ah];
#pragma GCC unroll 16
    for (int i = 0; i < ah; ++i)
#pragma GCC unroll 16
      for (int j = 0; j < aw; ++j) d[i][j] = V::gather_masked(base + i * p.W + j, g.xoff, g.rin[i] & g.cin[j]);
    // t[b][i] = sum_j BTw[b][j] d[i][j]
#pragma GCC unroll 16
    for (int i = 0; i < ah; ++i)
#pragma GCC unroll 16
      for (int b = 0; b < aw; ++b) t[b][i] = lincomb<V, aw>(MatW::BT[b], d[i]);
    // V[q][b] = sum_i BTh[q][i] t[b][i]
#pragma GCC unroll 16
    for (int q = 0; q < ah; ++q)
#pragma GCC unroll 16
      for (int b = 0; b < aw; ++b) {
        const typename V::reg v = lincomb<V, ah>(MatH::BT[q], t[b]);
        float* dst = Vb + (int64_t)(q * aw + b) * vstride + tv;
        if (g.nt == W)
          V::storeu(dst, v);
        else
          V::storeu_n(dst, v, g.nt);
      }
  }

  // The first half of the output transform for one group and output channel: M (ah x aw, lanes =
  // the group's tiles) loaded from Mb + xi*mstride + tv, then t[jj][i] = sum_b M[i][b] ATw[jj][b].
  // Output position (ii, jj) is then lincomb(ATh[ii], t[jj]).
  void output_rows(const float* Mb, int64_t mstride, int64_t tv, const Group& g, typename V::reg (&t)[mw][ah]) const {
    typename V::reg M[ah][aw];
#pragma GCC unroll 16
    for (int i = 0; i < ah; ++i)
#pragma GCC unroll 16
      for (int j = 0; j < aw; ++j) {
        const float* src = Mb + (int64_t)(i * aw + j) * mstride + tv;
        M[i][j] = g.nt == W ? V::loadu(src) : V::loadu_n(src, g.nt);
      }
#pragma GCC unroll 16
    for (int i = 0; i < ah; ++i)
#pragma GCC unroll 16
      for (int jj = 0; jj < mw; ++jj) t[jj][i] = lincomb<V, aw>(MatW::AT[jj], M[i]);
  }

  // Y = A^T M A (+ bias, the activation) for one group and output channel kk; M at Mb + xi*mstride + tv.
  // NCHW y only (output_groups_blk16 writes a blocked one).
  void output_group(const float* Mb, int64_t mstride, int64_t tv, const Group& g, int64_t kk, float bias,
                    Activation act, float* y, const float* residual) const {
    typename V::reg t[mw][ah];
    output_rows(Mb, mstride, tv, g, t);
    const typename V::reg bv = V::set1(bias);
    const bool clamp = act.active();
    const typename V::reg lo = V::set1(act.lo), hi = V::set1(act.hi);
    const int64_t plane = (g.n0 * p.K + kk) * p.Ho * p.Wo;
    float* base = y + plane;
#pragma GCC unroll 16
    for (int ii = 0; ii < mh; ++ii)
#pragma GCC unroll 16
      for (int jj = 0; jj < mw; ++jj) {
        typename V::reg v = V::add(lincomb<V, ah>(MatH::AT[ii], t[jj]), bv);
        if (residual)
          v = V::add(v, V::gather_masked(residual + plane + ii * p.Wo + jj, g.yoff, g.rout[ii] & g.cout[jj]));
        if (clamp) v = V::clamp(v, lo, hi);  // NaN stays NaN
        if (act.fn >= 0) v = unary_detail::post_reg<V>(act, v);
        V::scatter_masked(base + ii * p.Wo + jj, g.yoff, v, g.rout[ii] & g.cout[jj]);
      }
  }

  // The same for 16 output channels k0 .. k0 + 15 (k0 % 16 == 0) into a blocked y, for groups
  // [gi0, gi1) (at most kBlkGroups): the 16 x mh mw output vectors of each group (lanes = tiles)
  // are staged, then per output position transposed W x W so that each tile's pixel gets its
  // 16 channels as whole-vector stores (one 64-byte line) rather than one float per line, 16
  // lines per scatter. Several groups per call so that each of the 16 x ah aw rows of M read here
  // is read kBlkGroups lines at a time (one group per call made 576 short streams, and the M
  // loads dominated this function).
  // The stage (kBlkGroups x mh mw x 16 vectors, up to 288 KiB for F6 on avx512) is the thread's
  // kSlotGemmC workspace, free once the GEMMs are done (4 groups, what 64 KiB of stack holds
  // for F4, cost 5% at batch 8 against NCHW instead of 1-3%).
  static constexpr int kBlkGroups = 8;
  static constexpr size_t kStageFloats = (size_t)kBlkGroups * mh * mw * 16 * W;
  void output_groups_blk16(const float* Mb, int64_t mstride, int64_t krow, const std::vector<Group>& groups,
                           const std::vector<int64_t>& gstart, int64_t gi0, int64_t gi1, int64_t k0, const float* bias,
                           Activation act, float* y, float* stage_buf) const {
    typename V::reg(*stage)[mh * mw][16] = reinterpret_cast<typename V::reg(*)[mh * mw][16]>(stage_buf);
    const bool clamp = act.active();
    const typename V::reg lo = V::set1(act.lo), hi = V::set1(act.hi);
    for (int kq = 0; kq < 16; ++kq) {
      const float* Mk = Mb + kq * krow;  // row k0 + kq of every xi's M
      const typename V::reg bv = V::set1(bias ? bias[k0 + kq] : 0.0f);
      for (int64_t gi = gi0; gi < gi1; ++gi) {
        typename V::reg t[mw][ah];
        output_rows(Mk, mstride, gstart[(size_t)gi], groups[(size_t)gi], t);
#pragma GCC unroll 16
        for (int ii = 0; ii < mh; ++ii)
#pragma GCC unroll 16
          for (int jj = 0; jj < mw; ++jj) {
            typename V::reg v = V::add(lincomb<V, ah>(MatH::AT[ii], t[jj]), bv);
            if (clamp) v = V::clamp(v, lo, hi);
            stage[gi - gi0][ii * mw + jj][kq] = act.fn >= 0 ? unary_detail::post_reg<V>(act, v) : v;
          }
      }
    }
    for (int64_t gi = gi0; gi < gi1; ++gi) {
      const Group& g = groups[(size_t)gi];
      float* base = y + g.n0 * p.y_image_stride() + k0 * p.Ho * p.Wo;  // block k0 / 16 of image n0
      for (int ii = 0; ii < mh; ++ii)
        for (int jj = 0; jj < mw; ++jj) {
          const uint32_t live = g.rout[ii] & g.cout[jj];
          float* pos = base + (ii * p.Wo + jj) * 16;
          for (int h = 0; h < 16; h += W) {
            typename V::reg tr[W];
            for (int q = 0; q < W; ++q) tr[q] = stage[gi - gi0][ii * mw + jj][h + q];
            V::transpose(tr);  // tr[l]: channels k0 + h .. + W of tile l
            for (int l = 0; l < g.nt; ++l)
              if (live >> l & 1u) V::storeu(pos + g.yoff[l] + h, tr[l]);
          }
        }
    }
  }

  // Full convolution with prepared weights.
  void run(const float* x, const WinogradWeights& U, const float* bias, float* y, Activation act,
           const float* residual) const {
    const int64_t Cg = p.Cg(), Kg = p.Kg(), tiles = p.N * TH * TW;
    const int64_t a2 = (int64_t)ah * aw;
    // Chunk: about kChunkTiles tiles or a kChunkBytes workspace (V and M), whichever is
    // smaller: enough columns for efficient GEMMs, small enough that V and M are re-read from
    // L2/L3 rather than memory (8 MiB / 512 tiles measured best of 2..24 MiB, 128..1536 tiles
    // on AlexNet conv3 and ResNet 3x3 layers at batch 8, within noise at batch 1). Chunks are
    // balanced so that no chunk is a small remainder.
    constexpr int64_t kChunkBytes = 8ll << 20, kChunkTiles = 512;
    const int64_t per_tile = a2 * (Cg + Kg) * (int64_t)sizeof(float);
    const int64_t cap = std::max<int64_t>(W, std::min<int64_t>(kChunkBytes / per_tile, kChunkTiles));
    const int64_t nchunks = (tiles + cap - 1) / cap;
    const int64_t Tmax = (tiles + nchunks - 1) / nchunks;
    float* Vbuf = workspace(kSlotConvIn, (size_t)(a2 * Cg * Tmax));
    float* Mbuf = workspace(kSlotConvOut, (size_t)(a2 * Kg * Tmax));
    const int nt = threads_for(p.flops(), 1 << 30);
    std::vector<Group> groups;
    std::vector<int64_t> gstart;  // tile offset of each group within the chunk
    for (int64_t g = 0; g < p.groups; ++g) {
      for (int64_t c0 = 0; c0 < nchunks; ++c0) {
        const int64_t t0 = c0 * Tmax, t1 = std::min(tiles, t0 + Tmax), T = t1 - t0;
        if (T <= 0) break;
        make_groups(t0, t1, groups);
        gstart.assign(groups.size(), 0);
        for (size_t i = 1; i < groups.size(); ++i) gstart[i] = gstart[i - 1] + groups[i - 1].nt;
        const int64_t G = (int64_t)groups.size();
        // Even shares, tails stolen (parallel.h): a thread whose core is busy holds no one up.
        StealingRanges in_work(StealingRanges::even(Cg * G, nt));
        parallel_run(nt, [&] {
          for (int64_t it = 0; in_work.next(omp_get_thread_num(), it);) {
            const int64_t c = it / G, gi = it % G;
            input_group(x, groups[(size_t)gi], g * Cg + c, Vbuf + c * T, Cg * T, gstart[(size_t)gi]);
          }
        });
        std::vector<MatrixBSource> srcs;
        srcs.reserve((size_t)a2);
        std::vector<GemmProblem> probs;
        for (int64_t xi = 0; xi < a2; ++xi) {
          srcs.emplace_back(Vbuf + xi * Cg * T, T, 1);
          probs.push_back(
              GemmProblem{&U.U[(size_t)(g * a2 + xi)], &srcs.back(), T, Mbuf + xi * Kg * T, T, nullptr, nullptr});
        }
        sgemm_run(probs, Kg, Cg, Activation::none());
        if (yblk) {  // groups == 1, Kg % 16 == 0
          const int64_t GB = (G + kBlkGroups - 1) / kBlkGroups;
          check_workspace(kStageFloats);
          ParallelFailure failure;
          StealingRanges out_work(StealingRanges::even(Kg / 16 * GB, nt));
          parallel_run(nt, [&] {
            float* stage = workspace_nothrow(kSlotGemmC, kStageFloats);
            if (!stage) failure.set();
            for (int64_t it = 0; stage && out_work.next(omp_get_thread_num(), it);) {
              const int64_t k0 = it / GB * 16, gi0 = it % GB * kBlkGroups;
              output_groups_blk16(Mbuf + k0 * T, Kg * T, T, groups, gstart, gi0, std::min(G, gi0 + kBlkGroups), k0,
                                  bias, act, y, stage);
            }
          });
          failure.rethrow();
          continue;
        }
        StealingRanges out_work(StealingRanges::even(Kg * G, nt));
        parallel_run(nt, [&] {
          for (int64_t it = 0; out_work.next(omp_get_thread_num(), it);) {
            const int64_t k = it / G, gi = it % G, kk = g * Kg + k;
            output_group(Mbuf + k * T, Kg * T, gstart[(size_t)gi], groups[(size_t)gi], kk, bias ? bias[kk] : 0.0f, act,
                         y, residual);
          }
        });
      }
    }
  }
};

// Entry points of one ISA build: the run for each tile size, and the transforms on their own over
// a whole tensor (for the tests). conv2d_winograd__<isa>.cpp instantiates them with
// PYCNN_WINOGRAD_ISA(isa).
template <class V>
struct WinogradEntry {
  // The tile is w.m on the kernel (p.R, p.S), checked at prepare.
  static void run(const ConvParams& p, const float* x, const WinogradWeights& w, const float* bias, float* y,
                  Activation act, const float* residual, bool yblk) {
    with_winograd_tile(w.m, p.R, p.S, [&](auto t) {
      using T = decltype(t);
      WinogradConv<V, T::mh, T::rh, T::mw, T::rw>(p, yblk).run(x, w, bias, y, act, residual);
    });
  }

  // x (N, C, H, W) -> V (ah aw, C, T) or M (ah aw, K, T) -> y (N, K, Ho, Wo), T = all tiles; the
  // kernel is (p.R, p.S).
  template <class Conv, bool input>
  static void transform_t(const ConvParams& p, const float* src, float* dst) {
    Conv wc(p);
    const int64_t T = p.N * wc.TH * wc.TW, channels = input ? p.C : p.K;
    std::vector<typename Conv::Group> groups;
    wc.make_groups(0, T, groups);
    for (int64_t c = 0; c < channels; ++c) {
      int64_t t = 0;
      for (auto& g : groups) {
        if (input)
          wc.input_group(src, g, c, dst + c * T, p.C * T, t);
        else
          wc.output_group(src + c * T, p.K * T, t, g, c, 0.0f, Activation::none(), dst, nullptr);
        t += g.nt;
      }
    }
  }
  template <bool input>
  static void transform(const ConvParams& p, int m, const float* src, float* dst) {
    with_winograd_tile(m, p.R, p.S, [&](auto t) {
      using T = decltype(t);
      transform_t<WinogradConv<V, T::mh, T::rh, T::mw, T::rw>, input>(p, src, dst);
    });
  }
};

#define PYCNN_WINOGRAD_ISA(isa)                                                                                 \
  void conv2d_winograd__##isa(const ConvParams& p, const float* x, const WinogradWeights& w, const float* bias, \
                              float* y, Activation act, const float* residual, bool yblk) {                     \
    WinogradEntry<simd::isa>::run(p, x, w, bias, y, act, residual, yblk);                                       \
  }                                                                                                             \
  void winograd_input__##isa(const ConvParams& p, int m, const float* x, float* V) {                            \
    WinogradEntry<simd::isa>::transform<true>(p, m, x, V);                                                      \
  }                                                                                                             \
  void winograd_output__##isa(const ConvParams& p, int m, const float* M, float* y) {                           \
    WinogradEntry<simd::isa>::transform<false>(p, m, M, y);                                                     \
  }

}  // namespace pycnn
