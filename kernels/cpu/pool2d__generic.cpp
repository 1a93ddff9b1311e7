// Max and average pooling for the generic build (see pool2d.inl).
#include "pool2d.inl"

namespace pycnn {

PYCNN_POOL_ISA(generic)

}  // namespace pycnn
