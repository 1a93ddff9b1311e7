// The SGEMM's packers for the generic build (sgemm_pack.inl).
#include "sgemm_pack.inl"

namespace pycnn {

PYCNN_SGEMM_PACK_ISA(generic)

}  // namespace pycnn
