// Max pooling on channel-blocked tensors for the generic build (see pool2d_blocked.inl).
#include "pool2d_blocked.inl"

namespace pycnn {

PYCNN_POOL_BLOCKED_ISA(generic)

}  // namespace pycnn
