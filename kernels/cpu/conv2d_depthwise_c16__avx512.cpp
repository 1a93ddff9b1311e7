// The channel-blocked depthwise convolution for the avx512 build (conv2d_depthwise_c16.inl).
#include "conv2d_depthwise_c16.inl"

namespace pycnn {

PYCNN_DEPTHWISE_C16_ISA(avx512)

}  // namespace pycnn
