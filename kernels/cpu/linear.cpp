// linear: y (N, Out) = x (N, In) W^T + b, W (Out, In) as PyTorch stores it.
// Small batches (N <= 16) are matrix-vector products bound by reading W once: the per-ISA
// linear_gemv kernels (linear_gemv.inl) stream each W row once against every x row. Larger
// batches use the SGEMM with B = W^T packed from W's rows (MatrixBSource's transposed path) and
// the bias fused per column. A bound linear (a Graph's step) of 2-16 rows packs W^T once into
// panels of output features (linear_panels_prepare) and multiplies them as a small GEMM.
#include <algorithm>

#include "ops_cpu.h"
#include "cpu_kernels.h"
#include "sgemm.h"

namespace pycnn {

constexpr int64_t kGemvMaxBatch = 16;
// A bound linear of kPanelsMinBatch..kGemvMaxBatch rows runs on W^T's panels (linear_panels), for W
// under kLinearStreamedFloats (past it W streams from memory, where the panels measured 1.31x on
// AVX-512 but 0.88x on AVX2 at 4096x4096, and would hold a second copy of a large W).
constexpr int64_t kPanelsMinBatch = 2;

void linear(int64_t N, int64_t In, int64_t Out, const float* x, const float* w, const float* b, float* y,
            bool do_relu) {
  if (N > kGemvMaxBatch) {
    sgemm(N, Out, In, x, In, 1, w, 1, In, y, Out, nullptr, b, do_relu);
    return;
  }
  active_kernels().linear_gemv(N, In, Out, x, w, b, y, do_relu);
}

bool linear_uses_panels(int64_t N, int64_t In, int64_t Out) {
  return N >= kPanelsMinBatch && N <= kGemvMaxBatch && In * Out < kLinearStreamedFloats;
}

void linear_panels_prepare(int64_t In, int64_t Out, const float* w, LinearPanels& out) {
  const CpuKernels& k = active_kernels();
  out.kernels = &k;
  out.wp.assign((size_t)k.linear_pack(In, Out, w, nullptr), 0.0f);
  k.linear_pack(In, Out, w, out.wp.data());
}

void linear_panels_run(const LinearPanels& wp, int64_t N, int64_t In, int64_t Out, const float* x, const float* b,
                       float* y, bool relu) {
  wp.kernels->linear_panels(N, In, Out, x, wp.wp.data(), b, y, relu);
}

}  // namespace pycnn
