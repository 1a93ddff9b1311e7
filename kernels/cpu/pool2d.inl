// max_pool2d and avg_pool2d on NCHW planes, written once over a SIMD type V and compiled per ISA
// (pool2d__<isa>.cpp).
//
// One output row at a time (threads split (plane, output row) pairs):
//  1. vertical pass: the window's input rows are reduced (NaN-propagating max, or sum) into a row
//     buffer that carries the horizontal padding (-inf for max, 0 for avg): rowp[pl + w];
//  2. for stride s > 2 the row is split into s phases with vector gathers, so that window column
//     j of W consecutive outputs is one contiguous vector: phase[j % s][ow + j / s] (stride 2
//     reads the even lanes of two vectors per window column; windows up to 3 wide with column
//     stride 2 take row_s2 instead, all in registers);
//  3. horizontal pass: max (or sum / divisor) over the S window columns, W outputs at a time.
// Max pooling never selects padding; a NaN anywhere in a window gives NaN (PyTorch's semantics).
#pragma once
#include <algorithm>
#include <limits>
#include <vector>

#include "ops_cpu.h"
#include "pycnn/buffer.h"
#include "pycnn/parallel.h"
#include "simd.h"

namespace pycnn {

template <class V>
struct Pool2d {
  static constexpr int W = V::W;
  const PoolParams& p;
  bool is_max, count_include_pad;
  int64_t Wp, Lq;  // padded row length; phase length

  Pool2d(const PoolParams& p_, bool is_max_, bool cip) : p(p_), is_max(is_max_), count_include_pad(cip) {
    Lq = (p.Wo + W - 1) / W * W + (p.S - 1) / p.stride_w + 1;
    Wp = std::max<int64_t>(Lq * p.stride_w, p.pad_l + p.W);
  }

  // Input rows [hs, he) of output row oh's window, and (for the average) the number of window
  // rows its divisor counts: with count_include_pad the padding rows up to H + pad_t, as PyTorch.
  float window_rows(int64_t oh, int64_t& hs, int64_t& he) const {
    const PoolSpan r = pool_span(oh, p.stride_h, p.pad_t, p.R, p.H, count_include_pad);
    hs = r.begin;
    he = r.end;
    return is_max ? 1.0f : (float)r.count;
  }

  // Outputs yo[0, min(W, left)) from the window reduction acc: the average divides by the window's
  // rows (rc) times its columns (cc[0..W)).
  void store_out(typename V::reg acc, typename V::reg rc, const float* cc, float* yo, int64_t left) const {
    if (!is_max) acc = V::div(acc, V::mul(rc, V::loadu(cc)));
    if (left >= W)
      V::storeu(yo, acc);
    else
      V::storeu_n(yo, acc, (int)left);
  }

  void row(const float* xp, float* yr, int64_t oh, float* rowp, float* phases, const float* colcount) const {
    const float fill = is_max ? -std::numeric_limits<float>::infinity() : 0.0f;
    int64_t hs, he;
    const float rowcount = window_rows(oh, hs, he);
    std::fill(rowp, rowp + Wp, fill);
    float* r = rowp + p.pad_l;
    if (he > hs) {
      copy_floats<V>(r, xp + hs * p.W, p.W);
      for (int64_t ih = hs + 1; ih < he; ++ih) {
        const float* xr = xp + ih * p.W;
        int64_t w = 0;
        for (; w + W <= p.W; w += W)
          V::storeu(r + w,
                    is_max ? V::nanmax(V::loadu(r + w), V::loadu(xr + w)) : V::add(V::loadu(r + w), V::loadu(xr + w)));
        if (w < p.W) {
          const int n = (int)(p.W - w);
          const auto a = V::loadu_n(r + w, n), b = V::loadu_n(xr + w, n);
          V::storeu_n(r + w, is_max ? V::nanmax(a, b) : V::add(a, b), n);
        }
      }
    }
    // Phases: phase j holds rowp[q * s + j]; stride 1 reads rowp directly; stride 2 picks the
    // even lanes of two vectors per window column (even2), no phases.
    const float* ph = rowp;
    const int64_t s = p.stride_w;
    const typename V::reg rc = V::set1(rowcount);
    if (s == 2) {
      for (int64_t ow = 0; ow < p.Wo; ow += W) {
        const float* src = rowp + 2 * ow;  // rowp holds >= 2 * ceil(Wo / W) * W + S floats
        typename V::reg acc = V::even2(src);
        for (int64_t j = 1; j < p.S; ++j)
          acc = is_max ? V::nanmax(acc, V::even2(src + j)) : V::add(acc, V::even2(src + j));
        store_out(acc, rc, colcount + ow, yr + ow, p.Wo - ow);
      }
      return;
    }
    if (s > 1) {
      for (int64_t j = 0; j < s; ++j) gather_floats<V>(phases + j * Lq, rowp + j, s, Lq);
      ph = phases;
    }
    for (int64_t ow = 0; ow < p.Wo; ow += W) {
      typename V::reg acc = V::loadu(ph + ow);  // column 0 of the window
      for (int64_t j = 1; j < p.S; ++j) {
        const float* src = s > 1 ? ph + (j % s) * Lq + ow + j / s : ph + ow + j;
        acc = is_max ? V::nanmax(acc, V::loadu(src)) : V::add(acc, V::loadu(src));
      }
      store_out(acc, rc, colcount + ow, yr + ow, p.Wo - ow);
    }
  }

