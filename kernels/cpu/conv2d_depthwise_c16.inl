// Depthwise and grouped convolution vectorized over channels, written once over a SIMD type V and
// compiled per ISA (conv2d_depthwise_c16__<isa>.cpp, conv2d_grouped_c16__<isa>.cpp): G input and
// G output channels per group, G = 1 (depthwise: MobileNet, EfficientNet, MNASNet) or 2, 4, 8
// (ResNeXt's and RegNet's grouped 3x3s), C == K. x (N, C/16, H, W, 16) when layout has
// kDirectOcXBlocked, else NCHW; y (N, K/16, Ho, Wo, 16) with kDirectOcYBlocked, else NCHW; the
// residual likewise with kDirectOcResBlocked; w prepared as (ceil(C/16), R*S, G, 16), bias as
// given (C floats or null).
//
// Groups (G > 1): a group's G channels are G adjacent lanes (16 % G == 0, so no group straddles a
// block). Output lane k sums, over J < G, w[k][(k + J) % G] times lane (k + J) % G of its group
// in the input pixel: rotation J of the pixel's vector within groups of G lanes (one in-lane
// shuffle; none for J = 0). Every lane stays useful, where per-group GEMMs or dense kernels with
// zero weights outside the group spend 16 / G lanes on each useful one (ResNeXt's G = 4: 44
// GFLOP/s as im2col, direct or direct_oc). Where a group fills the vector (G == W: AVX2's
// groups of 8) broadcasting input channel J from memory against unrotated weights instead of the
// cross-lane rotations measured within noise of them, so one layout serves every ISA.
//
// Why: on NCHW planes the vector runs along a row, and the 7- and 14-wide maps of the last stages
// fill 7/16 and 14/16 of it; here the 16 channels of a pixel are the vector whatever the map size,
// and every tap of every output pixel is one contiguous 64-byte run.
//
// Per (image, channel block, band of output rows): the band's input rows are copied once into a
// zero-padded buffer of 16-channel pixels (an NCHW x is transposed on the way in, W channels x W
// pixels in registers), so the taps need no bounds checks; a blocked x at stride 2 (and at stride
// 1 for 3x3 windows on wide maps) is read in place, its edge columns skipping their padding taps
// (row_direct). Output pixels T at a time keep their
// accumulators in registers over all R*S taps; a finished output row gets the residual and the
// activation while it is in L1 and is written once (to an NCHW y through the same transposes).
// Channels past C in the last block (NCHW tensors only) compute zeros and are never stored.
#pragma once
#include <algorithm>
#include <cstring>
#include <limits>
#include <type_traits>
#include <vector>

#include "conv2d.h"
#include "eltwise_unary.inl"
#include "pycnn/parallel.h"
#include "simd.h"

namespace pycnn {

template <class V, int G>
struct GroupedC16 {
  static_assert(G == 1 || G == 2 || G == 4 || G == 8, "channels per group: 1, 2, 4 or 8");
  static constexpr int W = V::W, KV = 16 / W;  // lanes, vectors per 16-channel pixel
  static_assert(G <= W, "a group within one vector");
  // Output pixels per register block: T * KV accumulators plus KV weights and KV inputs in registers.
  static constexpr int T = KV == 1 ? 8 : 4;
  static constexpr int64_t kBufBytes = 48 * 1024;  // a band's padded input rows: within L2 beside y's rows
  using reg = typename V::reg;

  static constexpr int kMaxR = 7;  // tap rows row_direct serves (and row without allocating)
  // Middle columns for row_direct at stride 2: 3x3 windows from 4 (576@14 3x3/2 1.07-1.32x over
  // the copy); wider windows from one register block (with edge_pixel_t: 240@28 5x5/2 1.15x,
  // 96@28 1.23x; a middle of 5, the 7-wide maps, 0.92-0.98x: one block of 7 from the copy wins).
  // At stride 1 (one input row copied per output row) 3x3 windows from four blocks, with one
  // vector per pixel (AVX-512's input reuse): 144@56 1.19-1.28x, 32@112 1.02-1.09x; on 28-wide
  // and smaller maps, with 5x5 or 7x7 windows (0.73-0.78x: the edges' taps one pixel at a time)
  // and on AVX2 (144@56 0.94x, 16@56 0.81x) the copy stays.
  static constexpr int64_t kMinDirect3 = 4, kMinDirect = T, kMinDirect3s1 = 4 * T;

