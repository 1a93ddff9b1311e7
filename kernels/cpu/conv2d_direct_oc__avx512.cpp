// Output-channel-vectorized direct convolution for the avx512 build: 2 zmm (32 output channels)
// x up to 12 pixels of one output row = 24 accumulators.
#include "conv2d_direct_oc.inl"

namespace pycnn {

PYCNN_DIRECT_OC_ISA(avx512, 2, 12)

}  // namespace pycnn
