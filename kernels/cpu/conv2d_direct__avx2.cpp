// Direct convolution for the avx2 build: 6 output channels x 2 vectors of output columns.
#include "conv2d_direct.inl"

namespace pycnn {

using DirectConv_avx2 = DirectConv<simd::avx2, 6, 2>;

void conv2d_direct_prepare_avx2(const ConvParams& p, const float* w, AlignedBuffer<float>& wb) {
  DirectConv_avx2 conv(p);
  wb.resize((size_t)conv.wb_size());
  conv.reorder_weights(w, wb.data());
}

void conv2d_direct_avx2(const ConvParams& p, const float* x, const float* wb, const float* bias,
                         float* y, Activation act) {
  DirectConv_avx2(p).run(x, wb, bias, y, act == Activation::relu);
}

}  // namespace pycnn