  const ConvParams& p;
  bool xb, yb, rb;
  // Rows read in place from a blocked x (row_direct) at stride 2, where the band copy moves two
  // input rows per output row, and at stride 1 for 3x3 windows on wide maps (kMinDirect*).
  bool direct;
  int64_t Cb, Wp, band, buf_rows;
  int64_t inner_lo, inner_hi;  // output columns whose taps all fall inside the input row
  // The clamp (ReLU, ReLU6) the blocks apply as they store their sums, where nothing is added
  // after them (no residual): a pass of its own over each finished row cost 14-18% of a 3x3
  // stride-1 layer. (-inf, inf) otherwise; set by whoever runs the rows (store_clamp).
  float st_lo = -std::numeric_limits<float>::infinity(), st_hi = std::numeric_limits<float>::infinity();

  GroupedC16(const ConvParams& q, int layout)
      : p(q),
        xb(layout & kDirectOcXBlocked),
        yb(layout & kDirectOcYBlocked),
        rb(layout & kDirectOcResBlocked),
        Cb((q.C + 15) / 16),
        Wp((q.Wo - 1) * q.stride_w + (q.S - 1) * q.dil_w + 1) {
    const int64_t row_bytes = Wp * 16 * (int64_t)sizeof(float), reach = (p.R - 1) * p.dil_h + 1;
    const int64_t fit = (kBufBytes / row_bytes - reach) / p.stride_h + 1;  // output rows whose inputs fit
    band = std::max<int64_t>(1, std::min<int64_t>(p.Ho, fit));
    buf_rows = (band - 1) * p.stride_h + reach;
    inner_lo = (p.pad_l + p.stride_w - 1) / p.stride_w;
    const int64_t last = p.W - 1 + p.pad_l - (p.S - 1) * p.dil_w;  // the last padded column a span may start at
    inner_hi = last < 0 ? 0 : std::min<int64_t>(p.Wo, last / p.stride_w + 1);
    const int64_t middle = inner_hi - inner_lo;
    direct = xb && p.R <= kMaxR && p.S <= kMaxR &&
             (p.stride_w >= 2 ? middle >= (p.S <= 3 ? kMinDirect3 : kMinDirect)
                              : KV == 1 && p.S <= 3 && middle >= kMinDirect3s1);
  }

  // The blocks store act's clamp with their sums; returns what is left for finish() (its
  // function, e.g. hardswish, which runs over the stored row).
  Activation store_clamp(const Activation& act) {
    st_lo = act.lo;
    st_hi = act.hi;
    Activation rest = act;
    rest.lo = -std::numeric_limits<float>::infinity();
    rest.hi = std::numeric_limits<float>::infinity();
    return rest;
  }
  reg stored(reg v) const { return V::clamp(v, V::set1(st_lo), V::set1(st_hi)); }  // NaN stays NaN

  // Channels of block cb that exist (16 but in an NCHW tensor's last block).
  int lanes(int64_t cb) const { return (int)std::min<int64_t>(16, p.C - cb * 16); }

  // Input rows for output rows [ho0, ho0 + band) of channel block cb of image n into buf
  // (buf_rows x Wp pixels x 16): padded column j is input column j - pad_l. Only the columns
  // [j0, j1) of the input are written: buf starts zero and its padding columns stay so, with no
  // memset per padding run (two a row, calls of a line or two each on the 7- to 14-wide maps).
  void load(const float* x, int64_t n, int64_t cb, int64_t ho0, int64_t nrows, float* buf) const {
    const int64_t j0 = std::min<int64_t>(Wp, p.pad_l), j1 = std::min<int64_t>(Wp, p.pad_l + p.W);
    if (j1 <= j0) return;  // every column is padding: buf is zero already
    const int cn = lanes(cb);
    for (int64_t i = 0; i < nrows; ++i) {
      float* d = buf + i * Wp * 16;
      const int64_t h = ho0 * p.stride_h - p.pad_t + i;
      if (h < 0 || h >= p.H) {
        std::memset(d + j0 * 16, 0, sizeof(float) * 16 * (size_t)(j1 - j0));
        continue;
      }
      if (xb) {
        std::memcpy(d + j0 * 16, x + (((n * Cb + cb) * p.H + h) * p.W + j0 - p.pad_l) * 16,
                    sizeof(float) * 16 * (size_t)(j1 - j0));
      } else {
        const float* s = x + ((n * p.C + cb * 16) * p.H + h) * p.W - p.pad_l;  // channel rows H*W apart
        to_pixels(s, p.H * p.W, cn, j0, j1, d);
      }
    }
  }