  // Narrow maps with stride 1 (GoogLeNet's 3x3/1 branch pools on 28, 14 and 7 wide maps), one
  // plane at a time, separably: every input row is reduced over the S window columns once into
  // hb[ih][ow] (masked loads straight from x; padding lanes = fill and never read), then each
  // output row reduces its R rows of hb. The row path's fixed cost per output row (fill, copy,
  // three passes) was ~110 cycles for a 7-wide row.
  void plane_direct(const float* xp, float* yp, float* hb, int64_t ldh, const float* colcount) const {
    const float fill = is_max ? -std::numeric_limits<float>::infinity() : 0.0f;
    const int64_t H = p.H, Win = p.W, S = p.S, pad_l = p.pad_l, Wo = p.Wo;
    const bool mx = is_max;
    // Window column j outside, rows inside: lane masks depend on (ow, j) only.
    for (int64_t ow = 0; ow < Wo; ow += W)
      for (int64_t j = 0; j < S; ++j) {
        const int64_t col0 = ow + j - pad_l;  // input column of lane 0
        const int lo = (int)std::max<int64_t>(0, -col0);
        const int hi = (int)std::min<int64_t>(W, Win - col0);
        if (hi <= lo) {
          if (j == 0)
            for (int64_t ih = 0; ih < H; ++ih) V::storeu(hb + ih * ldh + ow, V::set1(fill));
          continue;
        }
        const float* xc = xp + col0;
        float* h = hb + ow;
        for (int64_t ih = 0; ih < H; ++ih, xc += Win, h += ldh) {
          const typename V::reg v = V::loadu_range(xc, lo, hi, fill);
          V::storeu(h, j == 0 ? v : mx ? V::nanmax(V::loadu(h), v) : V::add(V::loadu(h), v));
        }
      }
    for (int64_t oh = 0; oh < p.Ho; ++oh) {
      int64_t hs, he;
      const typename V::reg rc = V::set1(window_rows(oh, hs, he));
      float* yr = yp + oh * p.Wo;
      for (int64_t ow = 0; ow < p.Wo; ow += W) {
        typename V::reg acc = V::set1(fill);
        for (int64_t ih = hs; ih < he; ++ih) {
          const typename V::reg v = V::loadu(hb + ih * ldh + ow);
          acc = is_max ? V::nanmax(acc, v) : V::add(acc, v);
        }
        store_out(acc, rc, colcount + ow, yr + ow, p.Wo - ow);
      }
    }
  }

  // Column stride 2 and windows at most 3 wide (every 3x3/2 and 2x2/2 pool of the zoo): output
  // rows [oh0, oh1) of one plane (xp, yp) straight from x, all in registers. Per W outputs the
  // window rows of input columns [c0, c0 + 2W] are reduced into a (c0..), b (c0 + W..) and c
  // (lane 0: column c0 + 2W); window column 0 is the even lanes of (a, b), column 1 the odd
  // lanes, column 2 the even lanes shifted down one with c's. Lanes outside the image are `fill`
  // and never read. Column blocks are the outer loop, so their lane ranges are worked out once
  // per plane. (The row path's fill, copy and three passes cost ~100 cycles per output row:
  // GoogLeNet's 3x3/2 pools took twice onnxruntime's time; R x S masked loads per output vector
  // lost on wide maps.)
  void rows_s2(const float* xp, float* yp, int64_t oh0, int64_t oh1, const float* colcount) const {
    const float fill = is_max ? -std::numeric_limits<float>::infinity() : 0.0f;
    const bool mx = is_max;
    const typename V::reg vfill = V::set1(fill);
    const int64_t Win = p.W, S = p.S;
    for (int64_t ow = 0; ow < p.Wo; ow += W) {
      const int64_t c0 = 2 * ow - p.pad_l;
      const bool inside = c0 >= 0 && c0 + 2 * W + (S == 3 ? 1 : 0) <= Win;
      const int loa = (int)std::clamp<int64_t>(-c0, 0, W), hia = (int)std::clamp<int64_t>(Win - c0, loa, W);
      const int lob = (int)std::clamp<int64_t>(-c0 - W, 0, W), hib = (int)std::clamp<int64_t>(Win - c0 - W, lob, W);
      const bool has_c = S == 3 && c0 + 2 * W >= 0 && c0 + 2 * W < Win;
      for (int64_t oh = oh0; oh < oh1; ++oh) {
        int64_t hs, he;
        const typename V::reg rc = V::set1(window_rows(oh, hs, he));
        typename V::reg a = vfill, b = vfill, c = vfill;
        for (int64_t ih = hs; ih < he; ++ih) {
          const float* r = xp + ih * Win + c0;
          typename V::reg va, vb;
          if (inside) {
            va = V::loadu(r);
            vb = V::loadu(r + W);
          } else {
            va = V::loadu_range(r, loa, hia, fill);
            vb = V::loadu_range(r + W, lob, hib, fill);
          }
          a = mx ? V::nanmax(a, va) : V::add(a, va);
          b = mx ? V::nanmax(b, vb) : V::add(b, vb);
          if (has_c) {
            const typename V::reg vc = V::set1(r[2 * W]);
            c = mx ? V::nanmax(c, vc) : V::add(c, vc);
          }
        }
        const typename V::reg even = V::even2_of(a, b);
        typename V::reg acc = even;
        if (S >= 2) acc = mx ? V::nanmax(acc, V::odd2_of(a, b)) : V::add(acc, V::odd2_of(a, b));
        if (S == 3)
          acc = mx ? V::nanmax(acc, V::template shift_in<1>(even, c)) : V::add(acc, V::template shift_in<1>(even, c));
        store_out(acc, rc, colcount + ow, yp + oh * p.Wo + ow, p.Wo - ow);
      }
    }
  }

