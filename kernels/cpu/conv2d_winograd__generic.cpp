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
  std::vector<typename WinogradConv<simd::generic, m>::Group> groups;
  wc.make_groups(0, T, groups);
  for (int64_t c = 0; c < p.C; ++c) {
    int64_t t = 0;
    for (auto& g : groups) {
      wc.input_group(x, g, c, V + c * T, p.C * T, t);
      t += g.nt;
    }
  }
}

template <int m>
static void output_m(const ConvParams& p, const float* M, float* y) {
  WinogradConv<simd::generic, m> wc(p);
  const int64_t T = p.N * wc.TH * wc.TW;
  std::vector<typename WinogradConv<simd::generic, m>::Group> groups;
  wc.make_groups(0, T, groups);
  for (int64_t k = 0; k < p.K; ++k) {
    int64_t t = 0;
    for (auto& g : groups) {
      wc.output_group(M + k * T, p.K * T, t, g, k, 0.0f, false, y);
      t += g.nt;
    }
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
