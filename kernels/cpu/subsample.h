// Strided 1x1 convolutions without padding (ResNet's downsamples) as pointwise ones: the input
// is subsampled once into dense (C, Ho, Wo) planes (1 / (sh*sw) of x, contiguous row copies
// afterwards instead of a strided read per use), in chunks of images of <= 32 MiB, and the
// kernel runs a stride-1 1x1 convolution on each chunk. Shared by im2col and direct_oc.
#pragma once
#include <algorithm>
#include <cstdint>

#include "pycnn/buffer.h"
#include "pycnn/parallel.h"
#include "pycnn/shapes.h"

namespace pycnn {

inline bool subsampled_pointwise(const ConvParams& p) {
  return p.R == 1 && p.S == 1 && (p.stride_h > 1 || p.stride_w > 1) && p.pad_t == 0 && p.pad_l == 0 &&
         (p.Ho - 1) * p.stride_h < p.H && (p.Wo - 1) * p.stride_w < p.W;
}

// For each chunk of images [n0, n0 + q.N): run(q, xs, n0), q being the pointwise convolution on
// the subsampled planes xs (q.N images, (C, Ho, Wo) each). xs is this thread's kSlotConvIn
// workspace: run must not use that slot itself. block 16: x is channel-blocked NCHW16c
// (N, C/16, H, W, 16) and so is xs (each pixel's 16 channels copied together).
template <class Run>
void for_subsampled_chunks(const ConvParams& p, const float* x, Run run, int64_t block = 1) {
  const int64_t HoWo = p.Ho * p.Wo;
  ConvParams q = p;
  q.H = p.Ho;
  q.W = p.Wo;
  q.stride_h = q.stride_w = 1;
  const int64_t chunk =
      std::max<int64_t>(1, std::min<int64_t>(p.N, (32ll << 20) / (p.C * HoWo * (int64_t)sizeof(float))));
  float* xs = workspace(kSlotConvIn, (size_t)(chunk * p.C * HoWo));
  const int nt = threads_for(p.flops(), 1 << 30);
  for (int64_t n0 = 0; n0 < p.N; n0 += chunk) {
    const int64_t nn = std::min(chunk, p.N - n0);
    q.N = nn;
    const int64_t planes = nn * p.C / block;
    parallel_run(nt, [&] {
#pragma omp for schedule(static)
      for (int64_t t = 0; t < planes; ++t) {  // plane t = (image, channel or channel block)
        const float* src = x + (n0 * p.C / block + t) * p.H * p.W * block;
        float* dst = xs + t * HoWo * block;
        for (int64_t oh = 0; oh < p.Ho; ++oh) {
          const float* sr = src + oh * p.stride_h * p.W * block;
          float* dr = dst + oh * p.Wo * block;
          if (block == 1) {
            for (int64_t ow = 0; ow < p.Wo; ++ow) dr[ow] = sr[ow * p.stride_w];
          } else {
            for (int64_t ow = 0; ow < p.Wo; ++ow) std::copy_n(sr + ow * p.stride_w * block, block, dr + ow * block);
          }
        }
      }
    });
    run(q, (const float*)xs, n0);
  }
}

}  // namespace pycnn
