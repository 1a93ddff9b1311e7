// Direct convolution for the avx512 build: 8 output channels x 2 vectors of output columns.
#include "conv2d_direct.inl"

namespace pycnn {

PYCNN_DIRECT_ISA(avx512, 8, 2)

}  // namespace pycnn
