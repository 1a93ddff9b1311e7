// Direct convolution vectorized over OUTPUT CHANNELS ("direct_oc"), written once over a SIMD
// type V and instantiated per ISA by conv2d_direct_oc__<isa>.cpp.
//
// Why a second direct kernel: conv2d_direct.inl vectorizes along output columns, which wastes
// most lanes on 7- or 14-wide maps; im2col + SGEMM wastes columns there too (N = 49 fills 49 of
// 64) and at batch 1 its packed weights stream from DRAM feeding only those few columns. Here
// the vector runs over KB = KV * V::W output channels, the input value of each output pixel is
// broadcast, and the tile is P pixels of one output row (P <= PMAX), so every lane is useful
// whatever the map width, stride or kernel size, and the weights are read once per row tile from
// L2 (once from memory per thread) with no packing of the input.
//
// Layouts. x (N, C, H, W), y (N, K, Ho, Wo), NCHW float32. Weights reordered once to
// wb[g][kblock][r][s][c][KB] (zero past Kg) so one tap's KB weights are one run and the
// channel loop walks them contiguously. The input is read in place: taps that fall in the
// padding are skipped, not read (a tile whose border pixels reach fewer taps than the others
// runs as one call per range of taps; see Seg). A zero-padded copy of x cost ~25% of a 3x3/2
// layer at batch 1 and ~10% at batch 8 (128@56). Accumulators acc[P][KV] (P pixels x KB
// channels) go to a per-thread band buffer [pixel][KB], which is transposed in W x W register
// blocks into the NCHW output with bias, residual and the activation.
//
// Channel-blocked layouts (conv2d.h kDirectOcXBlocked...; groups 1): y and the residual may be
// NCHW16c, (N, K/16, Ho, Wo, 16), and x (N, C/16, H, W, 16), for any window: 16 channels of a
// pixel are one 64-byte run. With x blocked a tile's broadcasts for 16 channels come from P
// whole lines instead of 16 rows a plane apart (the rows of an NCHW x touch a new page per
// channel at 56x56), and the conv before it writes its blocked y with no transpose; with y
// blocked the sums are stored as they are, no transpose. A Graph keeps ResNet's residual stream
// and GoogLeNet's concats in this layout (pycnn/layout.py).
#pragma once
#include <algorithm>
#include <cstring>
#include <utility>
#include <vector>

#include "conv2d.h"
#include "eltwise_unary.inl"
#include "pycnn/buffer.h"
#include "pycnn/isa.h"
#include "pycnn/parallel.h"
#include "simd.h"

namespace pycnn {

// Software prefetch (into L2) of one channel chunk of direct_oc weights, laid out
// [tap][channel][KB]: cc channels at `w` for each of the RS taps (tap stride Cg*KB floats).
// The lines are shared out over `tiles` tiles (begin_tile) and issued from inside a tile's
// channel loop, a few at a time (one() runs once per 4 channel steps, `calls` times a tile):
// issued in a burst before a tile they fill the core's line-fill buffers and stall the FMAs.
// Each call issues enough lines for the whole chunk to be fetched over the tiles (at 32 output
// channels a channel step's weights are two lines, so one line per call fetched only half of
// them where a unit has fewer than 8 tiles: 7x7 maps at batch 1).
template <int KB>
struct WeightPrefetchT {
  const float* tap = nullptr;  // first line of the current tap
  int64_t line = 0, lines_per_tap = 0, tap_stride = 0, left = 0, per_tile = 0, quota = 0, burst = 1;
  WeightPrefetchT() = default;
  WeightPrefetchT(const float* w, int64_t cc, int64_t RS, int64_t Cg, int64_t tiles, int64_t calls)
      : tap(w), lines_per_tap((cc * KB + 15) / 16), tap_stride(Cg * KB), left(lines_per_tap * RS) {
    per_tile = (left + tiles - 1) / std::max<int64_t>(1, tiles);
    burst = std::max<int64_t>(1, (per_tile + calls - 1) / std::max<int64_t>(1, calls));
  }
  void begin_tile() { quota = per_tile; }
  void one() {
    int64_t n = std::min(burst, std::min(quota, left));
    quota -= n;
    left -= n;
    for (; n > 0; --n) {
      __builtin_prefetch(tap + line * 16, 0, 2);
      if (++line == lines_per_tap) {
        line = 0;
        tap += tap_stride;
      }
    }
  }
};

template <class V, int KV, int PMAX>
struct DirectOcConv {
  static constexpr int W = V::W;
  static constexpr int KB = KV * W;  // output channels per tile
  using WeightPrefetch = WeightPrefetchT<KB>;

  const ConvParams& p;
  int64_t kblocks, row_tiles;
  int64_t rt_base, rt_extra;  // row tiles: Wo = row_tiles * rt_base + rt_extra (see row_tile)
  // Taps inside the image. Output row oh reads window rows [rlo[oh], rhi[oh]); in row tile rt
  // (columns fixed) window columns [s0, s1) reach tile pixels [i0, i1): consecutive columns
  // with the same pixels form one Seg, columns no pixel reaches are left out. Interior tiles
  // have one Seg: all columns, all pixels.
  struct Seg {
    int s0, s1, i0, i1;
  };
  std::vector<int> rlo, rhi;
  std::vector<std::vector<Seg>> segs;
  // When all input channels fit one chunk (first layers: C = 3 with 7x7 taps), the (tap, channel)
  // pairs run as one flat loop: input offset toff[t] of pair t = tap * Cg + c, weights contiguous.
  std::vector<int64_t> toff;

  int layout;  // kDirectOc*Blocked bits (conv2d.h)
  bool x_blk() const { return layout & kDirectOcXBlocked; }
  bool y_blk() const { return layout & kDirectOcYBlocked; }
  bool r_blk() const { return layout & kDirectOcResBlocked; }
  bool mean_y() const { return layout & kDirectOcMeanY; }

  // Windows that cover the whole input (LeNet-5's conv3: 16 x 5 x 5 over 5 x 5 maps, one output
  // pixel per image; see conv2d_direct.cpp): p describes one row of Wo = N pixels whose column
  // stride is an image (C*H*W floats), read in place, and y is written pixel-major, y[n][K] (the
  // NCHW layout when Ho = Wo = 1), so P images share each weight load instead of one.
  bool images_as_row;

  // A blocked y whose images are p.y_img floats apart (kYImageStrided): what each image's y
  // offset adds to the dense one (the residual, then absent, would use the dense ones).
  int64_t y_extra = 0;

