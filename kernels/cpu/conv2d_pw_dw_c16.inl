// A 1x1 convolution and the depthwise convolution reading its output, fused, on channel-blocked
// tensors (NCHW16c): the expand -> depthwise pair of MobileNet V2/V3, EfficientNet and MNASNet.
// Written once over a SIMD type V and compiled per ISA (conv2d_pw_dw_c16__<isa>.cpp).
//
// Why: run one after the other, the expansion (6x the block's width, 38 MB at 112x112 x 96 at
// batch 8) is written to memory by the 1x1 and read back by the depthwise conv. Here it never
// exists whole: per (image, 16-channel block of the expansion) the 1x1's output rows are made one
// at a time, each once, into a ring of the depthwise's R input rows (in L1/L2), and each output
// row of the depthwise is computed from the ring as soon as its rows are in.
//
// x (N, C/16, H, W, 16) -> y (N, K/16, Ho, Wo, 16), K the expansion. wpw (K/16, C, 16): the 16
// weights of output block kb for input channel c; wdw as depthwise_c16's (K/16, R*S, 16).
// The ring holds 2R rows, each row written at slot (h + pad_t) % R and R slots later, so that the
// R rows of any output row's window are consecutive (depthwise_c16's row kernels read a band
// buffer of consecutive rows). Dilation 1.
#pragma once
#include "conv2d_depthwise_c16.inl"

namespace pycnn {

template <class V>
struct PwDwC16 {
  using reg = typename V::reg;
  static constexpr int W = V::W, KV = 16 / W;
  // The 1x1's register block: T pixels x G output blocks of 16 channels (T * G * KV accumulators,
  // G * KV weights and one broadcast input live): AVX-512 6 x 4 (24 + 4 + 1 of 32 zmm), AVX2 4 x 1
  // (8 + 2 + 1 of 16 ymm), SSE 2 x 1.
  static constexpr int T = KV == 1 ? 6 : (KV == 2 ? 4 : 2);
  static constexpr int G = KV == 1 ? 4 : 1;

  const ConvParams& q;  // the depthwise conv: C = K = the expansion; H, W = x's
  int64_t Cin, Cb_in, Kb;
  DepthwiseC16<V> dw;  // its row kernels and padded width Wp

  PwDwC16(const ConvParams& dwp, int64_t cin)
      : q(dwp), Cin(cin), Cb_in(cin / 16), Kb(dwp.C / 16), dw(dwp, kDirectOcXBlocked | kDirectOcYBlocked) {}

  // NT pixels (xr: the first one's channel block 0) of NG output blocks: out[g][t * 16 + c], the
  // blocks' rows RS floats apart; wk: block 0's (Cin, 16) weights, blocks Cin * 16 apart.
  template <int NT, int NG>
  void pixels(const float* xr, const float* wk, const reg* b, float* out, int64_t RS) const {
    reg acc[NT][NG * KV];
    for (int t = 0; t < NT; ++t)
      for (int u = 0; u < NG * KV; ++u) acc[t][u] = b[u];
    for (int64_t c = 0; c < Cin; ++c) {
      const float* xc = xr + (c / 16) * q.H * q.W * 16 + c % 16;  // channel c of the first pixel
      reg wv[NG * KV];
      for (int g = 0; g < NG; ++g)
        for (int v = 0; v < KV; ++v) wv[g * KV + v] = V::loadu(wk + (g * Cin + c) * 16 + v * W);
      for (int t = 0; t < NT; ++t) {
        const reg xv = V::set1(xc[t * 16]);
        for (int u = 0; u < NG * KV; ++u) acc[t][u] = V::fmadd(wv[u], xv, acc[t][u]);
      }
    }
    for (int g = 0; g < NG; ++g)
      for (int t = 0; t < NT; ++t)
        for (int v = 0; v < KV; ++v) V::storeu(out + g * RS + t * 16 + v * W, acc[t][g * KV + v]);
  }

  template <int NT, int NG>
  void tail(int rem, const float* xr, const float* wk, const reg* b, float* out, int64_t RS) const {
    if constexpr (NT >= 1) {
      if (rem != NT) return tail<NT - 1, NG>(rem, xr, wk, b, out, RS);
      pixels<NT, NG>(xr, wk, b, out, RS);
    }
  }

  // The 1x1's output row h of image n for NG blocks (weights wk, bias b) into ring rows d[g] =
  // d + g * RS: Wp padded pixels, the columns outside the input zero, the clamp and function applied.
  template <int NG>
  void expand_row(const float* x, int64_t n, int64_t h, const float* wk, const reg* b, Activation act, float* d,
                  int64_t RS) const {
    const int64_t Wp = dw.Wp, j0 = std::min<int64_t>(Wp, q.pad_l), j1 = std::min<int64_t>(Wp, q.pad_l + q.W);
    if (h < 0 || h >= q.H || j1 <= j0) {
      for (int g = 0; g < NG; ++g) std::memset(d + g * RS, 0, sizeof(float) * 16 * (size_t)Wp);
      return;
    }
    for (int g = 0; g < NG; ++g) {
      std::memset(d + g * RS, 0, sizeof(float) * 16 * (size_t)j0);
      std::memset(d + g * RS + j1 * 16, 0, sizeof(float) * 16 * (size_t)(Wp - j1));
    }
    const float* xr = x + (n * Cb_in * q.H + h) * q.W * 16;  // pixel 0 of row h, channel block 0
    const int64_t cols = j1 - j0, w0 = j0 - q.pad_l;         // input columns w0 .. w0 + cols
    int64_t j = 0;
    for (; j + T <= cols; j += T) pixels<T, NG>(xr + (w0 + j) * 16, wk, b, d + (j0 + j) * 16, RS);
    if (j < cols) tail<T - 1, NG>((int)(cols - j), xr + (w0 + j) * 16, wk, b, d + (j0 + j) * 16, RS);
    for (int g = 0; g < NG; ++g) DepthwiseC16<V>::finish(act, d + g * RS + j0 * 16, cols * 16);
  }

