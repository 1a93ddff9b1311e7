// The channel-blocked grouped convolution (2, 4 or 8 channels per group) for the generic build
// (conv2d_depthwise_c16.inl).
#include "conv2d_depthwise_c16.inl"

namespace pycnn {

PYCNN_GROUPED_C16_ISA(generic)

}  // namespace pycnn