  // d[j * 16 + c] = s[c * ld + j] for j in [j0, j1), c < cn; zero for cn <= c < 16.
  static void to_pixels(const float* s, int64_t ld, int cn, int64_t j0, int64_t j1, float* d) {
    for (int64_t j = j0; j < j1; j += W) {
      const int m = (int)std::min<int64_t>(W, j1 - j);
      for (int h = 0; h < 16; h += W) {
        reg r[W];
        for (int q = 0; q < W; ++q) {
          const float* row = s + (h + q) * ld + j;
          r[q] = h + q >= cn ? V::zero() : (m == W ? V::loadu(row) : V::loadu_n(row, m));
        }
        V::transpose(r);  // r[l]: channels h .. h + W of pixel j + l
        for (int l = 0; l < m; ++l) V::storeu(d + (j + l) * 16 + h, r[l]);
      }
    }
  }

  // d[c * ld + j] = s[j * 16 + c] for j < n, c < cn: a pixel-major row out to channel rows.
  static void from_pixels(const float* s, int64_t n, int cn, float* d, int64_t ld) {
    for (int64_t j = 0; j < n; j += W) {
      const int m = (int)std::min<int64_t>(W, n - j);
      for (int h = 0; h < cn; h += W) {
        reg r[W];
        for (int l = 0; l < W; ++l) r[l] = l < m ? V::loadu(s + (j + l) * 16 + h) : V::zero();
        V::transpose(r);  // r[q]: pixels j .. j + m of channel h + q
        for (int q = 0; q < std::min(W, cn - h); ++q) {
          float* row = d + (h + q) * ld + j;
          if (m == W)
            V::storeu(row, r[q]);
          else
            V::storeu_n(row, r[q], m);
        }
      }
    }
  }

  // f(std::integral_constant<int, J>) for J = J0 .. G - 1: the rotations, as compile-time shuffles.
  template <int J0 = 0, class F>
  static inline void each_rotation(F&& f) {
    if constexpr (J0 < G) {
      f(std::integral_constant<int, J0>{});
      each_rotation<J0 + 1>(f);
    }
  }
  template <int J>
  static inline reg rot(reg v) {
    return simd::rotate_in_groups<V, G, J>(v);
  }

  // out[t * 16, +16) = bias + the R*S taps of output pixels wo .. wo + NT, tap row r being
  // rows[r] (16-channel pixels; output pixel 0 of the span reads its column 0).
  template <int NT, int kR, int kS>
  void pixels(const float* const* rows, int64_t wo, const float* wk, const reg* b, float* out) const {
    const int64_t R = kR ? kR : p.R, S = kS ? kS : p.S, sw16 = p.stride_w * 16, dw16 = p.dil_w * 16;
    reg acc[NT][KV];
    for (int t = 0; t < NT; ++t)
      for (int v = 0; v < KV; ++v) acc[t][v] = b[v];
    for (int64_t r = 0; r < R; ++r) {
      const float* row = rows[r] + wo * sw16;
      for (int64_t s = 0; s < S; ++s) {
        const float* src = row + s * dw16;
        const float* ws = wk + (r * S + s) * G * 16;
        for (int v = 0; v < KV; ++v) {
          if constexpr (G == 1) {
            const reg wv = V::loadu(ws + v * W);
            for (int t = 0; t < NT; ++t) acc[t][v] = V::fmadd(wv, V::loadu(src + t * sw16 + v * W), acc[t][v]);
          } else {
            for (int t = 0; t < NT; ++t) {
              const reg xv = V::loadu(src + t * sw16 + v * W);
              each_rotation([&](auto j) {
                constexpr int J = decltype(j)::value;
                acc[t][v] = V::fmadd(V::loadu(ws + J * 16 + v * W), rot<J>(xv), acc[t][v]);
              });
            }
          }
        }
      }
    }
    for (int t = 0; t < NT; ++t)
      for (int v = 0; v < KV; ++v) V::storeu(out + t * 16 + v * W, stored(acc[t][v]));
  }

