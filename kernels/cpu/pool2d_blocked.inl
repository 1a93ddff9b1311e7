// Max and average pooling on channel-blocked tensors (NCHW16c: x (N, C/16, H, W, 16) -> y (N, C/16, Ho, Wo,
// 16); see pycnn/layout.py), written once over a SIMD type V and compiled per ISA
// (pool2d_blocked__<isa>.cpp).
//
// A pixel's 16 channels are one line, so an output pixel is the max over its window's lines,
// 16 / W vectors each: no phases (pool2d.inl's NCHW passes), every lane useful at any stride;
// at stride 1 the max is taken over the window's rows per input column, then over columns
// (separable). Threads split (channel block, output row) pairs in the order the conv before
// split its output (BlockedRows). Window rows and columns are
// clipped to the image (max pooling never selects padding; every window holds at least one
// input pixel, as the bind checks); a NaN anywhere in a window gives NaN (V::nanmax).
#pragma once
#include <algorithm>
#include <cstdint>
#include <limits>

#include "ops_cpu.h"
#include "pycnn/parallel.h"
#include "simd.h"

namespace pycnn {

// Output columns [lo, hi) whose windows lie inside the input's columns (no clipping, all S taps):
// there OB outputs at a time are computed with independent accumulators (one output at a time
// was a chain of R*S dependent adds or maxima, latency-bound: 3x3 average pooling at 35x35 ran at
// a third of the load rate).
inline void interior_columns(const PoolParams& p, int64_t& lo, int64_t& hi) {
  lo = std::min(p.Wo, (p.pad_l + p.stride_w - 1) / p.stride_w);
  const int64_t last = p.W - p.S + p.pad_l;  // the largest ow * stride_w with the window inside
  hi = last < 0 ? lo : std::max(lo, std::min(p.Wo, last / p.stride_w + 1));
}

// The planes * Ho (channel block, output row) items, each thread taking a contiguous share (as
// OpenMP's static schedule) in the order the conv before the pool split its output between the
// threads, so that each reads the lines its own core wrote: on maps of kRowsMinH rows and more
// (direct_oc's bands of rows) image, output row, channel block; on smaller ones, which
// direct_oc splits by output channels at batch 1 (one band), image, channel block, output row.
// With channel blocks outer on large maps, each thread read half its input from the other core's
// cache (SqueezeNet's first max pool: 94 us in the network, 40 alone). The item is stepped, not
// divided out per item (a division per item cost the 14x14 pools 2-6%: docs/performance.md,
// Pooling).
struct BlockedRows {
  static constexpr int64_t kRowsMinH = 28;
  int64_t per, Ho, it, end, plane0, oh, cb;  // per: channel blocks per image
  bool rows_outer;
  BlockedRows(const PoolParams& p, int64_t rows)
      : per(p.images > 0 && p.planes % p.images == 0 ? p.planes / p.images : p.planes),
        Ho(p.Ho),
        rows_outer(p.H >= kRowsMinH) {
    split_range(rows, omp_get_num_threads(), omp_get_thread_num(), it, end);
    const int64_t n = it / (Ho * per), r = it % (Ho * per);
    plane0 = n * per;
    oh = rows_outer ? r / per : r % Ho;
    cb = rows_outer ? r % per : r / Ho;
  }
  // The next item's (plane, output row), false past the share.
  bool next(int64_t& plane, int64_t& row) {
    if (it >= end) return false;
    plane = plane0 + cb;
    row = oh;
    ++it;
    int64_t& inner = rows_outer ? cb : oh;
    int64_t& outer = rows_outer ? oh : cb;
    if (++inner == (rows_outer ? per : Ho)) {
      inner = 0;
      if (++outer == (rows_outer ? Ho : per)) {
        outer = 0;
        plane0 += per;
      }
    }
    return true;
  }
};

// Sums (Max: maxima) over window rows [h0, h1) and all S columns of OB consecutive outputs from
// ow, whose windows lie inside the input's columns; acc[o] starts at init.
template <class V, int OB, bool Max>
inline void pool_block(const PoolParams& p, const float* xb, int64_t h0, int64_t h1, int64_t ow,
                       typename V::reg (&acc)[OB][16 / V::W]) {
  constexpr int W = V::W, NV = 16 / W;
  const float* base = xb + (ow * p.stride_w - p.pad_l) * 16;
  for (int64_t ih = h0; ih < h1; ++ih) {
    const float* xr = base + ih * p.W * 16;
    for (int64_t t = 0; t < p.S; ++t)
#pragma GCC unroll 8
      for (int o = 0; o < OB; ++o)
#pragma GCC unroll 4
        for (int v = 0; v < NV; ++v) {
          const typename V::reg a = V::loadu(xr + (o * p.stride_w + t) * 16 + v * W);
          acc[o][v] = Max ? V::nanmax(acc[o][v], a) : V::add(acc[o][v], a);
        }
  }
}

template <class V>
void max_pool2d_blocked16_impl(const PoolParams& p, const float* x, float* y) {
  constexpr int W = V::W, NV = 16 / W;
  // Input columns per pass of the separable path: their maxima over the window's rows wait in
  // a 4 KiB stack buffer (windows wider than that take the direct path).
  static constexpr int64_t kCols = 64;   // static: GCC 12 fails on a captured constexpr array bound
  const int64_t rows = p.planes * p.Ho;  // p.planes: N * C / 16 channel blocks
  // Work as in pool2d.inl, ~16 threads_for units per input float: counting window taps per
  // output instead kept GoogLeNet's stage pools (480 channels, 28x28 -> 14x14) on one thread,
  // 2x onnxruntime's time.
  const int nt = threads_for(double(p.planes) * 16 * p.H * p.W * 16, rows);
  // Outputs per pass (their windows' columns fit kCols) on the separable path, taken at stride 1
  // only, where each column maximum serves S outputs; at stride 2 the direct path is faster.
  const int64_t ochunk = p.stride_w == 1 && p.S <= kCols ? kCols - p.S + 1 : 0;
  constexpr int OB = 8 / NV;  // outputs at a time inside the columns: 8 accumulators
  int64_t in_lo, in_hi;
  interior_columns(p, in_lo, in_hi);
  parallel_run(nt, [&] {
    BlockedRows order(p, rows);
    for (int64_t b, oh; order.next(b, oh);) {
      const int64_t h0 = std::max<int64_t>(0, oh * p.stride_h - p.pad_t),
                    h1 = std::min(p.H, oh * p.stride_h - p.pad_t + p.R);
      const float* xb = x + b * p.H * p.W * 16;
      float* yr = y + (b * p.Ho + oh) * p.Wo * 16;
      if (ochunk == 0) {  // direct: each output the max over its window's lines
        auto one = [&](int64_t ow) {
          const int64_t w0 = std::max<int64_t>(0, ow * p.stride_w - p.pad_l),
                        w1 = std::min(p.W, ow * p.stride_w - p.pad_l + p.S);
          typename V::reg m[NV];
          for (int v = 0; v < NV; ++v) m[v] = V::set1(-std::numeric_limits<float>::infinity());
          for (int64_t ih = h0; ih < h1; ++ih)
            for (int64_t iw = w0; iw < w1; ++iw)
              for (int v = 0; v < NV; ++v) m[v] = V::nanmax(m[v], V::loadu(xb + (ih * p.W + iw) * 16 + v * W));
          for (int v = 0; v < NV; ++v) V::storeu(yr + ow * 16 + v * W, m[v]);
        };
        int64_t ow = 0;
        for (; ow < in_lo; ++ow) one(ow);
        for (; ow + OB <= in_hi; ow += OB) {
          typename V::reg m[OB][NV];
          for (int o = 0; o < OB; ++o)
            for (int v = 0; v < NV; ++v) m[o][v] = V::set1(-std::numeric_limits<float>::infinity());
          pool_block<V, OB, true>(p, xb, h0, h1, ow, m);
          for (int o = 0; o < OB; ++o)
            for (int v = 0; v < NV; ++v) V::storeu(yr + (ow + o) * 16 + v * W, m[o][v]);
        }
        for (; ow < p.Wo; ++ow) one(ow);
        continue;
      }
      // Separable: the maxima over the window's rows of each input column (rows outer, columns
      // inner: independent chains), then over each window's columns (taps outer).
      alignas(64) float cm[kCols * 16];
      for (int64_t o0 = 0; o0 < p.Wo; o0 += ochunk) {
        const int64_t o1 = std::min(p.Wo, o0 + ochunk);
        const int64_t lo = std::max<int64_t>(0, o0 * p.stride_w - p.pad_l);
        const int64_t hi = std::min(p.W, (o1 - 1) * p.stride_w - p.pad_l + p.S);
        for (int64_t iw = lo; iw < hi; ++iw)
          for (int v = 0; v < NV; ++v)
            V::storeu(cm + (iw - lo) * 16 + v * W, V::loadu(xb + (h0 * p.W + iw) * 16 + v * W));
        for (int64_t ih = h0 + 1; ih < h1; ++ih)
          for (int64_t iw = lo; iw < hi; ++iw)
            for (int v = 0; v < NV; ++v) {
              float* c = cm + (iw - lo) * 16 + v * W;
              V::storeu(c, V::nanmax(V::loadu(c), V::loadu(xb + (ih * p.W + iw) * 16 + v * W)));
            }
        for (int64_t t = 0; t < p.S; ++t)
          for (int64_t ow = o0; ow < o1; ++ow) {
            const int64_t iw = ow * p.stride_w - p.pad_l + t;
            if (iw < 0 || iw >= p.W) continue;
            const int64_t w0 = std::max<int64_t>(0, ow * p.stride_w - p.pad_l);  // the window's first column
            for (int v = 0; v < NV; ++v) {
              const typename V::reg c = V::loadu(cm + (iw - lo) * 16 + v * W);
              float* o = yr + ow * 16 + v * W;
              V::storeu(o, iw == w0 ? c : V::nanmax(V::loadu(o), c));
            }
          }
      }
    }
  });
}

// Average pooling on channel-blocked tensors: each output the sum over its window's lines inside
// the input, divided as pool2d.inl's NCHW kernel does (count_include_pad: the window clipped to
// the padded bounds, PyTorch's rule; else the input pixels it covers; never by zero). Threads
// split (channel block, output row) pairs as the max pool's (BlockedRows).
template <class V>
void avg_pool2d_blocked16_impl(const PoolParams& p, const float* x, float* y, bool count_include_pad) {
  constexpr int W = V::W, NV = 16 / W;
  const int64_t rows = p.planes * p.Ho;
  const int nt = threads_for(double(p.planes) * 16 * p.H * p.W * 16, rows);
  constexpr int OB = 8 / NV;  // outputs at a time inside the columns: 8 accumulators
  int64_t in_lo, in_hi;
  interior_columns(p, in_lo, in_hi);
  parallel_run(nt, [&] {
    BlockedRows order(p, rows);
    for (int64_t b, oh; order.next(b, oh);) {
      const PoolSpan r = pool_span(oh, p.stride_h, p.pad_t, p.R, p.H, count_include_pad);
      const float* xb = x + b * p.H * p.W * 16;
      float* yr = y + (b * p.Ho + oh) * p.Wo * 16;
      auto one = [&](int64_t ow) {
        const PoolSpan c = pool_span(ow, p.stride_w, p.pad_l, p.S, p.W, count_include_pad);
        const typename V::reg inv = V::set1(1.0f / (float)(r.count * c.count));
        typename V::reg s[NV];
        for (int v = 0; v < NV; ++v) s[v] = V::zero();
        for (int64_t ih = r.begin; ih < r.end; ++ih)
          for (int64_t iw = c.begin; iw < c.end; ++iw)
            for (int v = 0; v < NV; ++v) s[v] = V::add(s[v], V::loadu(xb + (ih * p.W + iw) * 16 + v * W));
        for (int v = 0; v < NV; ++v) V::storeu(yr + ow * 16 + v * W, V::mul(s[v], inv));
      };
      int64_t ow = 0;
      for (; ow < in_lo; ++ow) one(ow);
      for (; ow + OB <= in_hi; ow += OB) {
        // every window here covers S columns of the input: the divisor is the first one's
        const PoolSpan c = pool_span(ow, p.stride_w, p.pad_l, p.S, p.W, count_include_pad);
        const typename V::reg inv = V::set1(1.0f / (float)(r.count * c.count));
        typename V::reg s[OB][NV];
        for (int o = 0; o < OB; ++o)
          for (int v = 0; v < NV; ++v) s[o][v] = V::zero();
        pool_block<V, OB, false>(p, xb, r.begin, r.end, ow, s);
        for (int o = 0; o < OB; ++o)
          for (int v = 0; v < NV; ++v) V::storeu(yr + (ow + o) * 16 + v * W, V::mul(s[o][v], inv));
      }
      for (; ow < p.Wo; ++ow) one(ow);
    }
  });
}

#define PYCNN_POOL_BLOCKED_ISA(isa)                                                           \
  void max_pool2d_blocked16__##isa(const PoolParams& p, const float* x, float* y) {           \
    max_pool2d_blocked16_impl<simd::isa>(p, x, y);                                            \
  }                                                                                           \
  void avg_pool2d_blocked16__##isa(const PoolParams& p, const float* x, float* y, bool cip) { \
    avg_pool2d_blocked16_impl<simd::isa>(p, x, y, cip);                                       \
  }

}  // namespace pycnn
