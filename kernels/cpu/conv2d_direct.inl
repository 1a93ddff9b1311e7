// Direct convolution, written once over a SIMD type V and instantiated per ISA by
// conv2d_direct__<isa>.cpp.
//
// Layouts. x (N, C, H, W), y (N, K, Ho, Wo). For one image and group the input is first copied
// into a zero-padded, stride-phase-split buffer xb[c][ih][phase][wq] holding padded column
// wq*sw + phase: then the input column of output column ow under tap s is
// xb[c][ih][(s*dw) % sw][ow + (s*dw) / sw], so every tap is a contiguous vector load whatever the
// stride and dilation, and padding costs no branches. The weights are reordered to
// wb[kblock][c][r][s][KB] so one tap's KB weights are adjacent.
//
// Register blocking: KB output channels x NV vectors of output columns of one output row
// (KB*NV accumulators); per tap NV input vectors are loaded and reused KB times.
#pragma once
#include <algorithm>
#include <cstring>
#include <vector>

#include "conv2d.h"
#include "eltwise_unary.inl"
#include "pycnn/buffer.h"
#include "pycnn/parallel.h"
#include "simd.h"

namespace pycnn {

template <class V, int KB, int NV>
struct DirectConv {
  static constexpr int W = V::W;
  static constexpr int TW = NV * W;  // output columns per tile

  const ConvParams& p;
  int64_t Hp, Wq, Wo_tiles, kblocks;
  std::vector<int64_t> soff;  // per tap s: offset of its first input column in a padded row

  explicit DirectConv(const ConvParams& p_) : p(p_) {
    Wo_tiles = (p.Wo + TW - 1) / TW;
    Hp = (p.Ho - 1) * p.stride_h + (p.R - 1) * p.dil_h + 1;
    Wq = Wo_tiles * TW + ((p.S - 1) * p.dil_w) / p.stride_w + 1;
    kblocks = (p.Kg() + KB - 1) / KB;
    soff.resize((size_t)p.S);
    for (int64_t s = 0; s < p.S; ++s) {
      const int64_t t = s * p.dil_w;
      soff[(size_t)s] = (t % p.stride_w) * Wq + t / p.stride_w;
    }
  }
  int64_t xb_size() const { return p.Cg() * Hp * p.stride_w * Wq; }

  // wb[g][kblock][c][r][s][KB], zero for channels past Kg.
  void reorder_weights(const float* w, float* wb) const {
    const int64_t Cg = p.Cg(), Kg = p.Kg(), RS = p.R * p.S;
    for (int64_t g = 0; g < p.groups; ++g)
      for (int64_t kb = 0; kb < kblocks; ++kb)
        for (int64_t c = 0; c < Cg; ++c)
          for (int64_t rs = 0; rs < RS; ++rs)
            for (int i = 0; i < KB; ++i) {
              const int64_t k = kb * KB + i;
              wb[((((g * kblocks + kb) * Cg + c) * RS + rs) * KB) + i] =
                  k < Kg ? w[((g * Kg + k) * Cg + c) * RS + rs] : 0.0f;
            }
  }

  // Fill xb for channels [c0, c1) of one image's group (x points at its first channel).
  void pad_input(const float* x, float* xb, int64_t c0, int64_t c1) const {
    const int64_t sw = p.stride_w;
    for (int64_t c = c0; c < c1; ++c)
      for (int64_t ihp = 0; ihp < Hp; ++ihp) {
        const int64_t ih = ihp - p.pad_t;
        float* row = xb + (c * Hp + ihp) * sw * Wq;
        if (ih < 0 || ih >= p.H) {
          std::fill(row, row + sw * Wq, 0.0f);
          continue;
        }
        const float* xr = x + (c * p.H + ih) * p.W;
        for (int64_t ph = 0; ph < sw; ++ph) {
          float* o = row + ph * Wq;
          for (int64_t wq = 0; wq < Wq; ++wq) {
            const int64_t iw = wq * sw + ph - p.pad_l;
            o[wq] = (iw >= 0 && iw < p.W) ? xr[iw] : 0.0f;
          }
        }
      }
  }

