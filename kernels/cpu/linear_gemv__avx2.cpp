// linear for small batches, avx2 build (see linear_gemv.inl).
#include "linear_gemv.inl"

namespace pycnn {

PYCNN_LINEAR_ISA(avx2)

}  // namespace pycnn
