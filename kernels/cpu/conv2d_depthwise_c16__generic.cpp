// The channel-blocked depthwise convolution for the generic build (conv2d_depthwise_c16.inl).
#include "conv2d_depthwise_c16.inl"

namespace pycnn {

PYCNN_DEPTHWISE_C16_ISA(generic)

}  // namespace pycnn
