// CPU convolution entry points. x (N, C, H, W), w (K, C/groups, R, S), bias (K) or null,
// y (N, K, Ho, Wo); all float32 C-contiguous, shapes already validated by pycnn/ops.py.
#pragma once
#include <memory>
#include <vector>

#include "pycnn/buffer.h"
#include "pycnn/shapes.h"
#include "sgemm.h"

namespace pycnn {

// Number of weight transforms (im2col packing, direct reordering, Winograd U) done so far in this
// process: the tests check that prepared weights are never transformed again.
int64_t weight_transform_count();
void count_weight_transform();

// Prepared weights of one algorithm (conv2d_algos.h holds which).
struct ConvWeights {
  virtual ~ConvWeights() = default;
};

// Weights packed for the im2col GEMM: one PackedA per group (Kg x Cg*R*S).
struct Im2colWeights final : ConvWeights {
  std::vector<PackedA> groups;
};
void conv2d_im2col_prepare(const ConvParams& p, const float* w, Im2colWeights& out);
// residual (optional, y's shape): added to the convolution before the activation, so a ResNet
// join y = act(conv(x) + b + r) is one pass (act: a clamp, ReLU or ReLU6) (every algorithm below takes it).
void conv2d_im2col(const ConvParams& p, const float* x, const Im2colWeights& w, const float* bias, float* y,
                   Activation act, const float* residual = nullptr);

// Weights reordered for the direct kernel of one ISA ([group][kblock][c][r][s][KB]).
struct DirectWeights final : ConvWeights {
  const CpuKernels* kernels = nullptr;  // the ISA it was reordered for, and runs with
  int64_t K = 0, Cg = 0, R = 0, S = 0, groups = 1;
  AlignedBuffer<float> data;
};
void conv2d_direct_prepare(const ConvParams& p, const float* w, DirectWeights& out);
// Direct convolution (no lowering) with prepared weights; p must match the prepared shape.
void conv2d_direct(const ConvParams& p, const float* x, const DirectWeights& w, const float* bias, float* y,
                   Activation act, const float* residual = nullptr);
// Direct convolution vectorized over output channels (conv2d_direct_oc.inl): weights reordered
// to [group][kblock][r][s][c][KB] for one ISA's KB; suits small maps, strides and 1x1 kernels.
void conv2d_direct_oc_prepare(const ConvParams& p, const float* w, DirectWeights& out);
// layout: kDirectOc*Blocked bits; a set bit says that tensor is channel-blocked NCHW16c,
// (N, C/16, H, W, 16) (conv2d_direct_oc.inl). Any window, stride, padding and dilation with
// groups 1, C % 16 == 0 for a blocked x and K % 16 == 0 for a blocked y or residual; anything
// else throws std::invalid_argument.
constexpr int kDirectOcXBlocked = 1, kDirectOcYBlocked = 2, kDirectOcResBlocked = 4;
// With a blocked y and no residual: y's images are p.y_img floats apart (a channel slice of a
// wider tensor: a Graph's concat output at batch > 1). Winograd and direct_oc take it.
constexpr int kYImageStrided = 8;
// y is (N, K): each output map's mean of act(conv + bias + residual), summed from the band's sums
// as they are finished, the maps never written (a Graph's conv read only by a global average
// pool: pycnn/graph/fuse_mean.py). direct_oc only, groups 1, with x and / or the residual blocked
// or not; never with a blocked or strided y.
constexpr int kDirectOcMeanY = 16;
void conv2d_direct_oc(const ConvParams& p, const float* x, const DirectWeights& w, const float* bias, float* y,
                      Activation act, const float* residual = nullptr, int layout = 0);
// Whether conv2d_direct_oc takes p with these layout bits.
bool direct_oc_layout_ok(const ConvParams& p, int layout);

// Depthwise convolution (groups == C, K = m*C: one input channel per group) on NCHW planes,
// conv2d_depthwise.inl: the weights (K, 1, R, S) kept as they are with the ISA table they run with.
struct DepthwiseWeights final : ConvWeights {
  const CpuKernels* kernels = nullptr;
  AlignedBuffer<float> data;
};
void conv2d_depthwise_prepare(const ConvParams& p, const float* w, DepthwiseWeights& out);
void conv2d_depthwise(const ConvParams& p, const float* x, const DepthwiseWeights& w, const float* bias, float* y,
                      Activation act, const float* residual = nullptr);
// Depthwise convolution vectorized over 16-channel blocks (groups == C == K),
// conv2d_depthwise_c16.inl: weights as (ceil(C/16), R*S, 16), zero-padded; x, y and the residual
// NCHW or, by the kDirectOc*Blocked bits, NCHW16c (then 16 | C).
void conv2d_depthwise_c16_prepare(const ConvParams& p, const float* w, DepthwiseWeights& out);
void conv2d_depthwise_c16(const ConvParams& p, const float* x, const DepthwiseWeights& w, const float* bias, float* y,
                          Activation act, const float* residual = nullptr, int layout = 0);
bool depthwise_c16_layout_ok(const ConvParams& p, int layout);
// Grouped convolution with G = C / groups of 2, 4 or 8 input and output channels per group (C == K),
// vectorized over 16-channel blocks (conv2d_depthwise_c16.inl): weights as (ceil(C/16), R*S, G,
// 16), lane k of rotation J holding w[k][(k + J) % G]; layouts as depthwise_c16's.
std::string grouped_c16_refuse(const ConvParams& p);
void conv2d_grouped_c16_prepare(const ConvParams& p, const float* w, DepthwiseWeights& out);
void conv2d_grouped_c16(const ConvParams& p, const float* x, const DepthwiseWeights& w, const float* bias, float* y,
                        Activation act, const float* residual = nullptr, int layout = 0);
bool grouped_c16_layout_ok(const ConvParams& p, int layout);
// A 1x1 conv (cin -> dw.C channels, stride 1, unpadded; weights wpw (dw.C/16, cin, 16)) and the
// depthwise conv dw reading its output (weights as depthwise_c16's), fused: x (N, cin/16, H, W,
// 16) -> y (N, dw.C/16, Ho, Wo, 16), the expansion never stored (conv2d_pw_dw_c16.inl).
void conv2d_pw_dw_c16(const ConvParams& dw, int64_t cin, const float* x, const float* wpw, const float* bpw,
                      Activation apw, const float* wdw, const float* bdw, Activation adw, float* y);

// A bank of convolutions over one single-channel input x (N, 1, H, W) whose windows span whole
// input rows (R_j x W kernels, stride sh down the rows, no padding, groups 1: a sentence CNN's
// filters over word vectors), each followed by its bias and activation and the max over its map;
// y[n * ldy + off_j + k] for filter k of conv j, off_j the filters of the convs before (the concat
// of the maxima). All A share one ISA and MR; A->K == R_j * W, 1 <= R_j <= H
// (conv2d_rows_bank.cpp).
struct RowsBankConv {
  const PackedA* A;   // K_j x R_j*W, the im2col weights
  const float* bias;  // K_j entries or null
  int64_t R;
  bool relu;
};
void conv2d_rows_bank_max(int64_t N, int64_t H, int64_t W, int64_t sh, const float* x,
                          const std::vector<RowsBankConv>& convs, float* y, int64_t ldy);

// Winograd F(m x m, r x r): m = 2, 4 or 6 for 3x3 kernels, 2 or 4 for 5x5, and one-dimensional
// F(1 x m, 1 x r) / F(m x 1, r x 1), m = 2 or 4 (3 or 5 for r = 4), for r = 3, 4, 5, 7
// (with_winograd_tile, stride 1, dilation 1; any padding). Weights: U = G_h g G_w^T for every
// (k, c), stored as ah * aw packed SGEMM A matrices (Kg x Cg) per group, alpha = m + r - 1 per
// axis, transformed once.
struct WinogradWeights final : ConvWeights {
  int m = 4;                            // the output tile along the kernel's long axis
  const CpuKernels* kernels = nullptr;  // the ISA its U was packed for, and runs with
  int64_t K = 0, Cg = 0, groups = 1;
  std::vector<PackedA> U;  // [group * alpha^2 + xi]
};
void conv2d_winograd_prepare(const ConvParams& p, const float* w, int m, WinogradWeights& out);
// How conv2d_winograd runs a call: per-thread tile blocks (each thread all three stages on its
// own tiles, V and M in its L2) or chunks of tiles shared by all threads (conv2d_winograd.inl).
struct WinogradPlanInfo {
  bool blocks = false;
  int threads = 1;
  int panel = 0;                  // tiles per GEMM column panel (blocks)
  int64_t blocks_per_thread = 0;  // blocks of each thread's even share of the tiles
  int64_t channels_per_pass = 0;  // output channels per GEMM + output-transform pass
  int64_t tiles_per_block = 0;    // the largest block's tiles, in whole panels
};
WinogradPlanInfo conv2d_winograd_plan(const ConvParams& p, const WinogradWeights& w, bool y_blocked);
// y_blocked: y is NCHW16c, (N, K/16, Ho, Wo, 16) (groups 1, 16 | K, no residual; else throws).
void conv2d_winograd(const ConvParams& p, const float* x, const WinogradWeights& w, const float* bias, float* y,
                     Activation act, const float* residual = nullptr, bool y_blocked = false);
// ah * aw for tile m on an R x S kernel; std::invalid_argument where pycnn has no such tile.
int winograd_alpha_product(int m, int64_t R, int64_t S);
// Output tiles of an (N, Ho, Wo) output with tile m on an R x S kernel (with_winograd_tile's tile).
int64_t winograd_tile_count(int m, int64_t R, int64_t S, int64_t N, int64_t Ho, int64_t Wo);
// The transforms on their own, for the tests: filter (K, Cg, R, S) -> U (ah aw, K, Cg);
// input x (N, C, H, W) -> V (ah aw, C, N*TH*TW); output M (ah aw, K, N*TH*TW) -> y (N, K, Ho, Wo)
// (the kernel is (p.R, p.S) for these two).
void winograd_filter_transform(int m, int64_t R, int64_t S, int64_t K, int64_t Cg, const float* w, float* U);
void winograd_input_transform(const ConvParams& p, int m, const float* x, float* V);
void winograd_output_transform(const ConvParams& p, int m, const float* M, float* y);

}  // namespace pycnn
