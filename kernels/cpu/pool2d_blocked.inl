// Max pooling on channel-blocked tensors (NCHW16c: x (N, C/16, H, W, 16) -> y (N, C/16, Ho, Wo,
// 16); see pycnn/layout.py), written once over a SIMD type V and compiled per ISA
// (pool2d_blocked__<isa>.cpp).
//
// A pixel's 16 channels are one line, so an output pixel is the max over its window's lines,
// 16 / W vectors each: no row buffers or phases (pool2d.inl's NCHW passes), every lane useful at
// any stride. Threads split (channel block, output row) pairs. Window rows and columns are
// clipped to the image (max pooling never selects padding; every window holds at least one
// input pixel, as the bind checks); a NaN anywhere in a window gives NaN (V::nanmax).
#pragma once
#include <algorithm>
#include <cstdint>
#include <limits>

#include "ops_cpu.h"
#include "pycnn/parallel.h"
#include "simd.h"

namespace pycnn {

template <class V>
void max_pool2d_blocked16_impl(const PoolParams& p, const float* x, float* y) {
  constexpr int W = V::W;
  const int64_t rows = p.planes * p.Ho;  // p.planes: N * C / 16 channel blocks
  const int nt = threads_for(double(rows) * p.Wo * p.R * p.S * 16, rows);
#pragma omp parallel for num_threads(nt) schedule(static)
  for (int64_t it = 0; it < rows; ++it) {
    const int64_t b = it / p.Ho, oh = it % p.Ho;
    const int64_t h0 = std::max<int64_t>(0, oh * p.stride_h - p.pad_t), h1 = std::min(p.H, oh * p.stride_h - p.pad_t + p.R);
    const float* xb = x + b * p.H * p.W * 16;
    float* yr = y + (b * p.Ho + oh) * p.Wo * 16;
    for (int64_t ow = 0; ow < p.Wo; ++ow) {
      const int64_t w0 = std::max<int64_t>(0, ow * p.stride_w - p.pad_l), w1 = std::min(p.W, ow * p.stride_w - p.pad_l + p.S);
      typename V::reg m[16 / W];
      for (int v = 0; v < 16 / W; ++v) m[v] = V::set1(-std::numeric_limits<float>::infinity());
      for (int64_t ih = h0; ih < h1; ++ih)
        for (int64_t iw = w0; iw < w1; ++iw) {
          const float* px = xb + (ih * p.W + iw) * 16;
          for (int v = 0; v < 16 / W; ++v) m[v] = V::nanmax(m[v], V::loadu(px + v * W));
        }
      for (int v = 0; v < 16 / W; ++v) V::storeu(yr + ow * 16 + v * W, m[v]);
    }
  }
}

#define PYCNN_POOL_BLOCKED_ISA(isa)                                                     \
  void max_pool2d_blocked16_##isa(const PoolParams& p, const float* x, float* y) {      \
    max_pool2d_blocked16_impl<simd::isa>(p, x, y);                                      \
  }

}  // namespace pycnn
