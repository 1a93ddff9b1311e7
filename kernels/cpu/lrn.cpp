// Cross-channel local response normalization (AlexNet's norm1/norm2), NCHW.
// For each image, threads split the H*W positions into chunks; a chunk's squares are computed
// once into a (C, chunk) buffer and each channel sums its window from there, vectorized over the
// positions. The window is summed afresh for every channel (not slid by add/subtract), so an Inf
// leaving the window cannot turn into Inf - Inf = NaN and rounding does not accumulate.
// beta = 0.75 (the common value) uses d^-0.75 = 1/(sqrt(d)*sqrt(sqrt(d))), which vectorizes.
#include <algorithm>
#include <cmath>
#include <vector>

#include "ops_cpu.h"
#include "pycnn/buffer.h"
#include "pycnn/parallel.h"

namespace pycnn {

void local_response_norm(int64_t N, int64_t C, int64_t HW, const float* x, float* y, int64_t size, float alpha,
                         float beta, float k) {
  constexpr int64_t kChunk = 256;
  const int64_t chunks = (HW + kChunk - 1) / kChunk;
  const int64_t before = size / 2, after = (size - 1) / 2;
  const float a = alpha / (float)size;
  const bool beta075 = beta == 0.75f;
  const int nt = threads_for(double(N) * C * HW * 8, N * chunks);
  // Per thread: squares (C x chunk) and the window sums (chunk), from the thread's workspace.
  const size_t need = (size_t)((C + 1) * kChunk);
  check_workspace(need);
  ParallelFailure failure;
  parallel_run(nt, [&] {
    float* sq = workspace_nothrow(kSlotConvIn, need);
    float* accp = sq ? sq + C * kChunk : nullptr;
    if (!sq) failure.set();
#pragma omp for schedule(static)
    for (int64_t t = 0; t < N * chunks; ++t) {
      if (!sq) continue;
      const int64_t n = t / chunks, p0 = (t % chunks) * kChunk;
      const int64_t len = std::min(kChunk, HW - p0);
      const float* xn = x + n * C * HW + p0;
      float* yn = y + n * C * HW + p0;
      for (int64_t c = 0; c < C; ++c)
        for (int64_t i = 0; i < len; ++i) sq[c * kChunk + i] = xn[c * HW + i] * xn[c * HW + i];
      float* s = accp;
      for (int64_t c = 0; c < C; ++c) {
        const int64_t c0 = std::max<int64_t>(0, c - before), c1 = std::min<int64_t>(C - 1, c + after);
        std::fill(s, s + len, 0.0f);
        for (int64_t cc = c0; cc <= c1; ++cc)
          for (int64_t i = 0; i < len; ++i) s[i] += sq[cc * kChunk + i];
        const float* xc = xn + c * HW;
        float* yc = yn + c * HW;
        if (beta075) {
          for (int64_t i = 0; i < len; ++i) {
            const float d = k + a * s[i];
            const float r = std::sqrt(d);
            yc[i] = xc[i] / (r * std::sqrt(r));
          }
        } else {
          for (int64_t i = 0; i < len; ++i) yc[i] = xc[i] / std::pow(k + a * s[i], beta);
        }
      }
    }
  });
  failure.rethrow();
}

}  // namespace pycnn