  explicit DirectOcConv(const ConvParams& p_, bool images_as_row_ = false, int layout_ = 0)
      : p(p_), layout(layout_), images_as_row(images_as_row_) {
    if (layout & kYImageStrided) y_extra = p.y_image_stride() - p.K * p.Ho * p.Wo;
    kblocks = (p.Kg() + KB - 1) / KB;
    row_tiles = (p.Wo + PMAX - 1) / PMAX;
    rt_base = row_tiles ? p.Wo / row_tiles : 0;  // (an empty output has no tiles)
    rt_extra = row_tiles ? p.Wo % row_tiles : 0;
    rlo.assign((size_t)p.Ho, 0);
    rhi.assign((size_t)p.Ho, 0);
    for (int64_t oh = 0; oh < p.Ho; ++oh) {
      int lo = (int)p.R, hi = 0;
      for (int64_t r = 0; r < p.R; ++r) {
        const int64_t ih = oh * p.stride_h - p.pad_t + r * p.dil_h;
        if (ih >= 0 && ih < p.H) {
          lo = std::min(lo, (int)r);
          hi = (int)r + 1;
        }
      }
      rlo[(size_t)oh] = lo;
      rhi[(size_t)oh] = std::max(lo, hi);
    }
    segs.resize((size_t)row_tiles);
    for (int64_t rt = 0; rt < row_tiles; ++rt) {
      int64_t ow0;
      int P;
      row_tile(rt, ow0, P);
      std::vector<Seg>& v = segs[(size_t)rt];
      for (int s = 0; s < (int)p.S; ++s) {
        int i0 = P, i1 = 0;
        for (int i = 0; i < P; ++i) {
          const int64_t iw = (ow0 + i) * p.stride_w - p.pad_l + s * p.dil_w;
          if (images_as_row || (iw >= 0 && iw < p.W)) {  // images_as_row: the pixels are images
            i0 = std::min(i0, i);
            i1 = i + 1;
          }
        }
        if (i0 >= i1) continue;
        if (!v.empty() && v.back().s1 == s && v.back().i0 == i0 && v.back().i1 == i1)
          v.back().s1 = s + 1;
        else
          v.push_back(Seg{s, s + 1, i0, i1});
      }
    }
    if (p.Cg() <= kFlatMaxChannels) {
      for (int64_t r = 0; r < p.R; ++r)
        for (int64_t s = 0; s < p.S; ++s)
          for (int64_t c = 0; c < p.Cg(); ++c) toff.push_back(c * p.H * p.W + r * p.dil_h * p.W + s * p.dil_w);
    }
  }
  static constexpr int64_t kFlatMaxChannels = 8;

  int64_t wb_size() const { return p.groups * kblocks * p.Cg() * p.R * p.S * KB; }

  // wb[g][kblock][r][s][c][KB], zero for channels past Kg.
  void reorder_weights(const float* w, float* wb) const {
    const int64_t Cg = p.Cg(), Kg = p.Kg(), RS = p.R * p.S;
    for (int64_t g = 0; g < p.groups; ++g)
      for (int64_t kb = 0; kb < kblocks; ++kb)
        for (int64_t rs = 0; rs < RS; ++rs)
          for (int64_t c = 0; c < Cg; ++c)
            for (int i = 0; i < KB; ++i) {
              const int64_t k = kb * KB + i;
              wb[(((g * kblocks + kb) * RS + rs) * Cg + c) * KB + i] =
                  k < Kg ? w[((g * Kg + k) * Cg + c) * RS + rs] : 0.0f;
            }
  }

  // Columns [ow0, ow0 + P) of output row tile rt: Wo split into row_tiles near-equal parts.
  void row_tile(int64_t rt, int64_t& ow0, int& P) const {
    ow0 = rt * rt_base + std::min(rt, rt_extra);
    P = (int)(rt_base + (rt < rt_extra ? 1 : 0));
  }

  // One tile: P pixels of one output row x KB channels, over input channels [c0, c0 + cc) of
  // the group and window rows [r0, r1) x columns [s0, s1), every one inside the image for all
  // P pixels. x0 points at channel c0's tap (r0, s0) of the tile's first pixel, wk at channel c0
  // of the kblock's weights ([tap][c][KB], tap stride Cg*KB); the partial sums live in
  // accp[pixel][KB] between channel chunks (zero-initialized when first). SW is the column
  // stride (0: run-time p.stride_w). KVT <= KV vectors of the KB channels are computed: a last
  // kblock with at most W real channels (LeNet-5's 6 and 16, Kim's 100 = 3 x 32 + 4) runs one
  // vector instead of paying KV for lanes that are zero weights (LeNet-5 batch 8 0.097 -> 0.088
  // ms, batch 1 0.029 -> 0.027; 5 alternating rounds with the cost-balanced bands of run()).
  // A tile whose sums are complete after its one channel chunk, written straight to a blocked y
  // with bias, residual (blocked too) and the activation, instead of through the band buffer and a second
  // pass (64->256 @56 x, y blocked: the pass cost as much as the FMAs of 64 channels). y and res
  // point at the tile's first pixel in channel block kbase; voff[v]: vector v's channel offset.
  struct BlockedOut {
    float* y;
    const float* res;
    const float* bias;  // bias + kbase, or null
    int64_t voff[KV + 1];
    Activation act;
  };

  // A last kblock of one 16-channel block (K = 48, 80, 240 on AVX-512's 32-channel kblocks) runs
  // merged with the one before as KV + 1 vectors (its weights the next kblock's first vector):
  // alone its tiles do one FMA per broadcast load and ran at half the others' speed (16->48 @112
  // blocked: 16->32 at 383 GFLOP/s, 16->16 at 271). Pointwise convs on a blocked x with a blocked
  // y only (the tiles store their sums: no band buffer of KB-channel pixels to hold them), in
  // register blocks of at most PM pixels.
  static constexpr bool kMergeLast = KB == 32;
  static constexpr int PM = 28 / (KV + 1);

