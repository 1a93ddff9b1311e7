// linear for small batches, generic build (see linear_gemv.inl).
#include "linear_gemv.inl"

namespace pycnn {

PYCNN_LINEAR_ISA(generic)

}  // namespace pycnn