  // The same for strides kSt of 1 or 2 and dilation 1 (AVX-512: any window; AVX2, two vectors
  // per pixel: 3x3, the window whose kept pixels fit its 16 registers beside the 8 accumulators;
  // not the generic build, whose vectors live in memory):
  // the input pixels of a tap row are loaded once and serve all the taps that read them (3x3 at
  // stride 1: 10 loads for 24 FMAs instead of 24), one vector of the 16 channels at a time. At
  // stride 2 only the even pixels are kept (the even taps share them; odd taps read theirs once
  // each): keeping all 2 * NT + 1 left too few registers and ran slower than no reuse. Groups:
  // each kept pixel is rotated once per J (kIn shuffles serve kS * NT FMAs), the odd taps' pixels
  // once per FMA.
  template <int NT, int kR, int kS, int kSt>
  void pixels_reuse(const float* const* rows, int64_t wo, const float* wk, const reg* b, float* out) const {
    static_assert(kR > 0 && kS > 0 && (kSt == 1 || kSt == 2), "taps known");
    constexpr int kIn = kSt == 1 ? NT + kS - 1 : NT + (kS - 1) / 2;  // pixels kept: all, or the even ones
    // Two sets of accumulators (even and odd tap rows) for 5x5 and 7x7 windows where the
    // registers allow: with one, NT chains of R*S dependent FMAs (4 cycles each) leave no slack at
    // 2 FMAs a cycle (1.02-1.09x; 3x3 windows 0.97-0.98x: their 9-deep chains are not the bound).
    constexpr int NA = KV == 1 && V::kRegisters && kS >= 5 && (NT == T || kSt == 1) && 2 * NT + kIn + 2 <= 32 ? 2 : 1;
    reg acc2[NA][NT][KV];
    for (int a = 0; a < NA; ++a)
      for (int t = 0; t < NT; ++t)
        for (int v = 0; v < KV; ++v) acc2[a][t][v] = a == 0 ? b[v] : V::zero();
    // Every loop unrolled, so the arrays live in registers (GCC's own limits left larger
    // instantiations' tap loops rolled, with in[] and acc[] on the stack).
#pragma GCC unroll 7
    for (int r = 0; r < kR; ++r) {
      reg(&acc)[NT][KV] = acc2[r % NA];
#pragma GCC unroll 2
      for (int v = 0; v < KV; ++v) {
        const float* row = rows[r] + wo * kSt * 16 + v * W;
        reg in[kIn];
#pragma GCC unroll 16
        for (int i = 0; i < kIn; ++i) {  // one load for kS uses: kept in its register (see V::keep)
          in[i] = V::loadu(row + i * kSt * 16);
          V::keep(in[i]);
        }
        each_rotation([&](auto j) {
          constexpr int J = decltype(j)::value;
          reg rin[kIn];
#pragma GCC unroll 16
          for (int i = 0; i < kIn; ++i) rin[i] = rot<J>(in[i]);
#pragma GCC unroll 7
          for (int s = 0; s < kS; ++s) {
            const reg wv = V::loadu(wk + ((r * kS + s) * G + J) * 16 + v * W);
            if (kSt == 1 || s % 2 == 0) {
#pragma GCC unroll 16
              for (int t = 0; t < NT; ++t) acc[t][v] = V::fmadd(wv, rin[t + s / kSt], acc[t][v]);
            } else {
#pragma GCC unroll 16
              for (int t = 0; t < NT; ++t)
                acc[t][v] = V::fmadd(wv, rot<J>(V::loadu(row + (2 * t + s) * 16)), acc[t][v]);
            }
          }
        });
      }
    }
    for (int t = 0; t < NT; ++t)
      for (int v = 0; v < KV; ++v)
        V::storeu(out + t * 16 + v * W, stored(NA == 2 ? V::add(acc2[0][t][v], acc2[NA - 1][t][v]) : acc2[0][t][v]));
  }

