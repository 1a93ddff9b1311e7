// linear: y (N, Out) = x (N, In) W^T + b, W (Out, In) as PyTorch stores it.
// Small batches (N <= 16) are matrix-vector products bound by reading W once: the per-ISA
// linear_gemv kernels (linear_gemv.inl) stream each W row once against every x row. Larger
// batches use the SGEMM with B = W^T packed from W's rows (MatrixBSource's transposed path) and
// the bias fused per column.
#include <algorithm>

#include "ops_cpu.h"
#include "pycnn/isa.h"
#include "sgemm.h"

namespace pycnn {

#define PYCNN_DECLARE_LINEAR(isa)                                                                  \
  void linear_gemv_##isa(int64_t N, int64_t In, int64_t Out, const float* x, const float* w,     \
                         const float* b, float* y, bool relu);
PYCNN_DECLARE_LINEAR(generic)
PYCNN_DECLARE_LINEAR(avx2)
PYCNN_DECLARE_LINEAR(avx512)

constexpr int64_t kGemvMaxBatch = 16;

void linear(int64_t N, int64_t In, int64_t Out, const float* x, const float* w, const float* b,
            float* y, bool do_relu) {
  if (N > kGemvMaxBatch) {
    sgemm(N, Out, In, x, In, 1, w, 1, In, y, Out, nullptr, b, do_relu);
    return;
  }
  switch (active_isa()) {
    case Isa::avx512: return linear_gemv_avx512(N, In, Out, x, w, b, y, do_relu);
    case Isa::avx2: return linear_gemv_avx2(N, In, Out, x, w, b, y, do_relu);
    default: return linear_gemv_generic(N, In, Out, x, w, b, y, do_relu);
  }
}

}  // namespace pycnn
