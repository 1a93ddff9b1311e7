// conv2d_depthwise (weights kept as given, (K, 1, R, S)) and conv2d_depthwise_c16 (weights as
// 16-channel blocks); both run with the kernels of the ISA in use when they were prepared
// (conv2d_depthwise*__<isa>.cpp).
#include <algorithm>
#include <stdexcept>
#include <string>

#include "conv2d.h"
#include "cpu_kernels.h"

namespace pycnn {

void conv2d_depthwise_prepare(const ConvParams& p, const float* w, DepthwiseWeights& out) {
  if (p.groups != p.C || p.K % p.C != 0) throw std::invalid_argument("depthwise: needs groups == C and C | K");
  count_weight_transform();
  out.kernels = &active_kernels();
  const size_t n = (size_t)(p.K * p.R * p.S);
  out.data.resize(n);
  std::copy(w, w + n, out.data.data());
}

void conv2d_depthwise(const ConvParams& p, const float* x, const DepthwiseWeights& w, const float* bias, float* y,
                      Activation act, const float* residual) {
  w.kernels->conv2d_depthwise(p, x, w.data.data(), bias, y, act, residual);
}

namespace {

// The weights (C, G, R, S) of G channels per group (G = 1: depthwise) as the channel-blocked
// kernel reads them (conv2d_depthwise_c16.inl): data[((cb * RS + t) * G + J) * 16 + l] =
// w[k][(k + J) % G][t] for k = cb * 16 + l, zero past C.
void c16_weights(const ConvParams& p, int64_t G, const float* w, DepthwiseWeights& out) {
  count_weight_transform();
  out.kernels = &active_kernels();
  const int64_t RS = p.R * p.S, n = (p.C + 15) / 16 * RS * G * 16;
  out.data.resize((size_t)n);
  std::fill(out.data.data(), out.data.data() + n, 0.0f);
  for (int64_t k = 0; k < p.C; ++k)
    for (int64_t J = 0; J < G; ++J)
      for (int64_t t = 0; t < RS; ++t)
        out.data.data()[(((k / 16) * RS + t) * G + J) * 16 + k % 16] = w[(k * G + (k % G + J) % G) * RS + t];
}

// Layout bits a channel-blocked kernel takes for a conv it runs: any blocked x, y, residual with 16 | C.
bool c16_layout_bits_ok(const ConvParams& p, int layout) {
  return layout == 0 || (layout > 0 && layout <= 7 && p.C % 16 == 0);
}

}  // namespace

void conv2d_depthwise_c16_prepare(const ConvParams& p, const float* w, DepthwiseWeights& out) {
  if (p.groups != p.C || p.K != p.C) throw std::invalid_argument("depthwise_c16: needs groups == C == K");
  c16_weights(p, 1, w, out);
}

bool depthwise_c16_layout_ok(const ConvParams& p, int layout) {
  return layout == 0 || (p.groups == p.C && p.K == p.C && c16_layout_bits_ok(p, layout));
}

void conv2d_depthwise_c16(const ConvParams& p, const float* x, const DepthwiseWeights& w, const float* bias, float* y,
                          Activation act, const float* residual, int layout) {
  if (!depthwise_c16_layout_ok(p, layout))
    throw std::invalid_argument("layout: a blocked depthwise_c16 conv needs 16 | C");
  w.kernels->conv2d_depthwise_c16(p, x, w.data.data(), bias, y, act, residual, layout);
}

std::string grouped_c16_refuse(const ConvParams& p) {
  const int64_t G = p.groups > 0 ? p.C / p.groups : 0;
  if (p.groups <= 1 || p.C % p.groups != 0 || p.K != p.C || (G != 2 && G != 4 && G != 8))
    return "needs in_channels == out_channels with 2, 4 or 8 channels per group, got groups " +
           std::to_string(p.groups) + " for " + std::to_string(p.C) + " input and " + std::to_string(p.K) +
           " output channels";
  return "";
}

void conv2d_grouped_c16_prepare(const ConvParams& p, const float* w, DepthwiseWeights& out) {
  const std::string why = grouped_c16_refuse(p);
  if (!why.empty()) throw std::invalid_argument("grouped_c16: " + why);
  c16_weights(p, p.C / p.groups, w, out);
}

bool grouped_c16_layout_ok(const ConvParams& p, int layout) {
  return layout == 0 || (grouped_c16_refuse(p).empty() && c16_layout_bits_ok(p, layout));
}

void conv2d_grouped_c16(const ConvParams& p, const float* x, const DepthwiseWeights& w, const float* bias, float* y,
                        Activation act, const float* residual, int layout) {
  const std::string why = grouped_c16_refuse(p);
  if (!why.empty()) throw std::invalid_argument("grouped_c16: " + why);
  if (!c16_layout_bits_ok(p, layout)) throw std::invalid_argument("layout: a blocked grouped_c16 conv needs 16 | C");
  w.kernels->conv2d_grouped_c16(p, x, w.data.data(), bias, y, act, residual, layout);
}

void conv2d_pw_dw_c16(const ConvParams& dw, int64_t cin, const float* x, const float* wpw, const float* bpw,
                      Activation apw, const float* wdw, const float* bdw, Activation adw, float* y) {
  if (dw.groups != dw.C || dw.K != dw.C || dw.C % 16 != 0 || cin % 16 != 0 || cin <= 0)
    throw std::invalid_argument("pw_dw: needs a depthwise conv (groups == C == K) and 16 | C, 16 | cin");
  if (dw.dil_h != 1 || dw.dil_w != 1) throw std::invalid_argument("pw_dw: dilation 1 only");
  active_kernels().conv2d_pw_dw_c16(dw, cin, x, wpw, bpw, apw, wdw, bdw, adw, y);
}

}  // namespace pycnn