  template <int P, int SW, int KVT, bool BLK>
  void tile(const float* x0, const float* wk, int64_t cc, float* accp, bool first, WeightPrefetch& pf,
            const BlockedOut* out, int r0, int r1, int s0, int s1) const {
    const int64_t plane = p.H * p.W, tap_stride = p.Cg() * KB, sw = SW ? SW : p.stride_w;
    // vector v's weights: kblock kb's vectors, then (KVT > KV, merged) the next kblock's
    const int64_t next_kb = p.R * p.S * p.Cg() * KB - KV * W;
    typename V::reg acc[P][KVT];
    // A tile that stores its whole sum starts from the bias (one add less per output vector).
    const bool bias_in = first && out && out->bias;
    typename V::reg init[KVT];
#pragma GCC unroll 4
    for (int v = 0; v < KVT; ++v) init[v] = bias_in ? V::loadu(out->bias + v * W) : V::zero();
    if (first) {
#pragma GCC unroll 16
      for (int i = 0; i < P; ++i)
#pragma GCC unroll 4
        for (int v = 0; v < KVT; ++v) acc[i][v] = init[v];
    } else {
#pragma GCC unroll 16
      for (int i = 0; i < P; ++i)
#pragma GCC unroll 4
        for (int v = 0; v < KVT; ++v) acc[i][v] = V::loadu(accp + i * KB + v * W);
    }
    if constexpr (P * KVT < 4) {
      accumulate_split<P, SW, KVT, BLK, 8 / (P * KVT)>(acc, x0, wk, cc, pf, r0, r1, s0, s1);
    } else if (BLK) {  // x blocked: 16 channels per block, pixel i at i * sw * 16, blocks a plane * 16 apart
      for (int64_t r = r0; r < r1; ++r)
        for (int64_t s = s0; s < s1; ++s) {
          const float* xs = x0 + ((r - r0) * p.dil_h * p.W + (s - s0) * p.dil_w) * 16;
          const float* wc = wk + (r * p.S + s) * tap_stride;
          for (int64_t c = 0; c < cc; c += 16, xs += plane * 16)
            for (int ci = 0; ci < 16; ++ci, wc += KB) {
              if ((ci & 3) == 0) pf.one();
              typename V::reg wv[KVT];
#pragma GCC unroll 4
              for (int v = 0; v < KVT; ++v) wv[v] = V::loadu(wc + (v >= KV ? next_kb : 0) + v * W);
#pragma GCC unroll 16
              for (int i = 0; i < P; ++i) {
                const typename V::reg a = V::set1(xs[i * (SW ? SW : sw) * 16 + ci]);
#pragma GCC unroll 4
                for (int v = 0; v < KVT; ++v) acc[i][v] = V::fmadd(a, wv[v], acc[i][v]);
              }
            }
        }
    } else if (!toff.empty() && cc == p.Cg()) {
      // Few channels (the first layers): the (tap, channel) pairs of each window row run as one
      // flat loop over [(r * S + s0) * Cg, (r * S + s1) * Cg), all rows as one when the columns are
      // whole. Border tiles take this path too: with the channel loop inside the taps their 3-pass
      // inner loops cost more than the FMAs (a quarter of a 7x7/2 stem's tiles are border tiles).
      const int64_t Cg = p.Cg(), S = p.S;
      const int64_t* off = toff.data();
      const int64_t o0 = r0 < r1 ? off[(r0 * S + s0) * Cg] : 0;  // x0: the input of pair (r0, s0, channel 0)
      const bool whole_rows = s0 == 0 && s1 == S;
      for (int64_t r = r0; r < r1; r = whole_rows ? r1 : r + 1) {
        const int64_t tb = (r * S + s0) * Cg, te = whole_rows ? r1 * S * Cg : (r * S + s1) * Cg;
        const float* wc = wk + tb * KB;
        for (int64_t t = tb; t < te; ++t, wc += KB) {
          const float* xs = x0 + (off[t] - o0);
          typename V::reg wv[KVT];
#pragma GCC unroll 4
          for (int v = 0; v < KVT; ++v) wv[v] = V::loadu(wc + v * W);
#pragma GCC unroll 16
          for (int i = 0; i < P; ++i) {
            const typename V::reg a = V::set1(xs[i * (SW ? SW : sw)]);
#pragma GCC unroll 4
            for (int v = 0; v < KVT; ++v) acc[i][v] = V::fmadd(a, wv[v], acc[i][v]);
          }
        }
      }
    } else {
      // Taps outside, channels inside: the inner loop walks the weights contiguously and the
      // input one plane per step.
      for (int64_t r = r0; r < r1; ++r)
        for (int64_t s = s0; s < s1; ++s) {
          const float* xs = x0 + (r - r0) * p.dil_h * p.W + (s - s0) * p.dil_w;
          const float* wc = wk + (r * p.S + s) * tap_stride;
          for (int64_t c = 0; c < cc; ++c, xs += plane, wc += KB) {
            if ((c & 3) == 0) pf.one();  // once per 4 channel steps (~56 FMAs)
            typename V::reg wv[KVT];
#pragma GCC unroll 4
            for (int v = 0; v < KVT; ++v) wv[v] = V::loadu(wc + v * W);
#pragma GCC unroll 16
            for (int i = 0; i < P; ++i) {
              const typename V::reg a = V::set1(xs[i * (SW ? SW : sw)]);
#pragma GCC unroll 4
              for (int v = 0; v < KVT; ++v) acc[i][v] = V::fmadd(a, wv[v], acc[i][v]);
            }
          }
        }
    }
    if (out) {  // the whole sum: straight into the blocked y (see BlockedOut)
      // Each step is one branch around a whole unrolled pass over the registers: per-vector
      // conditions were left in the unrolled code as 3 branches per output vector.
      if (out->bias && !bias_in) {
        typename V::reg bv[KVT];
#pragma GCC unroll 4
        for (int v = 0; v < KVT; ++v) bv[v] = V::loadu(out->bias + v * W);
#pragma GCC unroll 16
        for (int i = 0; i < P; ++i)
#pragma GCC unroll 4
          for (int v = 0; v < KVT; ++v) acc[i][v] = V::add(acc[i][v], bv[v]);
      }
      if (const float* res = out->res)
#pragma GCC unroll 16
        for (int i = 0; i < P; ++i)
#pragma GCC unroll 4
          for (int v = 0; v < KVT; ++v) acc[i][v] = V::add(acc[i][v], V::loadu(res + out->voff[v] + i * 16));
      // ReLU is one max (lo = 0, hi = +inf); other bounds clamp. NaN stays NaN either way.
      if (out->act.lo == 0.0f && !(out->act.hi < std::numeric_limits<float>::infinity())) {
#pragma GCC unroll 16
        for (int i = 0; i < P; ++i)
#pragma GCC unroll 4
          for (int v = 0; v < KVT; ++v) acc[i][v] = V::max0(acc[i][v]);
      } else if (out->act.active()) {
        const typename V::reg lo = V::set1(out->act.lo), hi = V::set1(out->act.hi);
#pragma GCC unroll 16
        for (int i = 0; i < P; ++i)
#pragma GCC unroll 4
          for (int v = 0; v < KVT; ++v) acc[i][v] = V::clamp(acc[i][v], lo, hi);
      }
      // the vector stores may alias anything (may_alias types): out's fields read once, not per store
      float* yv[KVT];
#pragma GCC unroll 4
      for (int v = 0; v < KVT; ++v) yv[v] = out->y + out->voff[v];
#pragma GCC unroll 16
      for (int i = 0; i < P; ++i)
#pragma GCC unroll 4
        for (int v = 0; v < KVT; ++v) V::storeu(yv[v] + i * 16, acc[i][v]);
      if (out->act.fn >= 0)  // the tile's vectors just stored, in L1 (not unrolled: one copy of the function)
#pragma GCC unroll 1
        for (int i = 0; i < P; ++i)
#pragma GCC unroll 1
          for (int v = 0; v < KVT; ++v) {
            float* o = out->y + out->voff[v] + i * 16;
            V::storeu(o, unary_detail::post_reg<V>(out->act, V::loadu(o)));
          }
      return;
    }
    if constexpr (KVT <= KV) {  // merged tiles (KVT > KV) always store through out
#pragma GCC unroll 16
      for (int i = 0; i < P; ++i)
#pragma GCC unroll 4
        for (int v = 0; v < KVT; ++v) V::storeu(accp + i * KB + v * W, acc[i][v]);
    }
  }