  // Image n, output blocks kb0 .. kb0 + NG: every output row, each input row made once.
  template <int kR, int kS, int NG>
  void item(const float* x, int64_t n, int64_t kb0, const float* wpw, const float* bpw, Activation apw,
            const float* wdw, const float* bdw, Activation adw, float* y, float* ring) const {
    const int64_t R = q.R, Wp = dw.Wp, RS = 2 * R * Wp * 16;  // one block's ring: 2R rows
    alignas(64) float zero[16] = {};
    reg b1[NG * KV], b2[NG][KV];
    for (int g = 0; g < NG; ++g)
      for (int v = 0; v < KV; ++v) {
        b1[g * KV + v] = V::loadu((bpw ? bpw + (kb0 + g) * 16 : zero) + v * W);
        b2[g][v] = V::loadu((bdw ? bdw + (kb0 + g) * 16 : zero) + v * W);
      }
    const float* wk1 = wpw + kb0 * Cin * 16;
    int64_t next = -q.pad_t;  // the next input row to make
    for (int64_t ho = 0; ho < q.Ho; ++ho) {
      const int64_t h0 = ho * q.stride_h - q.pad_t;
      for (; next < h0 + R; ++next) {
        float* d = ring + ((next + q.pad_t) % R) * Wp * 16;
        expand_row<NG>(x, n, next, wk1, b1, apw, d, RS);
        for (int g = 0; g < NG; ++g)  // the mirror slot R rows later
          std::memcpy(d + g * RS + R * Wp * 16, d + g * RS, sizeof(float) * 16 * (size_t)Wp);
      }
      for (int g = 0; g < NG; ++g) {
        const int64_t kb = kb0 + g;
        float* out = y + ((n * Kb + kb) * q.Ho + ho) * q.Wo * 16;
        dw.template row<kR, kS>(ring + g * RS, (h0 + q.pad_t) % R, wdw + kb * q.R * q.S * 16, b2[g], out);
        DepthwiseC16<V>::finish(adw, out, q.Wo * 16);  // adw: what the row's stores left
      }
    }
  }

  template <int kR, int kS, int NG>
  void item_n(int ng, const float* x, int64_t n, int64_t kb0, const float* wpw, const float* bpw, Activation apw,
              const float* wdw, const float* bdw, Activation adw, float* y, float* ring) const {
    if constexpr (NG >= 1) {
      if (ng != NG) return item_n<kR, kS, NG - 1>(ng, x, n, kb0, wpw, bpw, apw, wdw, bdw, adw, y, ring);
      item<kR, kS, NG>(x, n, kb0, wpw, bpw, apw, wdw, bdw, adw, y, ring);
    }
  }

  template <int kR, int kS>
  void run_taps(const float* x, const float* wpw, const float* bpw, Activation apw, const float* wdw, const float* bdw,
                Activation adw, float* y) const {
    const int64_t groups = (Kb + G - 1) / G, items = q.N * groups;
    const double work = 2.0 * double(q.N) * double(q.C) * double(q.H) * double(q.W) * double(Cin) +
                        3.0 * 2.0 * double(q.N) * double(q.C) * double(q.Ho * q.Wo) * double(q.R * q.S);
    parallel_run(threads_for(work, items), [&] {
      std::vector<float> ring((size_t)(G * 2 * q.R * dw.Wp * 16));
#pragma omp for schedule(dynamic, 1)
      for (int64_t it = 0; it < items; ++it) {
        const int64_t n = it / groups, kb0 = it % groups * G;
        const int ng = (int)std::min<int64_t>(G, Kb - kb0);
        item_n<kR, kS, G>(ng, x, n, kb0, wpw, bpw, apw, wdw, bdw, adw, y, ring.data());
      }
    });
  }

  void run(const float* x, const float* wpw, const float* bpw, Activation apw, const float* wdw, const float* bdw,
           Activation adw, float* y) {
    adw = dw.store_clamp(adw);  // the depthwise rows store their clamp (no residual here)
    if (q.R == 3 && q.S == 3) return run_taps<3, 3>(x, wpw, bpw, apw, wdw, bdw, adw, y);
    if (q.R == 5 && q.S == 5) return run_taps<5, 5>(x, wpw, bpw, apw, wdw, bdw, adw, y);
    if (q.R == 7 && q.S == 7) return run_taps<7, 7>(x, wpw, bpw, apw, wdw, bdw, adw, y);
    run_taps<0, 0>(x, wpw, bpw, apw, wdw, bdw, adw, y);
  }
};

#define PYCNN_PW_DW_C16_ISA(isa)                                                                                       \
  void conv2d_pw_dw_c16__##isa(const ConvParams& dwp, int64_t cin, const float* x, const float* wpw, const float* bpw, \
                               Activation apw, const float* wdw, const float* bdw, Activation adw, float* y) {         \
    PwDwC16<simd::isa>(dwp, cin).run(x, wpw, bpw, apw, wdw, bdw, adw, y);                                              \
  }

}  // namespace pycnn
