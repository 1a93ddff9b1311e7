// NCHW <-> NCHW16c (channel-blocked, (N, C/16, H, W, 16); see pycnn/layout.py), written once over
// a SIMD type V and compiled per ISA (reorder_blocked__<isa>.cpp).
//
// Per (image, channel block) and W pixels at a time: W x W in-register transposes between 16
// channel rows of W pixels and W pixel runs of 16 channels (16 / W transposes each). A Graph
// reorders a tensor this way only where a producer that cannot write the blocked layout (ResNet's
// stem max pool) feeds 1x1 convs that read it blocked.
#pragma once
#include <algorithm>
#include <cstdint>

#include "pycnn/parallel.h"
#include "simd.h"

namespace pycnn {

template <class V>
struct ReorderBlocked {
  static constexpr int W = V::W;

  // to_blocked: x (N, C, HW) -> y (N, C/16, HW, 16); else y (N, C/16, HW, 16) -> x (N, C, HW).
  template <bool to_blocked>
  static void run(int64_t N, int64_t C, int64_t HW, const float* src, float* dst) {
    const int64_t blocks = N * (C / 16), chunks = (HW + W - 1) / W;
    const int nt = threads_for(double(blocks) * HW * 16 * 8, blocks * chunks);
    parallel_run(nt, [&] {
#pragma omp for schedule(static)
      for (int64_t it = 0; it < blocks * chunks; ++it) {
        const int64_t b = it / chunks, p0 = it % chunks * W;
        const int m = (int)std::min<int64_t>(W, HW - p0);  // pixels in this chunk
        const float* s = src + b * 16 * HW;                // the block's first plane / first pixel run
        float* d = dst + b * 16 * HW;
        for (int h = 0; h < 16; h += W) {  // channels h .. h + W of the block
          typename V::reg r[W];
          if (to_blocked) {
            for (int q = 0; q < W; ++q) {
              const float* row = s + (h + q) * HW + p0;
              r[q] = m == W ? V::loadu(row) : V::loadu_n(row, m);
            }
            V::transpose(r);  // r[l]: channels h .. h + W of pixel p0 + l
            for (int l = 0; l < m; ++l) V::storeu(d + (p0 + l) * 16 + h, r[l]);
          } else {
            for (int l = 0; l < W; ++l) r[l] = l < m ? V::loadu(s + (p0 + l) * 16 + h) : V::zero();
            V::transpose(r);  // r[q]: pixels p0 .. p0 + m of channel h + q
            for (int q = 0; q < W; ++q) {
              float* row = d + (h + q) * HW + p0;
              if (m == W)
                V::storeu(row, r[q]);
              else
                V::storeu_n(row, r[q], m);
            }
          }
        }
      }
    });
  }
};

#define PYCNN_REORDER_ISA(isa)                                                                     \
  void reorder_to_blocked16__##isa(int64_t N, int64_t C, int64_t HW, const float* x, float* y) {   \
    ReorderBlocked<simd::isa>::run<true>(N, C, HW, x, y);                                          \
  }                                                                                                \
  void reorder_from_blocked16__##isa(int64_t N, int64_t C, int64_t HW, const float* y, float* x) { \
    ReorderBlocked<simd::isa>::run<false>(N, C, HW, y, x);                                         \
  }

}  // namespace pycnn
