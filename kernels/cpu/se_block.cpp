// se_block: squeeze-and-excitation through the active ISA's kernel (se_block.inl).
#include "cpu_kernels.h"
#include "ops_cpu.h"

namespace pycnn {

void se_block(int64_t N, int64_t C, int64_t Cm, int64_t HW, bool blocked, const float* x, const float* w1,
              const float* b1, Activation a1, const float* w2, const float* b2, Activation a2, float* y) {
  active_kernels().se_block(N, C, Cm, HW, blocked, x, w1, b1, a1, w2, b2, a2, y);
}

}  // namespace pycnn
