// conv2d_direct and conv2d_direct_oc: the weights are reordered for one ISA's register block when
// prepared (conv2d_direct__<isa>.cpp, conv2d_direct_oc__<isa>.cpp) and run with that ISA's kernels.
#include <stdexcept>

#include "conv2d.h"
#include "subsample.h"
#include "cpu_kernels.h"

namespace pycnn {

namespace {

void prepare(DirectPrepareFn CpuKernels::* fn, const ConvParams& p, const float* w, DirectWeights& out) {
  count_weight_transform();
  out.kernels = &active_kernels();  // reordered for, and run with, the ISA in use now
  out.K = p.K;
  out.Cg = p.Cg();
  out.R = p.R;
  out.S = p.S;
  out.groups = p.groups;
  (out.kernels->*fn)(p, w, out.data);
}

}  // namespace

void conv2d_direct_prepare(const ConvParams& p, const float* w, DirectWeights& out) {
  prepare(&CpuKernels::conv2d_direct_prepare, p, w, out);
}

void conv2d_direct(const ConvParams& p, const float* x, const DirectWeights& w, const float* bias, float* y,
                   Activation act, const float* residual) {
  w.kernels->conv2d_direct(p, x, w.data.data(), bias, y, act, residual);
}

void conv2d_direct_oc_prepare(const ConvParams& p, const float* w, DirectWeights& out) {
  prepare(&CpuKernels::conv2d_direct_oc_prepare, p, w, out);
}

namespace {

// A 1x1 stride-1 convolution does not care where rows end: its H*W pixels run as the fewest
// rows (at most H) of at most 512, so row tiles are PMAX pixels wide (14-wide rows made tiles
// of 7): 1x1 convs at 7x7 and 14x14 7-10% faster.
void direct_oc_pointwise(DirectOcRunFn run, const ConvParams& p, const float* x, const float* wb, const float* bias,
                         float* y, Activation act, const float* residual, int layout = 0) {
  for (int64_t rows = 1; rows < p.H; ++rows)
    if ((p.H * p.W) % rows == 0 && p.H * p.W / rows <= 512) {
      ConvParams q = p;
      q.H = q.Ho = rows;
      q.W = q.Wo = p.H * p.W / rows;
      return run(q, x, wb, bias, y, act, residual, layout);
    }
  run(p, x, wb, bias, y, act, residual, layout);
}

// Windows that span whole input rows and never leave the image (Kim's CNN: h x 300 filters over
// 300-wide word vectors, Wo = 1): output row oh reads one contiguous run of each plane,
// x[c][oh*sh*W .. + R*W). As a 1 x (H*W) image with a 1 x (R*W) window at column stride sh*W
// the Ho outputs become one row of pixels, so row tiles hold PMAX of them (each was a 1-pixel
// tile). The reordered weights are the same: tap r*S + s of the original is tap r*W + s here.
bool whole_row_windows(const ConvParams& p) {
  return p.Wo == 1 && p.S == p.W && p.pad_t == 0 && p.pad_l == 0 && p.dil_h == 1 && p.dil_w == 1 &&
         (p.Ho - 1) * p.stride_h + p.R <= p.H;
}

ConvParams as_one_row(const ConvParams& p) {
  ConvParams q = p;
  q.W = p.H * p.W;
  q.H = 1;
  q.S = p.R * p.W;
  q.R = 1;
  q.stride_w = p.stride_h * p.W;
  q.stride_h = 1;
  q.Wo = p.Ho;
  q.Ho = 1;
  return q;
}

// Windows that cover the whole input without padding (LeNet-5's conv3): one output pixel per
// image, so a batch ran as N one-pixel tiles, each loading all the weights for one pixel (2
// weight loads per 2 FMAs). The images become the pixels of one output row instead.
bool whole_input_windows(const ConvParams& p) {
  return p.R == p.H && p.S == p.W && p.Ho == 1 && p.Wo == 1 && p.pad_t == 0 && p.pad_l == 0 && p.dil_h == 1 &&
         p.dil_w == 1;
}

ConvParams images_as_row(const ConvParams& p) {
  ConvParams q = p;
  q.Wo = p.N;
  q.N = 1;
  q.stride_w = p.C * p.H * p.W;
  return q;
}

}  // namespace

bool direct_oc_layout_ok(const ConvParams& p, int layout) {
  if (layout == 0) return true;
  if (layout & kYImageStrided) {  // a blocked y with strided images, no residual
    if (!(layout & kDirectOcYBlocked) || (layout & kDirectOcResBlocked)) return false;
    layout &= ~kYImageStrided;
  }
  if (layout & kDirectOcMeanY) {  // the means are no y: never a blocked (or a strided, blocked) one
    if (layout & kDirectOcYBlocked) return false;
    layout &= ~kDirectOcMeanY;
  }
  if (layout < 0 || layout > 7 || p.groups != 1) return false;
  if ((layout & kDirectOcXBlocked) && p.C % 16 != 0) return false;
  return !(layout & (kDirectOcYBlocked | kDirectOcResBlocked)) || p.K % 16 == 0;
}

void conv2d_direct_oc(const ConvParams& p, const float* x, const DirectWeights& w, const float* bias, float* y,
                      Activation act, const float* residual, int layout) {
  const DirectOcRunFn run = w.kernels->conv2d_direct_oc;
  if (!direct_oc_layout_ok(p, layout))
    throw std::invalid_argument(
        "layout: groups 1, a blocked x only with 16 | C, "
        "a blocked y or residual only with 16 | K");
  if (subsampled_pointwise(p)) {
    // Strided 1x1 (ResNet's downsamples): on dense subsampled planes, as a pointwise conv (the
    // strided reads of x cost more than the copy). An image has C*Ho*Wo floats in either layout,
    // so the chunk offsets are the same.
    const int64_t HoWo = p.Ho * p.Wo;
    for_subsampled_chunks(
        p, x,
        [&](const ConvParams& q, const float* xs, int64_t n0) {
          const int64_t off = n0 * p.K * HoWo;
          direct_oc_pointwise(run, q, xs, w.data.data(), bias, y + n0 * p.y_image_stride(), act,
                              residual ? residual + off : nullptr, layout);
        },
        (layout & kDirectOcXBlocked) ? 16 : 1);
    return;
  }
  if (p.pointwise()) return direct_oc_pointwise(run, p, x, w.data.data(), bias, y, act, residual, layout);
  if (layout) return run(p, x, w.data.data(), bias, y, act, residual, layout);  // a blocked y or residual
  if (whole_row_windows(p) && p.Ho > 1) return run(as_one_row(p), x, w.data.data(), bias, y, act, residual, 0);
  if (whole_input_windows(p) && p.N > 1)
    return w.kernels->conv2d_direct_oc_images(images_as_row(p), x, w.data.data(), bias, y, act, residual, 0);
  run(p, x, w.data.data(), bias, y, act, residual, 0);
}

}  // namespace pycnn