  // tile()'s sums for tiles of fewer than 4 vectors (P * KVT: one output pixel per image, LeNet-5's
  // conv3 at batch 1): their P * KVT FMA chains wait on the FMA latency, so consecutive inner
  // steps (channels, or (tap, channel) pairs) go to U sets of accumulators, added up at the end.
  // The same three loops as tile(), stepping U at a time.
  template <int P, int SW, int KVT, bool BLK, int U>
  void accumulate_split(typename V::reg (&acc)[P][KVT], const float* x0, const float* wk, int64_t cc,
                        WeightPrefetch& pf, int r0, int r1, int s0, int s1) const {
    const int64_t plane = p.H * p.W, tap_stride = p.Cg() * KB, sw = SW ? SW : p.stride_w;
    const int64_t next_kb = p.R * p.S * p.Cg() * KB - KV * W;
    typename V::reg part[U][P][KVT];
#pragma GCC unroll 4
    for (int u = 0; u < U; ++u)
#pragma GCC unroll 4
      for (int i = 0; i < P; ++i)
#pragma GCC unroll 4
        for (int v = 0; v < KVT; ++v) part[u][i][v] = u == 0 ? acc[i][v] : V::zero();
    // one inner step into the sums a: pixel i's input at xq[i * xi], the step's weights at wq
    auto one = [&](typename V::reg(&a)[P][KVT], const float* xq, int64_t xi, const float* wq) {
      typename V::reg wv[KVT];
#pragma GCC unroll 4
      for (int v = 0; v < KVT; ++v) wv[v] = V::loadu(wq + (v >= KV ? next_kb : 0) + v * W);
#pragma GCC unroll 4
      for (int i = 0; i < P; ++i) {
        const typename V::reg xb = V::set1(xq[i * xi]);
#pragma GCC unroll 4
        for (int v = 0; v < KVT; ++v) a[i][v] = V::fmadd(xb, wv[v], a[i][v]);
      }
    };
    // inner steps [0, n): step j's pixel i reads xs[j * xj + i * xi], its weights are at wc + j * KB
    auto steps = [&](const float* xs, int64_t xj, int64_t xi, const float* wc, int64_t n) {
      for (int64_t j = 0; n - j >= U; j += U, xs += U * xj, wc += U * KB) {
        if ((j & 3) < U) pf.one();  // once per 4 steps (or per U when U > 4)
#pragma GCC unroll 4
        for (int u = 0; u < U; ++u) one(part[u], xs + u * xj, xi, wc + u * KB);
      }
      for (int64_t j = n - n % U; j < n; ++j, xs += xj, wc += KB) one(part[0], xs, xi, wc);
    };
    if (BLK) {  // 16 channels per block: step ci of a block reads xs[ci]
      for (int64_t r = r0; r < r1; ++r)
        for (int64_t s = s0; s < s1; ++s) {
          const float* xs = x0 + ((r - r0) * p.dil_h * p.W + (s - s0) * p.dil_w) * 16;
          const float* wc = wk + (r * p.S + s) * tap_stride;
          for (int64_t c = 0; c < cc; c += 16, xs += plane * 16, wc += 16 * KB) steps(xs, 1, sw * 16, wc, 16);
        }
    } else if (!toff.empty() && cc == p.Cg()) {  // the flat (tap, channel) pairs: step t reads x0 + off[t] - o0
      const int64_t Cg = p.Cg(), S = p.S;
      const int64_t* off = toff.data();
      const int64_t o0 = r0 < r1 ? off[(r0 * S + s0) * Cg] : 0;
      for (int64_t r = r0; r < r1; ++r) {
        int64_t t = (r * S + s0) * Cg;
        const int64_t te = (r * S + s1) * Cg;
        for (; t + U <= te; t += U)
#pragma GCC unroll 4
          for (int u = 0; u < U; ++u) one(part[u], x0 + (off[t + u] - o0), sw, wk + (t + u) * KB);
        for (; t < te; ++t) one(part[0], x0 + (off[t] - o0), sw, wk + t * KB);
      }
    } else {  // taps outside, channels inside: step c reads the next plane
      for (int64_t r = r0; r < r1; ++r)
        for (int64_t s = s0; s < s1; ++s)
          steps(x0 + (r - r0) * p.dil_h * p.W + (s - s0) * p.dil_w, plane, sw, wk + (r * p.S + s) * tap_stride, cc);
    }
#pragma GCC unroll 4
    for (int i = 0; i < P; ++i)
#pragma GCC unroll 4
      for (int v = 0; v < KVT; ++v) {
        typename V::reg a = part[0][i][v];
#pragma GCC unroll 4
        for (int u = 1; u < U; ++u) a = V::add(a, part[u][i][v]);
        acc[i][v] = a;
      }
  }

  using TileFn = void (DirectOcConv::*)(const float*, const float*, int64_t, float*, bool, WeightPrefetch&,
                                        const BlockedOut*, int, int, int, int) const;

  template <int SW, int KVT, bool BLK, size_t... I>
  static TileFn pick(int P, std::index_sequence<I...>) {
    static constexpr TileFn table[] = {&DirectOcConv::tile<(int)I + 1, SW, KVT, BLK>...};
    return table[P - 1];
  }
  // Column strides 1, 2 and 4 (AlexNet's conv1) are compile-time constants in the tile: with a
  // run-time stride each of the P broadcasts needs its own address arithmetic.
  // (Stride 4 only for an NCHW x: no blocked-x layer has it.)
  template <int KVT, bool BLK>
  TileFn tile_fn_sw(int P) const {
    const auto seq = std::make_index_sequence<PMAX>{};
    if (p.stride_w == 1) return pick<1, KVT, BLK>(P, seq);
    if (p.stride_w == 2) return pick<2, KVT, BLK>(P, seq);
    if constexpr (!BLK)
      if (p.stride_w == 4) return pick<4, KVT, BLK>(P, seq);
    return pick<0, KVT, BLK>(P, seq);
  }
  template <int KVT>
  TileFn tile_fn_kv(int P) const {
    return x_blk() ? tile_fn_sw<KVT, true>(P) : tile_fn_sw<KVT, false>(P);
  }
  // kvt: vectors the kblock needs (1 .. KV; the builds have KV <= 2, so 1 or KV), or KV + 1 for
  // a merged pair (x blocked, P <= PM).
  TileFn tile_fn(int P, int kvt) const {
    if constexpr (kMergeLast)
      if (kvt == KV + 1) return pick<1, KV + 1, true>(P, std::make_index_sequence<PM>{});
    if (KV > 1 && kvt == 1) return tile_fn_kv<1>(P);
    return tile_fn_kv<KV>(P);
  }
  // Vectors kblock kb computes: KV, or fewer for a last kblock with fewer than KB real channels;
  // with merge_last the kblock before the last KV + 1 and the last none.
  int kvt_of(int64_t kb, bool merge_last = false) const {
    if (merge_last && kb >= kblocks - 2) return kb == kblocks - 2 ? KV + 1 : 0;
    return (int)std::min<int64_t>(KV, (std::min<int64_t>(KB, p.Kg() - kb * KB) + W - 1) / W);
  }

