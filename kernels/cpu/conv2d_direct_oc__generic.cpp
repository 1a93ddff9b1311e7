// Output-channel-vectorized direct convolution for the generic build: one 8-float vector (two
// SSE registers) x up to 4 pixels.
#include "conv2d_direct_oc.inl"

namespace pycnn {

PYCNN_DIRECT_OC_ISA(generic, 1, 4)

}  // namespace pycnn
