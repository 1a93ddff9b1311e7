// Squeeze-and-excitation as one kernel for the avx512 build (se_block.inl).
#include "se_block.inl"

namespace pycnn {

PYCNN_SE_BLOCK_ISA(avx512)

}  // namespace pycnn