  // Unit u (outer to inner: group, kblock group of KG, image, kblock within it, band; with
  // band_outer: ..., image, band, kblock within the group).
  struct Units {
    int64_t bands, nn, KG, kblocks;
    bool band_outer = false;
    int64_t count(int64_t groups) const { return groups * kblocks * nn * bands; }
    void decode(int64_t u, int64_t& g, int64_t& kb, int64_t& n, int64_t& band) const {
      int64_t kbi;
      if (band_outer) {
        kbi = u % KG;
        u /= KG;
        band = u % bands;
        u /= bands;
      } else {
        band = u % bands;
        u /= bands;
        kbi = u % KG;
        u /= KG;
      }
      n = u % nn;
      u /= nn;
      const int64_t groups_kb = kblocks / KG;
      kb = (u % groups_kb) * KG + kbi;
      g = u / groups_kb;
    }
  };

  // Contiguous ranges of units, thread t taking [begin[t], begin[t + 1]), of near-equal cost:
  // a unit goes to the thread whose share of the total holds the middle of its cost. Returns the
  // largest share.
  static int64_t split_by_cost(const std::vector<int64_t>& cost, int nt, std::vector<int64_t>& begin) {
    int64_t total = 0, acc = 0, worst = 0, share = 0;
    for (int64_t c : cost) total += c;
    begin.assign((size_t)nt + 1, (int64_t)cost.size());
    begin[0] = 0;
    int t = 0;
    for (size_t u = 0; u < cost.size(); ++u) {
      const int owner = total ? (int)std::min<int64_t>(nt - 1, (2 * acc + cost[u]) * nt / (2 * total)) : 0;
      while (t < owner) {
        worst = std::max(worst, share);
        share = 0;
        begin[(size_t)++t] = (int64_t)u;
      }
      share += cost[u];
      acc += cost[u];
    }
    return std::max(worst, share);
  }

  // Band b of an image: tiles [b * tb, min((b + 1) * tb, Ho * row_tiles)) in row-major order
  // (oh, rt), so its pixels are one contiguous run of the output plane, [pix0, pix1).
  void band_pixels(int64_t band, int64_t tb, int64_t& pix0, int64_t& pix1) const {
    const int64_t t0 = band * tb, t1 = std::min(p.Ho * row_tiles, t0 + tb);
    int64_t ow;
    int P;
    row_tile(t0 % row_tiles, ow, P);
    pix0 = (t0 / row_tiles) * p.Wo + ow;
    row_tile((t1 - 1) % row_tiles, ow, P);
    pix1 = ((t1 - 1) / row_tiles) * p.Wo + ow + P;
  }

  // Per unit: its kblock's vectors x its band's pixels (what the tiles cost in FMAs).
  std::vector<int64_t> unit_costs(const Units& us, int64_t tb, bool merge_last) const {
    std::vector<int64_t> cost((size_t)us.count(p.groups));
    for (int64_t u = 0; u < (int64_t)cost.size(); ++u) {
      int64_t g, kb, n, band, pix0, pix1;
      us.decode(u, g, kb, n, band);
      band_pixels(band, tb, pix0, pix1);
      cost[(size_t)u] = kvt_of(kb, merge_last) * (pix1 - pix0);
    }
    return cost;
  }

  // First layers read the network's input, often from memory (the rest of the network evicted
  // it): their tiles walk 3 channels x R rows of it a few lines at a time, and each line's first
  // read waited on memory (a stem took about twice its cached time; prefetching the next row of
  // tiles' lines did not change it: docs/performance.md, direct_oc). So a band first reads the
  // input rows it will use, one load per line in a plain loop (many misses in flight, the
  // streams sequential); cached, that is ~1% of the band.
  void touch_band_input(const float* ximg, int64_t pix0, int64_t pix1) const {
    const int64_t oh0 = pix0 / p.Wo, oh1 = (pix1 - 1) / p.Wo;
    const int64_t h0 = std::max<int64_t>(0, oh0 * p.stride_h - p.pad_t);
    const int64_t h1 = std::min<int64_t>(p.H, oh1 * p.stride_h - p.pad_t + (p.R - 1) * p.dil_h + 1);
    if (h1 <= h0) return;
    float sink = 0.0f;
    for (int64_t c = 0; c < p.Cg(); ++c) {
      const float* a = ximg + (c * p.H + h0) * p.W;
      const float* e = ximg + (c * p.H + h1) * p.W;
      for (; a < e; a += 16) sink += *a;
    }
    asm volatile("" ::"x"(sink));  // the loads stay
  }

  // Offset of (image, channel k, pixel) in a blocked (N, K/16, HoWo, 16) tensor.
  int64_t blk_off(int64_t img, int64_t k, int64_t pix) const {
    return ((img * (p.K / 16) + k / 16) * p.Ho * p.Wo + pix) * 16 + k % 16;
  }

  // A band's sums accb[pixel][KB] (channels kbase .. + kmax, pixels pix0 .. + pix of image img)
  // with a blocked residual or y. A residual whose layout is not y's is first added into accb
  // (blocked: one vector per pixel; NCHW: W x W blocks transposed in registers). Then a blocked
  // y is written with bias and the activation: returns 2. For an NCHW y the caller's transposed store
  // finishes: 1 when the residual is in accb already, else 0. W divides 16 and kmax.
  int blocked_epilogue(float* accb, int64_t img, int64_t kbase, int64_t kmax, int64_t pix0, int64_t pix,
                       const float* bias, float* y, Activation act, const float* res) const {
    const int64_t HoWo = p.Ho * p.Wo;
    if (res && r_blk() != y_blk()) {
      if (r_blk()) {
        for (int64_t j = 0; j < pix; ++j)
          for (int64_t i0 = 0; i0 < kmax; i0 += W)
            V::storeu(accb + j * KB + i0,
                      V::add(V::loadu(accb + j * KB + i0), V::loadu(res + blk_off(img, kbase + i0, pix0 + j))));
      } else {
        for (int64_t i0 = 0; i0 < kmax; i0 += W)
          for (int64_t j = 0; j < pix; j += W) {
            const int m = (int)std::min<int64_t>(W, pix - j);
            typename V::reg r[W];
            for (int t = 0; t < W; ++t) {  // r[t]: pixels j .. j + m of channel kbase + i0 + t
              const float* rr = res + (img * p.K + kbase + i0 + t) * HoWo + pix0 + j;
              r[t] = m == W ? V::loadu(rr) : V::loadu_n(rr, m);
            }
            V::transpose(r);  // r[t]: the W channels of pixel j + t
            for (int t = 0; t < m; ++t)
              V::storeu(accb + (j + t) * KB + i0, V::add(V::loadu(accb + (j + t) * KB + i0), r[t]));
          }
      }
      if (!y_blk()) return 1;
      res = nullptr;
    }
    if (!y_blk()) return 0;
    const bool clamp = act.active();
    const typename V::reg lo = V::set1(act.lo), hi = V::set1(act.hi);
    for (int64_t j = 0; j < pix; ++j)
      for (int64_t i0 = 0; i0 < kmax; i0 += W) {
        const int64_t off = blk_off(img, kbase + i0, pix0 + j);
        typename V::reg v = V::loadu(accb + j * KB + i0);
        if (bias) v = V::add(v, V::loadu(bias + kbase + i0));
        if (res) v = V::add(v, V::loadu(res + off));
        if (clamp) v = V::clamp(v, lo, hi);  // NaN stays NaN
        if (act.fn >= 0) v = unary_detail::post_reg<V>(act, v);
        V::storeu(y + off + img * y_extra, v);
      }
    return 2;
  }

