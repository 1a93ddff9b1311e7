// Squeeze-and-excitation as one kernel for the avx2 build (se_block.inl).
#include "se_block.inl"

namespace pycnn {

PYCNN_SE_BLOCK_ISA(avx2)

}  // namespace pycnn
