// Direct convolution for the avx512 build: 8 output channels x 2 vectors of output columns.
#include "conv2d_direct.inl"

namespace pycnn {

using DirectConv_avx512 = DirectConv<simd::avx512, 8, 2>;

void conv2d_direct_prepare_avx512(const ConvParams& p, const float* w, AlignedBuffer<float>& wb) {
  DirectConv_avx512 conv(p);
  wb.resize((size_t)conv.wb_size());
  conv.reorder_weights(w, wb.data());
}

void conv2d_direct_avx512(const ConvParams& p, const float* x, const float* wb, const float* bias,
                         float* y, Activation act) {
  DirectConv_avx512(p).run(x, wb, bias, y, act == Activation::relu);
}

}  // namespace pycnn
