// Winograd F(2x2,3x3), F(4x4,3x3), F(6x6,3x3) for the generic build (see conv2d_winograd.inl).
#include "conv2d_winograd.inl"

namespace pycnn {

template <int m>
static void run_m(const ConvParams& p, const float* x, const WinogradWeights& w, const float* bias,
                  float* y, bool relu) {
  WinogradConv<simd::generic, m>(p).run(x, w, bias, y, relu);
}

void conv2d_winograd_generic(const ConvParams& p, const float* x, const WinogradWeights& w,
                           const float* bias, float* y, bool relu) {
  switch (w.m) {
    case 2: return run_m<2>(p, x, w, bias, y, relu);
    case 4: return run_m<4>(p, x, w, bias, y, relu);
    default: return run_m<6>(p, x, w, bias, y, relu);
  }
}

template <int m>
static void input_m(const ConvParams& p, const float* x, float* V) {
  WinogradConv<simd::generic, m> wc(p);
  const int64_t T = p.N * wc.TH * wc.TW;
  std::vector<float> ph((size_t)wc.scratch_size());
  for (int64_t c = 0; c < p.C; ++c)
    for (int64_t gr = 0; gr < p.N * wc.TH; ++gr) {
      const int64_t n = gr / wc.TH, th = gr % wc.TH;
      wc.input_row(x + (n * p.C + c) * p.H * p.W, th, V + c * T, p.C * T, gr * wc.TW, ph.data());
    }
}

template <int m>
static void output_m(const ConvParams& p, const float* M, float* y) {
  WinogradConv<simd::generic, m> wc(p);
  const int64_t T = p.N * wc.TH * wc.TW;
  for (int64_t k = 0; k < p.K; ++k)
    for (int64_t gr = 0; gr < p.N * wc.TH; ++gr) {
      const int64_t n = gr / wc.TH, th = gr % wc.TH;
      wc.output_row(M + k * T, p.K * T, gr * wc.TW, th, 0.0f, false, y + (n * p.K + k) * p.Ho * p.Wo);
    }
}

void winograd_input_generic(const ConvParams& p, int m, const float* x, float* V) {
  if (m == 2) return input_m<2>(p, x, V);
  if (m == 4) return input_m<4>(p, x, V);
  return input_m<6>(p, x, V);
}

void winograd_output_generic(const ConvParams& p, int m, const float* M, float* y) {
  if (m == 2) return output_m<2>(p, M, y);
  if (m == 4) return output_m<4>(p, M, y);
  return output_m<6>(p, M, y);
}

}  // namespace pycnn
