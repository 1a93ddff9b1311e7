// conv2d_depthwise: the weights are kept as given (K, 1, R, S) and run with the kernel of the ISA
// in use when they were prepared (conv2d_depthwise__<isa>.cpp).
#include <algorithm>
#include <stdexcept>

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

}  // namespace pycnn
