// The depthwise convolution for the avx512 build (conv2d_depthwise.inl).
#include "conv2d_depthwise.inl"

namespace pycnn {

void conv2d_depthwise__avx512(const ConvParams& p, const float* x, const float* w, const float* bias, float* y,
                              Activation act, const float* residual) {
  depthwise_detail::run(p, x, w, bias, y, act, residual);
}

}  // namespace pycnn
