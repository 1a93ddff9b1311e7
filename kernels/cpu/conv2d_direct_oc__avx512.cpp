// Output-channel-vectorized direct convolution for the avx512 build: 2 zmm (32 output channels)
// x up to 14 pixels of one output row = 28 accumulators (with the 2 weight vectors and the
// broadcast, 31 of the 32 registers: 14 over 12 took 28-wide strided layers 5-9% faster, since
// 28 and 56 columns split into 2 and 4 full tiles instead of 3 and 5 of 9-12).
#include "conv2d_direct_oc.inl"

namespace pycnn {

PYCNN_DIRECT_OC_ISA(avx512, 2, 14)

}  // namespace pycnn
