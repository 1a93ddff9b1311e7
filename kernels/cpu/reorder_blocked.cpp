// NCHW <-> NCHW16c reorders: dispatch to the per-ISA builds of reorder_blocked.inl.
#include "ops_cpu.h"
#include "cpu_kernels.h"

namespace pycnn {

void reorder_to_blocked16(int64_t N, int64_t C, int64_t HW, const float* x, float* y) {
  active_kernels().reorder_to_blocked16(N, C, HW, x, y);
}

void reorder_from_blocked16(int64_t N, int64_t C, int64_t HW, const float* y, float* x) {
  active_kernels().reorder_from_blocked16(N, C, HW, y, x);
}

}  // namespace pycnn
