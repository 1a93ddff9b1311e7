// Direct convolution for the avx512 build: 8 output channels x 2 vectors of output columns.
#include "conv2d_direct.inl"

namespace pycnn {

void conv2d_direct_avx512(const ConvParams& p, const float* x, const float* w, const float* bias,
                         float* y, Activation act) {
  DirectConv<simd::avx512, 8, 2>(p).run(x, w, bias, y, act == Activation::relu);
}

}  // namespace pycnn
