// linear: y (N, Out) = x (N, In) W^T + b, W (Out, In) as PyTorch stores it.
// Small batches (N <= 4) are matrix-vector products bound by reading W once: each thread takes
// a block of W's rows and dots them with every x row. Larger batches use the SGEMM with B = W^T
// packed from W's rows (MatrixBSource's transposed path) and the bias fused per column.
#include <algorithm>

#include "ops_cpu.h"
#include "pycnn/parallel.h"
#include "sgemm.h"

namespace pycnn {

void linear(int64_t N, int64_t In, int64_t Out, const float* x, const float* w, const float* b,
            float* y, bool do_relu) {
  if (N > 4) {
    sgemm(N, Out, In, x, In, 1, w, 1, In, y, Out, nullptr, b, do_relu);
    return;
  }
  const int nt = threads_for(2.0 * N * In * Out, Out);
#pragma omp parallel for num_threads(nt) schedule(static)
  for (int64_t o = 0; o < Out; ++o) {
    const float* wr = w + o * In;
    for (int64_t n = 0; n < N; ++n) {
      const float* xr = x + n * In;
      float part[16] = {0};
      int64_t i = 0;
      for (; i + 16 <= In; i += 16)
        for (int j = 0; j < 16; ++j) part[j] += wr[i + j] * xr[i + j];
      float s = 0.0f;
      for (; i < In; ++i) s += wr[i] * xr[i];
      for (int j = 0; j < 16; ++j) s += part[j];
      s += b ? b[o] : 0.0f;
      y[n * Out + o] = (do_relu && s < 0.0f) ? 0.0f : s;
    }
  }
}

}  // namespace pycnn