  // n taps of NT output pixels shared out over U accumulators in turn, summed at the end (the
  // first starts at the bias b): one accumulator per pixel made a chain of n dependent FMAs (25
  // at 5x5, ~100 cycles of latency for 25 FMAs). tap(q, a) adds tap q into a[NT][KV]; out gets
  // pixel t's KV vectors at t * 16. For one or two pixels: a row's padding edges (edge_pixel),
  // a span's short tail (pixels_chains).
  template <int NT, class Tap>
  __attribute__((always_inline)) void taps_over_accumulators(int64_t n, const reg* b, Tap&& tap, float* out) const {
    constexpr int U = 4;
    reg acc[U][NT][KV];
    for (int u = 0; u < U; ++u)
      for (int t = 0; t < NT; ++t)
        for (int v = 0; v < KV; ++v) acc[u][t][v] = u == 0 ? b[v] : V::zero();
    int64_t q = 0;
    for (; q + U <= n; q += U)
#pragma GCC unroll 4
      for (int u = 0; u < U; ++u) tap(q + u, acc[u]);
#pragma GCC unroll 4
    for (int u = 0; u < U; ++u)
      if (q + u < n) tap(q + u, acc[u]);
    for (int t = 0; t < NT; ++t)
      for (int v = 0; v < KV; ++v)
        V::storeu(out + t * 16 + v * W,
                  stored(V::add(V::add(acc[0][t][v], acc[1][t][v]), V::add(acc[2][t][v], acc[3][t][v]))));
  }

  // One or two output pixels of a span, all R*S taps inside (taps_over_accumulators).
  template <int NT, int kR, int kS>
  void pixels_chains(const float* const* rows, int64_t wo, const float* wk, const reg* b, float* out) const {
    const int64_t R = kR ? kR : p.R, S = kS ? kS : p.S, sw16 = p.stride_w * 16, dw16 = p.dil_w * 16;
    auto tap = [&](int64_t q, reg(&a)[NT][KV]) __attribute__((always_inline)) {
      const int64_t r = q / S, s = q - r * S;
      const float* src = rows[r] + wo * sw16 + s * dw16;
      const float* ws = wk + q * G * 16;
      for (int v = 0; v < KV; ++v)
        for (int t = 0; t < NT; ++t) {
          const reg xv = V::loadu(src + t * sw16 + v * W);
          each_rotation([&](auto j) {
            constexpr int J = decltype(j)::value;
            a[t][v] = V::fmadd(V::loadu(ws + J * 16 + v * W), rot<J>(xv), a[t][v]);
          });
        }
    };
    taps_over_accumulators<NT>(R * S, b, tap, out);
  }

  // A span's last rem < T output pixels as one register block of rem (not rem blocks of one,
  // whose single accumulator is a chain of R*S dependent FMAs: the 7-wide maps of the last
  // stages are all tail); one or two pixels with their taps over several accumulators
  // (pixels_chains). kSt 0: the general loop (pixels).
  template <int NT, int kR, int kS, int kSt>
  void tail(int rem, const float* const* rows, int64_t wo, const float* wk, const reg* b, float* out) const {
    if constexpr (NT >= 1) {
      if (rem != NT) return tail<NT - 1, kR, kS, kSt>(rem, rows, wo, wk, b, out);
      if constexpr (NT <= 2)
        pixels_chains<NT, kR, kS>(rows, wo, wk, b, out);
      else if constexpr (kSt == 0)
        pixels<NT, kR, kS>(rows, wo, wk, b, out);
      else
        pixels_reuse<NT, kR, kS, kSt>(rows, wo, wk, b, out);
    }
  }

  template <int kR, int kS, int kSt>
  void span_blocks(const float* const* rows, int64_t n, const float* wk, const reg* b, float* out) const {
    // A tail of one or two pixels would run as chains (pixels_chains, twice a block's cost per
    // pixel): after a full block, that block and the tail run as two near-equal blocks instead
    // (26 at T = 8: 8 + 8 + 5 + 5, not 8 + 8 + 8 + 2), where both keep at least 3 pixels.
    const int64_t rem = n % T;
    const bool rebalance = n > T && rem > 0 && rem <= 2 && (T + rem) / 2 >= 3;
    const int64_t full_end = n - rem - (rebalance ? T : 0);
    int64_t wo = 0;
    for (; wo < full_end; wo += T) {
      if constexpr (kSt == 0)
        pixels<T, kR, kS>(rows, wo, wk, b, out + wo * 16);
      else
        pixels_reuse<T, kR, kS, kSt>(rows, wo, wk, b, out + wo * 16);
    }
    if (rebalance) {
      const int first = (int)(T + rem + 1) / 2;
      tail<T - 1, kR, kS, kSt>(first, rows, wo, wk, b, out + wo * 16);
      wo += first;
    }
    if (wo < n) tail<T - 1, kR, kS, kSt>((int)(n - wo), rows, wo, wk, b, out + wo * 16);
  }