  // One tile: output channels [kb*KB, +KB) of group g, row oh, columns [ow0, ow0 + TW).
  void tile(const float* xb, const float* wb, const float* bias, float* y, int64_t g, int64_t kb, int64_t oh,
            int64_t ow0, Activation act, const float* res) const {
    const int64_t Cg = p.Cg(), Kg = p.Kg(), RS = p.R * p.S, sw = p.stride_w;
    const int64_t HoWo = p.Ho * p.Wo;
    typename V::reg acc[KB][NV];
    for (int i = 0; i < KB; ++i)
      for (int v = 0; v < NV; ++v) acc[i][v] = V::zero();
    const float* wk = wb + (g * kblocks + kb) * Cg * RS * KB;
    for (int64_t c = 0; c < Cg; ++c) {
      for (int64_t r = 0; r < p.R; ++r) {
        const float* xrow = xb + (c * Hp + oh * p.stride_h + r * p.dil_h) * sw * Wq;
        const float* wr = wk + (c * RS + r * p.S) * KB;
        for (int64_t s = 0; s < p.S; ++s) {
          const float* xs = xrow + soff[(size_t)s] + ow0;
          typename V::reg xv[NV];
          for (int v = 0; v < NV; ++v) xv[v] = V::loadu(xs + v * W);
          const float* ws = wr + s * KB;
          for (int i = 0; i < KB; ++i) {
            const typename V::reg wv = V::set1(ws[i]);
            for (int v = 0; v < NV; ++v) acc[i][v] = V::fmadd(wv, xv[v], acc[i][v]);
          }
        }
      }
    }
    const int64_t kmax = std::min<int64_t>(KB, Kg - kb * KB);
    const bool clamp = act.active();
    const typename V::reg lo = V::set1(act.lo), hi = V::set1(act.hi);
    for (int i = 0; i < kmax; ++i) {
      const int64_t k = g * Kg + kb * KB + i;
      float* yr = y + k * HoWo + oh * p.Wo;
      const typename V::reg bv = V::set1(bias ? bias[k] : 0.0f);
      for (int v = 0; v < NV; ++v) {
        const int64_t ow = ow0 + v * W;
        if (ow >= p.Wo) break;
        typename V::reg r = V::add(acc[i][v], bv);
        const int64_t n = std::min<int64_t>(W, p.Wo - ow);
        if (res) {  // res: the residual at y's offset
          const float* rr = res + (yr - y) + ow;
          r = V::add(r, n == W ? V::loadu(rr) : V::loadu_n(rr, (int)n));
        }
        if (clamp) r = V::clamp(r, lo, hi);  // NaN stays NaN
        if (act.fn >= 0) r = unary_detail::post_reg<V>(act, r);
        if (n == W)
          V::storeu(yr + ow, r);
        else
          V::storeu_n(yr + ow, r, (int)n);
      }
    }
  }

  int64_t wb_size() const { return p.groups * kblocks * p.Cg() * p.R * p.S * KB; }

  // wb: weights already reordered by reorder_weights (once, when the layer is prepared).
  void run(const float* x, const float* wbp, const float* bias, float* y, Activation act, const float* res) const {
    const int64_t Cg = p.Cg(), Kg = p.Kg();
    const int64_t images = p.N * p.groups;
    const int64_t tiles = kblocks * p.Ho * Wo_tiles;
    const int nt = threads_for(p.flops(), images * tiles);
    auto do_tiles = [&](const float* xb, int64_t n, int64_t g, int64_t t0, int64_t t1) {
      for (int64_t t = t0; t < t1; ++t) {
        const int64_t kb = t / (p.Ho * Wo_tiles), rem = t % (p.Ho * Wo_tiles);
        const int64_t off = n * p.K * p.Ho * p.Wo;
        tile(xb, wbp, bias, y + off, g, kb, rem / Wo_tiles, (rem % Wo_tiles) * TW, act, res ? res + off : nullptr);
      }
    };
    if (images >= 2 * nt) {
      // Many images (batch or groups): each thread owns whole (image, group) pairs.
      check_workspace((size_t)xb_size());
      ParallelFailure failure;
      parallel_run(nt, [&] {
        float* xb = workspace_nothrow(kSlotConvIn, (size_t)xb_size());
        if (!xb) failure.set();
#pragma omp for schedule(dynamic, 1)
        for (int64_t ig = 0; ig < images; ++ig) {
          if (!xb) continue;
          const int64_t n = ig / p.groups, g = ig % p.groups;
          pad_input(x + (n * p.C + g * Cg) * p.H * p.W, xb, 0, Cg);
          do_tiles(xb, n, g, 0, tiles);
        }
      });
      failure.rethrow();
    } else {
      // Few images: share one padded buffer, split channels then tiles across threads.
      float* xb = workspace(kSlotConvIn, (size_t)xb_size());
      for (int64_t ig = 0; ig < images; ++ig) {
        const int64_t n = ig / p.groups, g = ig % p.groups;
        const float* xg = x + (n * p.C + g * Cg) * p.H * p.W;
        parallel_run(nt, [&] {
          int64_t c0, c1;
          split_range(Cg, omp_get_num_threads(), omp_get_thread_num(), c0, c1);
          pad_input(xg, xb, c0, c1);
#pragma omp barrier
#pragma omp for schedule(dynamic, 4)
          for (int64_t t = 0; t < tiles; ++t) do_tiles(xb, n, g, t, t + 1);
        });
      }
    }
    (void)Kg;
  }
};

// Entry points of one ISA build (KB output channels x NV vectors), instantiated by
// conv2d_direct__<isa>.cpp.
#define PYCNN_DIRECT_ISA(isa, KB, NV)                                                                          \
  void conv2d_direct_prepare__##isa(const ConvParams& p, const float* w, AlignedBuffer<float>& wb) {           \
    DirectConv<simd::isa, KB, NV> conv(p);                                                                     \
    wb.resize((size_t)conv.wb_size());                                                                         \
    conv.reorder_weights(w, wb.data());                                                                        \
  }                                                                                                            \
  void conv2d_direct__##isa(const ConvParams& p, const float* x, const float* wb, const float* bias, float* y, \
                            Activation act, const float* res) {                                                \
    DirectConv<simd::isa, KB, NV>(p).run(x, wb, bias, y, act, res);                                            \
  }

}  // namespace pycnn