  // rows_s2 over all (plane, output row) pairs: each thread takes a contiguous range of them,
  // plane by plane.
  void run_s2(const float* x, float* y, const float* colcount) const {
    const int64_t rows = p.planes * p.Ho;
    // ~1 ns per input element on one thread: GoogLeNet's 832@7 pools (41k elements) took 38 us
    // alone; threads_for counts ~1e6 of its units as worth a second thread (~3 us to start).
    const int nt = threads_for(double(p.planes) * p.H * p.W * 64, rows);
    parallel_run(nt, [&] {
      int64_t t0, t1;
      split_range(rows, omp_get_num_threads(), omp_get_thread_num(), t0, t1);
      for (int64_t t = t0; t < t1;) {
        const int64_t pl = t / p.Ho, oh0 = t % p.Ho, oh1 = std::min(p.Ho, oh0 + (t1 - t));
        rows_s2(x + pl * p.H * p.W, y + pl * p.Ho * p.Wo, oh0, oh1, colcount);
        t += oh1 - oh0;
      }
    });
  }

  void run(const float* x, float* y) const {
    // Window widths per output column for the average's divisor (count_include_pad counts the
    // left padding and the right padding up to W + pad_l, as PyTorch; never zero: guarded).
    std::vector<float> colcount((size_t)((p.Wo + W - 1) / W * W), 1.0f);
    if (!is_max)
      for (int64_t ow = 0; ow < p.Wo; ++ow)
        colcount[(size_t)ow] = (float)pool_span(ow, p.stride_w, p.pad_l, p.S, p.W, count_include_pad).count;
    const int64_t rows = p.planes * p.Ho;
    if (p.S <= 3 && p.stride_w == 2) {
      run_s2(x, y, colcount.data());
      return;
    }
    if (p.stride_w == 1 && p.Wo <= 4 * W) {
      const int64_t ldh = (p.Wo + W - 1) / W * W;
      const size_t hsize = (size_t)(p.H * ldh);
      check_workspace(hsize);
      const int nt1 = threads_for(double(p.planes) * p.H * p.W * 64, p.planes);  // as run_s2
      ParallelFailure failure;
      parallel_run(nt1, [&] {
        float* hb = workspace_nothrow(kSlotConvIn, hsize);
        if (!hb) failure.set();
#pragma omp for schedule(static)
        for (int64_t pl = 0; pl < p.planes; ++pl)
          if (hb) plane_direct(x + pl * p.H * p.W, y + pl * p.Ho * p.Wo, hb, ldh, colcount.data());
      });
      failure.rethrow();
      return;
    }
    // Cost per input element ~16 "flops" of the threads_for scale: a row's fill, gathers and
    // passes; with less, 13x13 maps ran on one thread at half the speed.
    const int nt = threads_for(double(p.planes) * p.H * p.W * 16, rows);
    // Row buffers: [rowp | phases] in the thread's workspace (no allocation can throw in the region).
    const size_t need = (size_t)(Wp + W + p.stride_w * Lq + W);
    check_workspace(need);
    ParallelFailure failure;
    parallel_run(nt, [&] {
      float* buf = workspace_nothrow(kSlotConvIn, need);
      if (!buf) failure.set();
#pragma omp for schedule(static)
      for (int64_t t = 0; t < rows; ++t) {
        if (!buf) continue;
        const int64_t pl = t / p.Ho, oh = t % p.Ho;
        row(x + pl * p.H * p.W, y + (pl * p.Ho + oh) * p.Wo, oh, buf, buf + Wp + W, colcount.data());
      }
    });
    failure.rethrow();
  }
};

#define PYCNN_POOL_ISA(isa)                                                                       \
  void max_pool2d__##isa(const PoolParams& p, const float* x, float* y) {                         \
    Pool2d<simd::isa>(p, true, false).run(x, y);                                                  \
  }                                                                                               \
  void avg_pool2d__##isa(const PoolParams& p, const float* x, float* y, bool count_include_pad) { \
    Pool2d<simd::isa>(p, false, count_include_pad).run(x, y);                                     \
  }

}  // namespace pycnn