  // n output pixels of one row into out (n * 16 floats), tap row r read from rows[r].
  template <int kR, int kS>
  void span(const float* const* rows, int64_t n, const float* wk, const reg* b, float* out) const {
    // See pixels_reuse (SSE2's memory-backed reg: stride 2 ran 0.86-0.90x with it)
    if constexpr ((KV == 1 || (KV == 2 && kS == 3 && V::kRegisters)) && kR > 0 && kS > 0) {
      if (p.dil_w == 1 && p.dil_h == 1 && p.stride_w == 1) return span_blocks<kR, kS, 1>(rows, n, wk, b, out);
      if (p.dil_w == 1 && p.dil_h == 1 && p.stride_w == 2) return span_blocks<kR, kS, 2>(rows, n, wk, b, out);
    }
    span_blocks<kR, kS, 0>(rows, n, wk, b, out);
  }

  // One output row from a padded buffer (Wp pixels a row) whose tap row r is row brow + r * dil_h.
  template <int kR, int kS>
  void row(const float* buf, int64_t brow, const float* wk, const reg* b, float* out) const {
    const float* few[kMaxR];
    std::vector<const float*> many(p.R > kMaxR ? p.R : 0);
    const float** rows = p.R > kMaxR ? many.data() : few;
    for (int64_t r = 0; r < p.R; ++r) rows[r] = buf + (brow + r * p.dil_h) * Wp * 16;
    span<kR, kS>(rows, p.Wo, wk, b, out);
  }

  // Output pixel wo of a row from x's tap rows xr (null above or below the map), the taps that
  // fall outside the row skipped: a row's edge columns, with no padded copy. The taps inside go
  // over several accumulators (taps_over_accumulators).
  void edge_pixel(const float* const* xr, int64_t wo, const float* wk, const reg* b, float* out) const {
    const float* src[kMaxR * kMaxR];  // the taps inside: their input pixel and weights
    const float* wts[kMaxR * kMaxR];
    int n = 0;
    for (int64_t r = 0; r < p.R; ++r) {
      if (!xr[r]) continue;
      for (int64_t s = 0; s < p.S; ++s) {
        const int64_t iw = wo * p.stride_w - p.pad_l + s * p.dil_w;
        if (iw < 0 || iw >= p.W) continue;
        src[n] = xr[r] + iw * 16;
        wts[n++] = wk + (r * p.S + s) * G * 16;
      }
    }
    auto tap = [&](int64_t q, reg(&a)[1][KV]) __attribute__((always_inline)) {
      for (int v = 0; v < KV; ++v) {
        const reg xv = V::loadu(src[q] + v * W);
        each_rotation([&](auto j) {
          constexpr int J = decltype(j)::value;
          a[0][v] = V::fmadd(V::loadu(wts[q] + J * 16 + v * W), rot<J>(xv), a[0][v]);
        });
      }
    };
    taps_over_accumulators<1>(n, b, tap, out);
  }

  // edge_pixel with the window known at compile time: the taps unrolled, each inside one tested
  // in place and added into accumulator (r * kS + s) % 4; building the generic version's lists of
  // taps cost more than their FMAs (two edge pixels a row were a quarter of 80@56 5x5/2).
  template <int kR, int kS>
  void edge_pixel_t(const float* const* xr, int64_t wo, const float* wk, const reg* b, float* out) const {
    const int64_t iw0 = wo * p.stride_w - p.pad_l;
    reg acc[4][KV];
    for (int u = 0; u < 4; ++u)
      for (int v = 0; v < KV; ++v) acc[u][v] = u == 0 ? b[v] : V::zero();
#pragma GCC unroll 7
    for (int r = 0; r < kR; ++r) {
      if (!xr[r]) continue;
#pragma GCC unroll 7
      for (int s = 0; s < kS; ++s) {
        const int64_t iw = iw0 + s * p.dil_w;
        if (iw < 0 || iw >= p.W) continue;
        const float* src = xr[r] + iw * 16;
        const float* ws = wk + (r * kS + s) * G * 16;
        const int u = (r * kS + s) % 4;
#pragma GCC unroll 2
        for (int v = 0; v < KV; ++v) {
          const reg xv = V::loadu(src + v * W);
          each_rotation([&](auto j) {
            constexpr int J = decltype(j)::value;
            acc[u][v] = V::fmadd(V::loadu(ws + J * 16 + v * W), rot<J>(xv), acc[u][v]);
          });
        }
      }
    }
    for (int v = 0; v < KV; ++v)
      V::storeu(out + v * W, stored(V::add(V::add(acc[0][v], acc[1][v]), V::add(acc[2][v], acc[3][v]))));
  }

