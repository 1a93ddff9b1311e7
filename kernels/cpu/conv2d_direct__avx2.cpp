// Direct convolution for the avx2 build: 6 output channels x 2 vectors of output columns.
#include "conv2d_direct.inl"

namespace pycnn {

PYCNN_DIRECT_ISA(avx2, 6, 2)

}  // namespace pycnn
