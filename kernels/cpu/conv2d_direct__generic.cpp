// Direct convolution for the generic build: 4 output channels x 2 vectors of output columns.
#include "conv2d_direct.inl"

namespace pycnn {

PYCNN_DIRECT_ISA(generic, 4, 2)

}  // namespace pycnn