  // One output row read straight from a channel-blocked x (no padded copy: the copy was a third
  // of a stride-2 layer's time): the columns whose taps all fall inside the row read x (rows
  // above or below the map read zero: Wp zero pixels), and the edge columns, whose taps reach the
  // padding, skip those taps (edge_pixel). Edges of whole register blocks from padded copies of
  // their taps (8 + 4 of 28 columns at 3x3/2) ran 72 (80) @56 3x3/2 1.4-1.6x slower.
  template <int kR, int kS>
  void row_direct(const float* x, int64_t n, int64_t cb, int64_t ho, const float* zero, const float* wk, const reg* b,
                  float* out) const {
    const float* xr[kMaxR];  // tap row r's input row, or null above / below the map
    for (int64_t r = 0; r < p.R; ++r) {
      const int64_t h = ho * p.stride_h - p.pad_t + r * p.dil_h;
      xr[r] = h >= 0 && h < p.H ? x + ((n * Cb + cb) * p.H + h) * p.W * 16 : nullptr;
    }
    const int64_t m0 = std::min(p.Wo, inner_lo);
    const int64_t m1 = std::max(m0, std::min(p.Wo, inner_hi));
    if (m1 > m0) {
      const float* rows[kMaxR];
      const int64_t c = m0 * p.stride_w - p.pad_l;  // x column of the span's first pixel
      for (int64_t r = 0; r < p.R; ++r) rows[r] = xr[r] ? xr[r] + c * 16 : zero;
      span<kR, kS>(rows, m1 - m0, wk, b, out + m0 * 16);
    }
    auto edge = [&](int64_t wo) {
      if constexpr (kR > 0 && kS > 0)
        edge_pixel_t<kR, kS>(xr, wo, wk, b, out + wo * 16);
      else
        edge_pixel(xr, wo, wk, b, out + wo * 16);
    };
    for (int64_t wo = 0; wo < m0; ++wo) edge(wo);
    for (int64_t wo = m1; wo < p.Wo; ++wo) edge(wo);
  }

  template <int kR, int kS>
  void run_taps(const float* x, const float* w, const float* bias, float* y, Activation act, const float* res) const {
    const int64_t bands = (p.Ho + band - 1) / band, items = p.N * Cb * bands;
    const int64_t HWo = p.Ho * p.Wo;
    // threads_for counts flops at GEMM speed; a depthwise flop costs ~3x that (one FMA per loaded
    // vector: 20-35 GFLOP/s a thread against 60-70), so a 16-channel 56x56 3x3 map splits too.
    // Groups do G FMAs per loaded vector.
    const double flops = 2.0 * double(p.N) * double(p.C) * double(HWo) * double(p.R * p.S) * G;
    const double work = (G == 1 ? 3.0 : 1.5) * flops;
    const int nt = threads_for(work, items);
    // Items in (image, band, channel block) order: at batch 1 a thread's share is the bands of
    // half the map, all channel blocks, the rows the band-split 1x1 convs around it (direct_oc)
    // wrote and read on the same core; even shares, tails stolen (parallel.h).
    StealingRanges share(StealingRanges::even(items, nt));
    parallel_run(nt, [&] {
      // direct: buf holds a zero row; else the band's padded rows (zero-initialized: load()
      // never writes the padding columns).
      std::vector<float> buf((size_t)((direct ? 1 : buf_rows) * Wp * 16));
      std::vector<float> line(yb ? 0 : (size_t)(p.Wo * 16));  // an output row before it goes to NCHW
      for (int64_t it = 0; share.next(omp_get_thread_num(), it);) {
        const int64_t n = it / (Cb * bands), cb = it % Cb, ho0 = it / Cb % bands * band;
        const int64_t ho1 = std::min(p.Ho, ho0 + band);
        const int cn = lanes(cb);
        if (!direct) load(x, n, cb, ho0, (ho1 - ho0 - 1) * p.stride_h + (p.R - 1) * p.dil_h + 1, buf.data());
        alignas(64) float bl[16] = {};
        if (bias) std::memcpy(bl, bias + cb * 16, sizeof(float) * (size_t)cn);
        reg b[KV];
        for (int v = 0; v < KV; ++v) b[v] = V::loadu(bl + v * W);
        const float* wk = w + cb * p.R * p.S * G * 16;
        for (int64_t ho = ho0; ho < ho1; ++ho) {
          const int64_t blk_off = ((n * Cb + cb) * p.Ho + ho) * p.Wo * 16;  // the row in a blocked tensor
          float* out = yb ? y + blk_off : line.data();
          if (direct)
            row_direct<kR, kS>(x, n, cb, ho, buf.data(), wk, b, out);
          else
            row<kR, kS>(buf.data(), (ho - ho0) * p.stride_h, wk, b, out);
          const int64_t nchw_off = (n * p.C + cb * 16) * HWo + ho * p.Wo;  // channel cb*16's row ho
          if (res && rb) {
            const float* rr = res + blk_off;
            for (int64_t i = 0; i < p.Wo * 16; i += W) V::storeu(out + i, V::add(V::loadu(out + i), V::loadu(rr + i)));
          } else if (res) {
            add_nchw_residual(res + nchw_off, cn, out);
          }
          finish(act, out, p.Wo * 16);
          if (!yb) from_pixels(out, p.Wo, cn, y + nchw_off, HWo);
        }
      }
    });
  }

