// Pooling entry points: max_pool2d and avg_pool2d dispatch to the per-ISA builds of pool2d.inl;
// global average pooling (a plain reduction per plane) is here.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "ops_cpu.h"
#include "cpu_kernels.h"
#include "pycnn/parallel.h"

namespace pycnn {

void max_pool2d_blocked16(const PoolParams& p, const float* x, float* y) {
  active_kernels().max_pool2d_blocked16(p, x, y);
}

void avg_pool2d_blocked16(const PoolParams& p, const float* x, float* y, bool count_include_pad) {
  active_kernels().avg_pool2d_blocked16(p, x, y, count_include_pad);
}

void max_pool2d(const PoolParams& p, const float* x, float* y) { active_kernels().max_pool2d(p, x, y); }

void avg_pool2d(const PoolParams& p, const float* x, float* y, bool count_include_pad) {
  active_kernels().avg_pool2d(p, x, y, count_include_pad);
}

void global_avg_pool2d(int64_t planes, int64_t HW, const float* x, float* y) {
  // Memory-bound: the input is usually cold (the last conv's output) and two threads stream it
  // faster than one, so each element weighs 32 flops in the thread count.
  const int nt = threads_for(double(planes) * HW * 32, planes);
  parallel_run(nt, [&] {
#pragma omp for schedule(static)
    for (int64_t pl = 0; pl < planes; ++pl) {
      const float* xp = x + pl * HW;
      float part[8] = {0, 0, 0, 0, 0, 0, 0, 0};
      int64_t i = 0;
      for (; i + 8 <= HW; i += 8)
        for (int j = 0; j < 8; ++j) part[j] += xp[i + j];
      float s = 0.0f;
      for (; i < HW; ++i) s += xp[i];
      for (int j = 0; j < 8; ++j) s += part[j];
      y[pl] = s / (float)HW;
    }
  });
}

void global_avg_pool2d_blocked16(int64_t blocks, int64_t HW, const float* x, float* y) {
  const int nt = threads_for(double(blocks) * HW * 16 * 32, blocks);
  parallel_run(nt, [&] {
#pragma omp for schedule(static)
    for (int64_t b = 0; b < blocks; ++b) {
      const float* xp = x + b * HW * 16;
      float s[16] = {};  // the 16 channels' sums, one vector add per pixel
      for (int64_t i = 0; i < HW; ++i)
        for (int c = 0; c < 16; ++c) s[c] += xp[i * 16 + c];
      for (int c = 0; c < 16; ++c) y[b * 16 + c] = s[c] / (float)HW;
    }
  });
}

}  // namespace pycnn
