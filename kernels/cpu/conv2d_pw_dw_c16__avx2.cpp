// The fused 1x1 -> depthwise convolution on channel-blocked tensors for the avx2 build (conv2d_pw_dw_c16.inl).
#include "conv2d_pw_dw_c16.inl"

namespace pycnn {

PYCNN_PW_DW_C16_ISA(avx2)

}  // namespace pycnn