  // The epilogue on n floats just stored at out: the clamp (NaN kept), then the function.
  static void finish(const Activation& act, float* out, int64_t n) {
    if (act.active()) {
      const reg lo = V::set1(act.lo), hi = V::set1(act.hi);
      for (int64_t i = 0; i < n; i += W) V::storeu(out + i, V::clamp(V::loadu(out + i), lo, hi));
    }
    unary_detail::post(act, out, n);
  }

  // out (a pixel-major row) += the NCHW residual rows of its cn channels (HWo apart).
  void add_nchw_residual(const float* r, int cn, float* out) const {
    alignas(64) float tmp[16 * 16];
    for (int64_t j = 0; j < p.Wo; j += 16) {
      const int64_t m = std::min<int64_t>(16, p.Wo - j);
      to_pixels(r + j, p.Ho * p.Wo, cn, 0, m, tmp);
      for (int64_t i = 0; i < m * 16; i += W)
        V::storeu(out + j * 16 + i, V::add(V::loadu(out + j * 16 + i), V::loadu(tmp + i)));
    }
  }

  void run(const float* x, const float* w, const float* bias, float* y, Activation act, const float* res) {
    if (!res) act = store_clamp(act);  // a residual is added before the clamp: then finish() clamps
    if (p.R == 3 && p.S == 3) return run_taps<3, 3>(x, w, bias, y, act, res);
    if (p.R == 5 && p.S == 5) return run_taps<5, 5>(x, w, bias, y, act, res);
    if (p.R == 7 && p.S == 7) return run_taps<7, 7>(x, w, bias, y, act, res);
    run_taps<0, 0>(x, w, bias, y, act, res);
  }
};

template <class V>
using DepthwiseC16 = GroupedC16<V, 1>;

#define PYCNN_DEPTHWISE_C16_ISA(isa)                                                                                 \
  void conv2d_depthwise_c16__##isa(const ConvParams& p, const float* x, const float* w, const float* bias, float* y, \
                                   Activation act, const float* residual, int layout) {                              \
    DepthwiseC16<simd::isa>(p, layout).run(x, w, bias, y, act, residual);                                            \
  }

// G = C / groups of 2, 4 or 8 (conv2d_grouped_c16 checks).
#define PYCNN_GROUPED_C16_ISA(isa)                                                                                 \
  void conv2d_grouped_c16__##isa(const ConvParams& p, const float* x, const float* w, const float* bias, float* y, \
                                 Activation act, const float* residual, int layout) {                              \
    switch (p.C / p.groups) {                                                                                      \
      case 2:                                                                                                      \
        return GroupedC16<simd::isa, 2>(p, layout).run(x, w, bias, y, act, residual);                              \
      case 4:                                                                                                      \
        return GroupedC16<simd::isa, 4>(p, layout).run(x, w, bias, y, act, residual);                              \
      default:                                                                                                     \
        return GroupedC16<simd::isa, 8>(p, layout).run(x, w, bias, y, act, residual);                              \
    }                                                                                                              \
  }

}  // namespace pycnn
