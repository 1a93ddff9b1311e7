// The depthwise convolution for the generic build (conv2d_depthwise.inl).
#include "conv2d_depthwise.inl"

namespace pycnn {

void conv2d_depthwise__generic(const ConvParams& p, const float* x, const float* w, const float* bias, float* y,
                               Activation act, const float* residual) {
  depthwise_detail::run(p, x, w, bias, y, act, residual);
}

}  // namespace pycnn
