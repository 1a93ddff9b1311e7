// CPU convolution entry points. x (N, C, H, W), w (K, C/groups, R, S), bias (K) or null,
// y (N, K, Ho, Wo); all float32 C-contiguous, shapes already validated by pycnn/ops.py.
#pragma once
#include <memory>
#include <vector>

#include "pycnn/buffer.h"
#include "pycnn/isa.h"
#include "pycnn/shapes.h"
#include "sgemm.h"

namespace pycnn {

// Weights packed for the im2col GEMM: one PackedA per group (Kg x Cg*R*S).
struct Im2colWeights {
  std::vector<PackedA> groups;
};
void conv2d_im2col_prepare(const ConvParams& p, const float* w, Im2colWeights& out);
void conv2d_im2col(const ConvParams& p, const float* x, const Im2colWeights& w, const float* bias,
                   float* y, Activation act);

// Weights reordered for the direct kernel of one ISA ([group][kblock][c][r][s][KB]).
struct DirectWeights {
  Isa isa = Isa::generic;
  int64_t K = 0, Cg = 0, R = 0, S = 0, groups = 1;
  AlignedBuffer<float> data;
};
void conv2d_direct_prepare(const ConvParams& p, const float* w, DirectWeights& out);
// Direct convolution (no lowering) with prepared weights; p must match the prepared shape.
void conv2d_direct(const ConvParams& p, const float* x, const DirectWeights& w, const float* bias,
                   float* y, Activation act);

}  // namespace pycnn
