// Winograd F(2x2,3x3), F(4x4,3x3), F(6x6,3x3) for the generic build (see conv2d_winograd.inl).
#include "conv2d_winograd.inl"

namespace pycnn {

PYCNN_WINOGRAD_ISA(generic)

}  // namespace pycnn
