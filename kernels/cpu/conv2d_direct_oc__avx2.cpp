// Output-channel-vectorized direct convolution for the avx2 build: 2 ymm (16 output channels)
// x up to 6 pixels = 12 accumulators (16 ymm registers).
#include "conv2d_direct_oc.inl"

namespace pycnn {

PYCNN_DIRECT_OC_ISA(avx2, 2, 6)

}  // namespace pycnn
