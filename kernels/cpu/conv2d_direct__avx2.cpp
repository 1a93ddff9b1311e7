// Direct convolution for the avx2 build: 6 output channels x 2 vectors of output columns.
#include "conv2d_direct.inl"

namespace pycnn {

void conv2d_direct_avx2(const ConvParams& p, const float* x, const float* w, const float* bias,
                         float* y, Activation act) {
  DirectConv<simd::avx2, 6, 2>(p).run(x, w, bias, y, act == Activation::relu);
}

}  // namespace pycnn
