// Max and average pooling for the avx512 build (see pool2d.inl).
#include "pool2d.inl"

namespace pycnn {

PYCNN_POOL_ISA(avx512)

}  // namespace pycnn