  // A band's sums accb[pixel][KB] (channels kbase .. + kmax, pixels pix0 .. + pix of image img)
  // finished with bias, residual and the activation and added over the pixels into
  // sums[img * K + k] (kDirectOcMeanY: the numerators of the maps' means; the maps are never
  // stored). A blocked residual is one vector per pixel; an NCHW one is read per channel.
  void mean_epilogue(const float* accb, int64_t img, int64_t kbase, int64_t kmax, int64_t pix0, int64_t pix,
                     const float* bias, Activation act, const float* res, float* sums) const {
    const int64_t HoWo = p.Ho * p.Wo;
    const bool clamp = act.active();
    const typename V::reg lo = V::set1(act.lo), hi = V::set1(act.hi);
    for (int64_t i0 = 0; i0 < kmax; i0 += W) {
      const int nk = (int)std::min<int64_t>(W, kmax - i0);
      const typename V::reg b = bias ? V::loadu_n(bias + kbase + i0, nk) : V::zero();
      typename V::reg s0 = V::zero(), s1 = V::zero();  // two chains: the adds' latency, not their rate
      for (int64_t j = 0; j < pix; ++j) {
        typename V::reg v = V::add(V::loadu(accb + j * KB + i0), b);
        if (res && r_blk()) {
          v = V::add(v, V::loadu(res + blk_off(img, kbase + i0, pix0 + j)));  // 16 | K: whole vectors
        } else if (res) {
          float r[W] = {};
          for (int c = 0; c < nk; ++c) r[c] = res[(img * p.K + kbase + i0 + c) * HoWo + pix0 + j];
          v = V::add(v, V::loadu(r));
        }
        if (clamp) v = V::clamp(v, lo, hi);  // NaN stays NaN
        if (act.fn >= 0) v = unary_detail::post_reg<V>(act, v);
        if (j & 1)
          s1 = V::add(s1, v);
        else
          s0 = V::add(s0, v);
      }
      float t[W];
      V::storeu(t, V::add(s0, s1));
      for (int c = 0; c < nk; ++c) sums[img * p.K + kbase + i0 + c] += t[c];
    }
  }

