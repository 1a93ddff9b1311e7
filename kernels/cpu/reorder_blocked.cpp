// NCHW <-> NCHW16c reorders: dispatch to the per-ISA builds of reorder_blocked.inl.
#include "ops_cpu.h"
#include "pycnn/isa.h"

namespace pycnn {

#define PYCNN_REORDER_DECL(isa)                                                               \
  void reorder_to_blocked16_##isa(int64_t, int64_t, int64_t, const float*, float*);         \
  void reorder_from_blocked16_##isa(int64_t, int64_t, int64_t, const float*, float*);
PYCNN_REORDER_DECL(avx512)
PYCNN_REORDER_DECL(avx2)
PYCNN_REORDER_DECL(generic)

void reorder_to_blocked16(int64_t N, int64_t C, int64_t HW, const float* x, float* y) {
  switch (active_isa()) {
    case Isa::avx512: return reorder_to_blocked16_avx512(N, C, HW, x, y);
    case Isa::avx2: return reorder_to_blocked16_avx2(N, C, HW, x, y);
    default: return reorder_to_blocked16_generic(N, C, HW, x, y);
  }
}

void reorder_from_blocked16(int64_t N, int64_t C, int64_t HW, const float* y, float* x) {
  switch (active_isa()) {
    case Isa::avx512: return reorder_from_blocked16_avx512(N, C, HW, y, x);
    case Isa::avx2: return reorder_from_blocked16_avx2(N, C, HW, y, x);
    default: return reorder_from_blocked16_generic(N, C, HW, y, x);
  }
}

}  // namespace pycnn
