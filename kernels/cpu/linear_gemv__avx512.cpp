// linear for small batches, avx512 build (see linear_gemv.inl).
#include "linear_gemv.inl"

namespace pycnn {

PYCNN_LINEAR_ISA(avx512)

}  // namespace pycnn