  // Loop structure (why): a unit of work is (group, kblock, image, band of output tiles). Within
  // it the input channels go in chunks whose weights fit in L1 (cc x taps x KB floats <= 32 KiB),
  // and every tile of the band runs over the chunk before the next one, so each weight is
  // loaded from L2 or memory once per band and then reused from L1 by all the band's pixels;
  // partial sums wait in a per-thread band buffer acc[pixel][KB] (<= 64 KiB). Threads take
  // contiguous ranges of units of near-equal cost (ordered below).
  void run(const float* x, const float* wbp, const float* bias, float* y, Activation act, const float* res) const {
    const int64_t Cg = p.Cg(), Kg = p.Kg(), RS = p.R * p.S, HoWo = p.Ho * p.Wo;
    int64_t cc = std::max<int64_t>(1, 8192 / (RS * KB));
    // Few channels with a large window (AlexNet's 3 x 11 x 11, 46 KiB of a kblock's weights): one
    // chunk, so every tile runs the flat (tap, channel) loop instead of 1- or 2-channel inner loops.
    if (!toff.empty() && Cg * RS * KB <= 16384) cc = Cg;
    const int64_t chunks = (Cg + cc - 1) / cc;
    cc = (Cg + chunks - 1) / chunks;
    if (x_blk()) cc = (cc + 15) / 16 * 16;  // whole channel blocks (Cg % 16 == 0)
    int64_t rb = std::max<int64_t>(1, std::min<int64_t>(p.Ho, 16384 / (p.Wo * KB)));
    int64_t bands = (p.Ho + rb - 1) / rb;
    // Enough units for the threads the work deserves: with one output block and one image (ConvNetJS
    // conv2, 16->20 @16) a single band left one thread idle.
    const int64_t per_band = p.groups * kblocks * p.N;
    const int want = threads_for(p.flops(), 1 << 30);
    if (per_band * bands < want) bands = std::min<int64_t>(p.Ho, (want + per_band - 1) / per_band);
    rb = (p.Ho + bands - 1) / bands;
    int64_t tb = rb * row_tiles;  // tiles per band: whole rows so far
    // Unit order (outer to inner): group, kblock group, image, kblock within it, band. A
    // kblock group's weights (<= one core's L2) stay in L2 across the batch's images, and an
    // image's input stays there across the group's kblocks (with images inner to single kblocks
    // every image's input was re-read from L3 per kblock: 25 MB per thread for 2048->512 @7 at
    // batch 8). With a band split the group boundary is where the threads' shares meet: on a
    // 2 MiB L2 a whole 1152->320 1x1 (1.5 MB) is one group and the threads split the images,
    // each reading those the depthwise conv before it wrote, where groups of 1 MiB had each
    // thread read all of x (docs/performance.md, direct_oc).
    const int64_t kb_bytes = RS * Cg * KB * (int64_t)sizeof(float);
    int64_t KG = 1;  // the largest divisor of kblocks whose weights fit one core's L2
    for (int64_t d = 1; d <= kblocks; ++d)
      if (kblocks % d == 0 && d * kb_bytes <= l2_cache_bytes()) KG = d;
    // A blocked pointwise conv: the threads split the bands, each running all of a group's
    // kblocks on its band (its x from L2 after the first), instead of splitting the kblocks with
    // each thread reading all of x (x, written by both cores just before, would cross between
    // them). The same in a blocked chain for any window whose input outweighs its weights (x
    // written band by band by the layer before); where the weights are larger (256@28 /2, 512@14
    // /2) each thread reading all of them loses.
    const bool band_outer = layout && (p.pointwise() || p.N * p.C * p.H * p.W >= wb_size());
    // One channel chunk, a blocked y and no NCHW residual: tiles store the outputs themselves.
    const bool direct_out = y_blk() && !images_as_row && chunks == 1 && (!res || r_blk());
    // A blocked pointwise conv (1x1, stride 1, unpadded, x blocked): contiguous pixel blocks; with a
    // blocked y and no NCHW residual its last chunk's tiles store y (direct_out: the only chunk).
    const bool pw_blocks = x_blk() && p.pointwise() && !images_as_row;
    const bool pw_store = pw_blocks && y_blk() && (!res || r_blk());
    const bool merge_last =
        kMergeLast && direct_out && x_blk() && p.pointwise() && kblocks >= 2 && Kg - (kblocks - 1) * KB == 16;
    // Few units of unequal cost leave a thread waiting (Kim's CNN at batch 1: 4 kblocks over one
    // output row, the last of 4 channels, so 2 + 2 vs 2 + 1 vectors; two kblocks of 32 + 16 over
    // a 7x7 map): the bands are cut into shorter tile ranges until the largest share is within
    // 5% of the mean.
    if (want > 1) {
      const int64_t tiles_img = p.Ho * row_tiles;
      std::vector<int64_t> begin;
      for (int64_t t = tb, best = INT64_MAX; t >= std::max<int64_t>(1, tb / 4); --t) {
        const Units us{(tiles_img + t - 1) / t, p.N, KG, kblocks, band_outer};
        const std::vector<int64_t> cost = unit_costs(us, t, merge_last);
        int64_t total = 0;
        for (int64_t c : cost) total += c;
        const int64_t worst = split_by_cost(cost, want, begin);
        if (worst < best) {
          best = worst;
          tb = t;
        }
        if (worst * 20 <= total * 21 / want) break;
      }
    }
    bands = (p.Ho * row_tiles + tb - 1) / tb;
    int64_t max_pix = 0;
    for (int64_t b = 0; b < bands; ++b) {
      int64_t pix0, pix1;
      band_pixels(b, tb, pix0, pix1);
      max_pix = std::max(max_pix, pix1 - pix0);
    }
    const size_t acc_size = (size_t)(max_pix * KB);
    check_workspace(acc_size);
    const Units us{bands, p.N, KG, kblocks, band_outer};
    const int64_t units = us.count(p.groups);
    const int nt = threads_for(p.flops(), units);
    std::vector<int64_t> begin;
    split_by_cost(unit_costs(us, tb, merge_last), nt, begin);
    // Each thread runs its cost share front to back, then takes the tail of the other's (a
    // thread whose core is busy elsewhere holds no one up; a smaller team than asked for still
    // runs every unit).
    StealingRanges work(begin);
    ParallelFailure failure;
    // kDirectOcMeanY: each thread's sums per (image, channel), added up after the team.
    const int64_t NK = mean_y() ? p.N * p.K : 0;
    std::vector<float> msums((size_t)(nt * NK), 0.0f);
    parallel_run(nt, [&] {
      float* accb = workspace_nothrow(kSlotConvOut, acc_size);
      if (!accb) failure.set();
      const int me = omp_get_thread_num();
      float* my_sums = msums.data() + me * NK;
      const int64_t u1 = me < nt ? begin[(size_t)me + 1] : 0;  // the end of its own share
      for (int64_t u = 0; accb && work.next(me, u);) {
        int64_t g, kb, n, band, pix0, pix1;
        us.decode(u, g, kb, n, band);
        band_pixels(band, tb, pix0, pix1);
        const int64_t t0 = band * tb, t1 = std::min(p.Ho * row_tiles, t0 + tb);
        const float* ximg = x + (n * p.C + g * Cg) * p.H * p.W;
        if (!toff.empty() && !x_blk() && !images_as_row) touch_band_input(ximg, pix0, pix1);
        const float* wk = wbp + (g * kblocks + kb) * RS * Cg * KB;
        // The next unit's weights when it moves to another output block (else they are the
        // ones in use, already near).
        const float* wnext = nullptr;
        if (u + 1 < u1) {
          int64_t g1, kb1, n1, band1;
          us.decode(u + 1, g1, kb1, n1, band1);
          if (g1 != g || kb1 != kb) wnext = wbp + (g1 * kblocks + kb1) * RS * Cg * KB;
        }
        const int64_t tiles = t1 - t0;
        const int kvt = kvt_of(kb, merge_last);
        if (kvt == 0) continue;  // merged into the kblock before
        const int64_t kbase = g * Kg + kb * KB;
        BlockedOut bout{};
        if (direct_out || pw_store) {
          bout.bias = bias ? bias + kbase : nullptr;
          bout.act = act;
          for (int v = 0; v < kvt; ++v) bout.voff[v] = blk_off(0, kbase + v * W, 0) - blk_off(0, kbase, 0);
        }
        for (int64_t c0 = 0; c0 < Cg; c0 += cc) {
          const int64_t ccn = std::min(cc, Cg - c0);
          // A blocked pointwise conv: the band's pixels are one contiguous run of x, y and the
          // band buffer, done as register blocks of up to PB pixels, near-equal, with none of
          // the per-row-tile bookkeeping (at 16 channels a tile is ~170 cycles of FMAs, and that
          // bookkeeping cost a tenth of them) and across rows (a 7-wide map's row tiles did 14
          // FMAs per 9 loads). Over several chunks the sums wait in the band buffer; the last
          // chunk's tiles store y themselves where y is blocked (pw_store).
          const bool last = c0 + cc >= Cg, store = pw_store && last;
          const int PB = kvt > KV ? PM : PMAX;
          const int64_t parts = pw_blocks ? (pix1 - pix0 + PB - 1) / PB : 0;
          // Fetch the next chunk's weights into L2 while this one computes: at batch 1 on small
          // maps they come from memory, and a chunk serves only the band's few pixels, so
          // without this each chunk first stalls on its loads.
          const int64_t pf_tiles = pw_blocks ? parts : tiles;  // the calls that share the lines out
          const int64_t pf_calls = RS * ((ccn + 3) / 4);       // one() calls in each of them
          WeightPrefetch pf;
          if (c0 + cc < Cg)
            pf = WeightPrefetch(wk + (c0 + cc) * KB, std::min(cc, Cg - c0 - cc), RS, Cg, pf_tiles, pf_calls);
          else if (wnext)
            pf = WeightPrefetch(wnext, std::min(cc, Cg), RS, Cg, pf_tiles, pf_calls);
          if (pw_blocks) {
            const int64_t npix = pix1 - pix0, o = blk_off(n, kbase, pix0);
            const int q = (int)(npix / parts), big = (int)(npix % parts);  // big blocks of q + 1, then q
            const TileFn fbig = big ? tile_fn(q + 1, kvt) : nullptr, fq = q ? tile_fn(q, kvt) : nullptr;
            BlockedOut ob = bout;
            ob.y = y + o + n * y_extra;
            ob.res = res ? res + o : nullptr;
            const float* xt = ximg + c0 * p.H * p.W + pix0 * 16;
            float* acct = chunks == 1 && store ? nullptr : accb;  // one chunk storing y: no band buffer
            for (int64_t k = 0; k < parts; ++k) {
              const int Pk = k < big ? q + 1 : q;
              pf.begin_tile();
              (this->*(k < big ? fbig : fq))(xt, wk + c0 * KB, ccn, acct, c0 == 0, pf, store ? &ob : nullptr, 0, 1, 0,
                                             1);
              xt += Pk * 16;
              if (acct) acct += Pk * KB;
              ob.y += Pk * 16;
              if (ob.res) ob.res += Pk * 16;
            }
            continue;
          }
          // (oh, rt) of tile t stepped along, not divided out per tile (two divisions were ~7% of
          // a first layer's 27-step tiles)
          for (int64_t t = t0, oh = t0 / row_tiles, rt = t0 % row_tiles; t < t1;
               ++t, rt = rt + 1 == row_tiles ? 0 : rt + 1, oh += rt == 0) {
            int64_t ow0;
            int P;
            row_tile(rt, ow0, P);
            pf.begin_tile();
            BlockedOut* bo = nullptr;
            if (direct_out) {
              const int64_t o = blk_off(n, kbase, oh * p.Wo + ow0);
              bout.y = y + o + n * y_extra;
              bout.res = res ? res + o : nullptr;
              bo = &bout;
            }
            float* acct = accb + (oh * p.Wo + ow0 - pix0) * KB;
            const float* xc = ximg + c0 * p.H * p.W;  // channel c0's plane (block, when x is blocked)
            const float* wc = wk + c0 * KB;
            const int r0 = rlo[(size_t)oh], r1 = rhi[(size_t)oh];
            const std::vector<Seg>& sg = segs[(size_t)rt];
            // Input of window tap (r0, s) for the tile's pixel i (inside the image when the tap is);
            // a blocked x has 16 floats per pixel.
            auto at = [&](int i, int s) {
              return xc + ((oh * p.stride_h - p.pad_t + r0 * p.dil_h) * p.W + (ow0 + i) * p.stride_w - p.pad_l +
                           s * p.dil_w) *
                              (x_blk() ? 16 : 1);
            };
            if (r0 < r1 && sg.size() == 1 && sg[0].i0 == 0 && sg[0].i1 == P) {  // the same taps for all
              (this->*tile_fn(P, kvt))(at(0, sg[0].s0), wc, ccn, acct, c0 == 0, pf, bo, r0, r1, sg[0].s0, sg[0].s1);
              continue;
            }
            // Border pixels reach fewer taps: one call per Seg into the tile's sums (zeroed
            // first); a blocked y is then written by a call over no channels.
            if (c0 == 0) std::fill(acct, acct + (size_t)P * KB, 0.0f);
            if (r0 < r1)
              for (const Seg& q : sg)
                (this->*tile_fn(q.i1 - q.i0, kvt))(at(q.i0, q.s0), wc, ccn, acct + q.i0 * KB, false, pf, nullptr, r0,
                                                   r1, q.s0, q.s1);
            if (bo) (this->*tile_fn(P, kvt))(xc, wc, 0, acct, false, pf, bo, 0, 0, 0, 0);
          }
        }
        // Transpose the band's [pixel][KB] sums into NCHW with bias and the activation: blocks of W
        // pixels x W channels, transposed in registers (the strided gathers they replaced, one
        // per W outputs, cost ~25% of ResNet's conv1).
        if (direct_out || pw_store) continue;  // the tiles wrote y
        const int64_t kmax = std::min<int64_t>(KB, Kg - kb * KB), pix = pix1 - pix0;
        if (mean_y()) {
          mean_epilogue(accb, n, kbase, kmax, pix0, pix, bias, act, res, my_sums);
          continue;
        }
        const float* ures = res;  // the residual still to add here
        if (layout) {             // a blocked x, y or residual (groups == 1, K % 16 == 0 when y or r is)
          const int done = blocked_epilogue(accb, n, kbase, kmax, pix0, pix, bias, y, act, res);
          if (done == 2) continue;
          if (done == 1) ures = nullptr;
        }
        if (images_as_row) {  // pixel j is image j: y[j][kbase ..] is one run, no transpose
          for (int64_t j = 0; j < pix; ++j)
            for (int64_t i = 0; i < kmax; ++i) {
              const int64_t off = (pix0 + j) * p.K + kbase + i;
              float v = accb[j * KB + i] + (bias ? bias[kbase + i] : 0.0f);
              if (ures) v += ures[off];
              y[off] = act.apply(v);  // NaN stays NaN
            }
          if (act.fn >= 0)
            for (int64_t j = 0; j < pix; ++j) unary_detail::post(act, y + (pix0 + j) * p.K + kbase, kmax);
          continue;
        }
        const bool clamp = act.active();
        const typename V::reg lo = V::set1(act.lo), hi = V::set1(act.hi);
        for (int64_t i0 = 0; i0 < kmax; i0 += W) {
          const int nk = (int)std::min<int64_t>(W, kmax - i0);
          for (int64_t j = 0; j < pix; j += W) {
            const int m = (int)std::min<int64_t>(W, pix - j);  // pixels in this block
            typename V::reg r[W];
            for (int t = 0; t < W; ++t) r[t] = t < m ? V::loadu(accb + (j + t) * KB + i0) : V::zero();
            V::transpose(r);
            for (int c = 0; c < nk; ++c) {  // r[c]: pixels j.. of channel kbase + i0 + c
              const int64_t k = kbase + i0 + c;
              const int64_t off = (n * p.K + k) * HoWo + pix0 + j;
              typename V::reg v = V::add(r[c], V::set1(bias ? bias[k] : 0.0f));
              if (ures) v = V::add(v, m == W ? V::loadu(ures + off) : V::loadu_n(ures + off, m));
              if (clamp) v = V::clamp(v, lo, hi);  // NaN stays NaN
              if (act.fn >= 0) v = unary_detail::post_reg<V>(act, v);
              if (m == W)
                V::storeu(y + off, v);
              else
                V::storeu_n(y + off, v, m);
            }
          }
        }
      }
    });
    failure.rethrow();
    if (mean_y()) {
      for (int64_t i = 0; i < NK; ++i) {
        float t = 0.0f;
        for (int th = 0; th < nt; ++th) t += msums[(size_t)(th * NK + i)];
        y[i] = t / (float)HoWo;
      }
    }
  }
};

// Entry points of one ISA build (KV vectors of output channels x up to PMAX pixels),
// instantiated by conv2d_direct_oc__<isa>.cpp.
#define PYCNN_DIRECT_OC_ISA(isa, KV, PMAX)                                                                        \
  void conv2d_direct_oc_prepare__##isa(const ConvParams& p, const float* w, AlignedBuffer<float>& wb) {           \
    DirectOcConv<simd::isa, KV, PMAX> conv(p);                                                                    \
    wb.resize((size_t)conv.wb_size());                                                                            \
    conv.reorder_weights(w, wb.data());                                                                           \
  }                                                                                                               \
  void conv2d_direct_oc__##isa(const ConvParams& p, const float* x, const float* wb, const float* bias, float* y, \
                               Activation act, const float* res, int layout) {                                    \
    DirectOcConv<simd::isa, KV, PMAX>(p, false, layout).run(x, wb, bias, y, act, res);                            \
  }                                                                                                               \
  void conv2d_direct_oc_images__##isa(const ConvParams& p, const float* x, const float* wb, const float* bias,    \
                                      float* y, Activation act, const float* res, int) {                          \
    DirectOcConv<simd::isa, KV, PMAX>(p, true).run(x, wb, bias, y, act, res);                                     \
  }

}  // namespace pycnn
