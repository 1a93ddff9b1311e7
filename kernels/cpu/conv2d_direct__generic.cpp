// Direct convolution for the generic build: 4 output channels x 2 vectors of output columns.
#include "conv2d_direct.inl"

namespace pycnn {

void conv2d_direct_generic(const ConvParams& p, const float* x, const float* w, const float* bias,
                         float* y, Activation act) {
  DirectConv<simd::generic, 4, 2>(p).run(x, w, bias, y, act == Activation::relu);
}

}  // namespace pycnn
