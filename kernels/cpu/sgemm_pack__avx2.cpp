// The SGEMM's packers for the avx2 build (sgemm_pack.inl).
#include "sgemm_pack.inl"

namespace pycnn {

PYCNN_SGEMM_PACK_ISA(avx2)

}  // namespace pycnn
