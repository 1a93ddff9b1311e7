// Winograd F(mh x mw, rh x rw) convolution, written once over a SIMD type V and the tile: square
// F(m x m, r x r) (r = 3, 5) and one-dimensional F(1 x m, 1 x r) / F(m x 1, r x 1) (Inception's
// 1x7 and 7x1, 1-D signals), the other axis then F(1, 1) (alpha 1, every matrix the identity); the tiles are
// with_winograd_tile's (winograd_matrices.h), instantiated per ISA by conv2d_winograd__<isa>.cpp.
// alpha = m + r - 1 per axis (ah, aw), up to 10: the loops over it are unrolled whole (16), so
// every coefficient is a compile-time constant.
//
// Tiles are numbered in (n, th, tw) order; per group of convolution, three stages:
//  1. input transform: W consecutive tiles form a vector group whatever rows or images they span;
//     element (i, j) of their input patches is one masked gather (the masks are the padding),
//     V = B^T d B is computed on those vectors and stored to V[xi][c][t];
//  2. ah * aw GEMMs: M[xi] (Kg x T) = U[xi] (Kg x Cg) * V[xi] (Cg x T);
//  3. output transform: Y = A^T M A on vectors of W tiles, + bias, ReLU, scattered into y with
//     masks that clip the partial tiles at the bottom/right edges.
// Two ways to run them (run): per-thread blocks of tiles, each thread all three stages on its own
// tiles with V and M in its L2 and the GEMMs on the micro-kernels directly (run_blocks), where
// the tiles split evenly enough over the threads; else chunks of tiles, all threads on each stage
// in turn and the GEMMs through sgemm_run (run_chunks: small maps at batch 1, U beyond L3).
// Coefficients 0 and +-1 of the constant matrices are skipped or turned into add/sub at compile
// time (the loops are fully unrolled over constexpr arrays). NaN/Inf: a NaN input reaches at least
// every output a direct convolution makes NaN and at most the outputs of the tiles whose input
// patch holds it (entries with a zero coefficient skip it); an Inf can become NaN (Inf - Inf) in
// the transforms.
#pragma once

#include <algorithm>
#include <cstring>
#include <numeric>
#include <vector>

