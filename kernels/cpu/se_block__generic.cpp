// Squeeze-and-excitation as one kernel for the generic build (se_block.inl).
#include "se_block.inl"

namespace pycnn {

PYCNN_SE_BLOCK_ISA(generic)

}  // namespace pycnn
