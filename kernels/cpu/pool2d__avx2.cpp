// Max and average pooling for the avx2 build (see pool2d.inl).
#include "pool2d.inl"

namespace pycnn {

PYCNN_POOL_ISA(avx2)

}  // namespace pycnn