#include "conv2d.h"
#include "cpu_kernels.h"
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
  // whole_lanes: store all W lanes of a partial group (the lanes past its tiles are zero: their
  // masks are clear), where the rows have room for them (run_blocks' panels).
  void input_group(const float* x, const Group& g, int64_t ch, float* Vb, int64_t vstride, int64_t tv,
                   bool whole_lanes = false) const {
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
        if (g.nt == W || whole_lanes)
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

  // Per-thread tile blocks (run_blocks): how the tiles and output channels are cut.
  struct BlockPlan {
    int MR = 0, NR = 0;      // A's panel rows; B's panel width (at most the micro-kernel's widest)
    int nt = 1;              // threads, each with an even share of the tiles (to one tile)
    int64_t tiles = 0;       // of the whole call
    int64_t Tb = 0;          // tiles per block but a share's last (whole panels): V's and M's row length
    int64_t per_thread = 0;  // blocks of a share: ceil(share / Tb)
    int64_t nblocks = 0;     // nt * per_thread
    int64_t kb = 0;          // output channels per GEMM + output-transform pass (MR and 16 divide it)
    // Tiles [tb, te) of block b: thread b / per_thread's share cut into blocks of Tb tiles, the
    // last the remainder (cut evenly instead, 98 tiles as 33 + 33 + 32 left every block's last
    // vector group and column panel nearly empty). A block's vector groups start at tb: whole
    // but its last.
    void block_tiles(int64_t b, int64_t& tb, int64_t& te) const {
      int64_t sb, se;
      split_range(tiles, nt, (int)(b / per_thread), sb, se);
      tb = std::min(se, sb + b % per_thread * Tb);
      te = std::min(se, tb + Tb);
    }
  };
  // A block's V (ah aw x Cg x Tb floats) within kBlockVBytes where a panel allows, and M (ah aw x
  // kb x Tb) within kBlockMBytes: both in a thread's L2 with the weights streaming by. Blocks run
  // only where one panel's V is within kBlockVMaxBytes (F4 on 192 input channels: 1.3 MiB in a
  // 48-tile panel, blocks ahead; on 256, 1.8 MiB ran behind on 56x56 maps, so those panels narrow
  // to 32 tiles), each thread has at least kBlockMinGroups vector groups of tiles (each block's
  // last group may be partial), and U is not read too often (kBlockUReads).
  static constexpr int64_t kBlockVBytes = 512 << 10, kBlockMBytes = 256 << 10, kBlockVMaxBytes = 3 << 19;
  // The blocks' bytes of U read at most the chunked run's bytes of V and M written and read.
  // Alone, U warm, the blocks won up to twice that; inside a network U comes from memory (the
  // steps between evict it) while V and M go through L3, and ResNet and GoogLeNet at batch 8 ran
  // faster with their 14x14 3x3s (1.03-2.0x) as chunks; AlphaGo with its 192@19 (1.9x) did not
  // (docs/performance.md, Winograd). At 2.6x (256 -> 256 @56, batch 1: U read 8
  // times) the blocks ran 0.87x the chunks' speed with the weights cold, at 8x (F4 on 512
  // channels @7, batch 8: 36 MiB of U) 0.89-0.91x.
  static constexpr double kBlockUReads = 1.0;
  static constexpr int64_t kBlockMinGroups = 2, kBlockMinTiles = 48;

  bool plan_blocks(const WinogradWeights& U, int nt, BlockPlan& bp) const {
    if (!cross_images) return false;  // groups could end inside a panel
    bp.MR = U.U[0].MR;
    bp.NR = U.kernels->sgemm_nr(bp.MR);
    if (bp.NR % W != 0) return false;
    const int64_t Cg = p.Cg(), Kg = p.Kg(), a2 = (int64_t)ah * aw, tiles = p.N * TH * TW;
    if (tiles == 0 || Cg == 0 || Kg == 0) return false;  // nothing to cut (the chunks handle it)
    // Panels narrower than the micro-kernel's widest where a whole one's V would not fit.
    while (bp.NR > W && a2 * Cg * bp.NR * (int64_t)sizeof(float) > kBlockVMaxBytes) bp.NR -= W;
    const int64_t vpanel = a2 * Cg * bp.NR * (int64_t)sizeof(float);  // one panel's V
    if (vpanel > kBlockVMaxBytes) return false;
    const int64_t share = (tiles + nt - 1) / nt;  // the largest thread's
    if (nt > 1 && share < kBlockMinGroups * W) return false;
    // Tiles per block, whole panels: V within kBlockVBytes, but kBlockMinTiles where V stays within
    // kBlockVMaxBytes (avx2's 16-tile panels one at a time read U three times as often).
    const int64_t tfit = kBlockVMaxBytes / (a2 * Cg * (int64_t)sizeof(float)) / bp.NR * bp.NR;
    const int64_t tmax = std::max<int64_t>(
        {(int64_t)bp.NR, kBlockVBytes / vpanel * bp.NR, std::min((kBlockMinTiles + bp.NR - 1) / bp.NR * bp.NR, tfit)});
    bp.nt = nt;
    bp.tiles = tiles;
    bp.Tb = std::min(tmax, (share + bp.NR - 1) / bp.NR * bp.NR);
    bp.per_thread = (share + bp.Tb - 1) / bp.Tb;
    bp.nblocks = nt * bp.per_thread;
    // Every block reads all of U (from L3, or from memory where the layer's weights went cold);
    // the chunked run writes and reads V and M once each instead.
    if ((double)bp.nblocks * Kg * Cg > kBlockUReads * 2.0 * (double)tiles * (Cg + Kg)) return false;
    const int64_t unit = std::lcm<int64_t>(bp.MR, 16);
    bp.kb = std::max(unit, kBlockMBytes / (a2 * bp.Tb * (int64_t)sizeof(float)) / unit * unit);
    bp.kb = std::min(bp.kb, (Kg + unit - 1) / unit * unit);
    return true;
  }

  // Each thread takes whole blocks of consecutive tiles and runs the three stages on them in its
  // own workspace: the input transform into V laid out as SGEMM B panels ([xi][panel][c][NR]: a
  // panel's rows are NR floats apart, read in place by the micro-kernel, no packing), then per kb
  // output channels the ah aw GEMMs into M ([xi][k][Tb]) and the output transform. V and M stay
  // in the thread's L2; in the chunked run (run_chunks) they are megabytes written by one stage
  // and read by the next on any thread, through the shared L3 or memory.
  void run_blocks(const float* x, const WinogradWeights& U, const float* bias, float* y, Activation act,
                  const float* residual, int nt, const BlockPlan& bp) const {
    const CpuKernels& kern = *U.kernels;
    const int64_t Cg = p.Cg(), Kg = p.Kg(), a2 = (int64_t)ah * aw;
    const int MR = bp.MR, NR = bp.NR;
    const int64_t Tb = bp.Tb, kb = bp.kb;
    const size_t vsize = (size_t)(a2 * Cg * Tb), msize = (size_t)(a2 * kb * Tb);
    check_workspace(vsize);
    check_workspace(msize);
    if (yblk) check_workspace(kStageFloats);
    // The micro-kernel per (columns, rows) of a panel: whole panels here, the last row panel's
    // and a block's last column panel's through sgemm_select.
    const int mr_last = (int)(Kg - (Kg - 1) / MR * MR);
    const SgemmUkernel uk_full = sgemm_select(kern, MR, NR, MR).fn,
                       uk_full_last = sgemm_select(kern, MR, NR, mr_last).fn;
    for (int64_t g = 0; g < p.groups; ++g) {
      ParallelFailure failure;
      StealingRanges work(StealingRanges::even(bp.nblocks, nt));
      parallel_run(nt, [&] {
        float* Vt = workspace_nothrow(kSlotConvIn, vsize);
        float* Mt = workspace_nothrow(kSlotConvOut, msize);
        float* stage = yblk ? workspace_nothrow(kSlotGemmC, kStageFloats) : nullptr;
        const bool ok = Vt && Mt && (stage || !yblk);
        if (!ok) failure.set();
        std::vector<Group> groups;
        std::vector<int64_t> gstart;
        const Epilogue none;
        for (int64_t b = 0; ok && work.next(omp_get_thread_num(), b);) {
          int64_t t0, t1;
          bp.block_tiles(b, t0, t1);
          if (t0 == t1) continue;
          const int64_t T = t1 - t0;
          make_groups(t0, t1, groups);
          gstart.assign(groups.size(), 0);
          for (size_t i = 1; i < groups.size(); ++i) gstart[i] = gstart[i - 1] + W;  // whole groups but the last
          const int64_t G = (int64_t)groups.size();
          // 1. V[xi][panel][c][NR]: group gi's W tiles are lanes tv % NR of panel tv / NR.
          for (int64_t c = 0; c < Cg; ++c)
            for (int64_t gi = 0; gi < G; ++gi) {
              const int64_t tv = gstart[(size_t)gi];
              input_group(x, groups[(size_t)gi], g * Cg + c, Vt + (tv / NR * Cg + c) * NR, Cg * Tb, tv % NR, true);
            }
          for (int64_t k0 = 0; k0 < Kg; k0 += kb) {
            const int64_t kr = std::min(kb, Kg - k0);
            // 2. M[xi][k - k0][t] = U[xi] rows k0 .. k0 + kr times V[xi], depth in KC blocks.
            for (int64_t xi = 0; xi < a2; ++xi) {
              const PackedA& A = U.U[(size_t)(g * a2 + xi)];
              const float* Vx = Vt + xi * Cg * Tb;
              float* Mx = Mt + xi * kb * Tb;
              for (int64_t d0 = 0; d0 < Cg; d0 += kSgemmKC) {
                const int64_t dc = std::min(kSgemmKC, Cg - d0);
                for (int64_t i = k0; i < k0 + kr; i += MR) {
                  const int mr = (int)std::min<int64_t>(MR, Kg - i);
                  const float* ap = A.panel(d0, dc, i / MR);
                  for (int64_t j = 0; j < T; j += NR) {
                    const int nr = (int)std::min<int64_t>(NR, T - j);
                    const SgemmUkernel uk =
                        nr == NR ? (mr == MR ? uk_full : uk_full_last) : sgemm_select(kern, MR, nr, mr).fn;
                    uk(dc, ap, Vx + j * Cg + d0 * NR, NR, Mx + (i - k0) * Tb + j, Tb, mr, nr, d0 > 0, d0 + dc >= Cg,
                       none);
                  }
                }
              }
            }
            // 3. y from M, channels k0 .. k0 + kr.
            if (yblk) {
              for (int64_t k16 = k0; k16 < k0 + kr; k16 += 16)
                for (int64_t gi0 = 0; gi0 < G; gi0 += kBlkGroups)
                  output_groups_blk16(Mt + (k16 - k0) * Tb, kb * Tb, Tb, groups, gstart, gi0,
                                      std::min<int64_t>(G, gi0 + kBlkGroups), k16, bias, act, y, stage);
            } else {
              for (int64_t k = k0; k < k0 + kr; ++k) {
                const int64_t kk = g * Kg + k;
                for (int64_t gi = 0; gi < G; ++gi)
                  output_group(Mt + (k - k0) * Tb, kb * Tb, gstart[(size_t)gi], groups[(size_t)gi], kk,
                               bias ? bias[kk] : 0.0f, act, y, residual);
              }
            }
          }
        }
      });
      failure.rethrow();
    }
  }

  // Full convolution with prepared weights: per-thread tile blocks where the tiles make enough
  // of them, else chunks shared by all threads.
  void run(const float* x, const WinogradWeights& U, const float* bias, float* y, Activation act,
           const float* residual) const {
    if (p.N * TH * TW == 0) return;  // an empty y (no batch, or no output rows or columns)
    const int nt = threads_for(p.flops(), 1 << 30);
    BlockPlan bp;
    if (plan_blocks(U, nt, bp)) return run_blocks(x, U, bias, y, act, residual, nt, bp);
    run_chunks(x, U, bias, y, act, residual, nt);
  }

  // What run would do (the tests read it through _C.winograd_plan).
  WinogradPlanInfo describe(const WinogradWeights& U) const {
    const int nt = threads_for(p.flops(), 1 << 30);
    BlockPlan bp;
    WinogradPlanInfo info;
    info.threads = nt;
    info.blocks = plan_blocks(U, nt, bp);
    if (info.blocks) {
      info.panel = bp.NR;
      info.blocks_per_thread = bp.per_thread;
      info.channels_per_pass = bp.kb;
      info.tiles_per_block = bp.Tb;
    }
    return info;
  }

  // The chunked run: all threads on each stage of one chunk of tiles in turn.
  void run_chunks(const float* x, const WinogradWeights& U, const float* bias, float* y, Activation act,
                  const float* residual, int nt) const {
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

  static WinogradPlanInfo plan(const ConvParams& p, const WinogradWeights& w, bool yblk) {
    WinogradPlanInfo info;
    with_winograd_tile(w.m, p.R, p.S, [&](auto t) {
      using T = decltype(t);
      info = WinogradConv<V, T::mh, T::rh, T::mw, T::rw>(p, yblk).describe(w);
    });
    return info;
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
  WinogradPlanInfo winograd_plan__##isa(const ConvParams& p, const WinogradWeights& w, bool yblk) {             \
    return WinogradEntry<simd::isa>::plan(p, w, yblk);                                                          \
  }                                                                                                             \
  void winograd_input__##isa(const ConvParams& p, int m, const float* x, float* V) {                            \
    WinogradEntry<simd::isa>::transform<true>(p, m, x, V);                                                      \
  }                                                                                                             \
  void winograd_output__##isa(const ConvParams& p, int m, const float* M, float* y) {                           \
    WinogradEntry<simd::isa>::transform<false>(p, m, M, y);                                                     \
  }

}  // namespace pycnn
