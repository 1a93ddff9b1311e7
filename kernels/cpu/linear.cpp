// linear: y (N, Out) = x (N, In) W^T + b, W (Out, In) as PyTorch stores it.
// Small batches (N <= 16) are matrix-vector products bound by reading W once: the per-ISA
// linear_gemv kernels (linear_gemv.inl) stream each W row once against every x row. Larger
// batches use the SGEMM with B = W^T packed from W's rows (MatrixBSource's transposed path) and
// the bias fused per column.
#include <algorithm>

#include "ops_cpu.h"
#include "cpu_kernels.h"
#include "sgemm.h"

namespace pycnn {

constexpr int64_t kGemvMaxBatch = 16;

void linear(int64_t N, int64_t In, int64_t Out, const float* x, const float* w, const float* b, float* y,
            bool do_relu) {
  if (N > kGemvMaxBatch) {
    sgemm(N, Out, In, x, In, 1, w, 1, In, y, Out, nullptr, b, do_relu);
    return;
  }
  active_kernels().linear_gemv(N, In, Out, x, w, b, y, do_relu);
}

}  // namespace pycnn
