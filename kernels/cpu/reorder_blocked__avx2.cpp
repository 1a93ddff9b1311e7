// NCHW <-> NCHW16c reorders for the avx2 build (see reorder_blocked.inl).
#include "reorder_blocked.inl"

namespace pycnn {

PYCNN_REORDER_ISA(avx2)

}  // namespace pycnn
