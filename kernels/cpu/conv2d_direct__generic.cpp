// Direct convolution for the generic build: 4 output channels x 2 vectors of output columns.
#include "conv2d_direct.inl"

namespace pycnn {

using DirectConv_generic = DirectConv<simd::generic, 4, 2>;

void conv2d_direct_prepare_generic(const ConvParams& p, const float* w, AlignedBuffer<float>& wb) {
  DirectConv_generic conv(p);
  wb.resize((size_t)conv.wb_size());
  conv.reorder_weights(w, wb.data());
}

void conv2d_direct_generic(const ConvParams& p, const float* x, const float* wb, const float* bias,
                         float* y, Activation act) {
  DirectConv_generic(p).run(x, wb, bias, y, act == Activation::relu);
}

}  // namespace pycnn
