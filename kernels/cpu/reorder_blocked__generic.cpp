// NCHW <-> NCHW16c reorders for the generic build (see reorder_blocked.inl).
#include "reorder_blocked.inl"

namespace pycnn {

PYCNN_REORDER_ISA(generic)

}  // namespace pycnn
