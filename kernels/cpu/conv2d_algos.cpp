// The table of convolution algorithms with C++ prepared weights (see conv2d_algos.h).
#include "conv2d_algos.h"

#include <stdexcept>

#include "winograd_matrices.h"

namespace pycnn {

namespace {

std::string accept_all(const ConvParams&) { return ""; }
bool nchw_only(const ConvParams&, int layout) { return layout == 0; }

std::string pair_str(int64_t a, int64_t b) { return "(" + std::to_string(a) + ", " + std::to_string(b) + ")"; }

// Winograd with output tile m: the kernels with_winograd_tile has a tile m for (3x3 for m = 2, 4,
// 6; 5x5 for 2, 4: F(6x6,5x5)'s alpha of 10 in both axes loses too much precision; 1 x r and
// r x 1 for r = 3, 4, 5, 7 and m = 2, 4), stride 1, dilation 1; its gathers and scatters address
// a plane with 32-bit lane offsets (the other algorithms index with 64 bits throughout).
template <int m>
std::string winograd_refuse(const ConvParams& p) {
  const bool kernel_ok = with_winograd_tile(m, p.R, p.S, [](auto) {});
  if (!kernel_ok || p.stride_h != 1 || p.stride_w != 1 || p.dil_h != 1 || p.dil_w != 1)
    return std::string("needs a ") + (m == 6 ? "3x3" : "3x3, 5x5, 1xr or rx1 (r = 3, 4, 5, 7)") +
           " kernel with stride 1 and dilation 1, got kernel " + std::to_string(p.R) + "x" + std::to_string(p.S) +
           ", stride " + pair_str(p.stride_h, p.stride_w) + ", dilation " + pair_str(p.dil_h, p.dil_w);
  if (p.H * p.W >= (int64_t(1) << 31) || p.Ho * p.Wo >= (int64_t(1) << 31))
    return "cannot run planes of 2^31 or more elements (use algo='im2col')";
  return "";
}
// A blocked y (groups 1, 16 | K), its images possibly strided; the residual, if any, must be NCHW
// (conv2d_winograd checks).
bool winograd_layout_ok(const ConvParams& p, int layout) {
  return layout == 0 || ((layout & ~kYImageStrided) == kDirectOcYBlocked && p.groups == 1 && p.K % 16 == 0);
}

// One input channel per group: groups == C, K a multiple of C.
std::string depthwise_refuse(const ConvParams& p) {
  if (p.groups != p.C || p.K % p.C != 0)
    return "needs groups == in_channels (one input channel per group), got groups " + std::to_string(p.groups) +
           " for " + std::to_string(p.C) + " input and " + std::to_string(p.K) + " output channels";
  return "";
}

// One input and one output channel per group: groups == C == K.
std::string depthwise_c16_refuse(const ConvParams& p) {
  if (p.groups != p.C || p.K != p.C)
    return "needs groups == in_channels == out_channels, got groups " + std::to_string(p.groups) + " for " +
           std::to_string(p.C) + " input and " + std::to_string(p.K) + " output channels";
  return "";
}

template <class W>
const W& as(const ConvWeights& w) {
  return static_cast<const W&>(w);  // the entry that prepared them runs them
}

// An algorithm's prepare as a table entry: its weights type W made by fn.
template <class W, void (*fn)(const ConvParams&, const float*, W&)>
std::unique_ptr<ConvWeights> prepare_as(const ConvParams& p, const float* w) {
  auto out = std::make_unique<W>();
  fn(p, w, *out);
  return out;
}
void im2col_run(const ConvWeights& w, const ConvParams& p, const float* x, const float* b, float* y, Activation act,
                const float* r, int) {
  conv2d_im2col(p, x, as<Im2colWeights>(w), b, y, act, r);
}

void direct_run(const ConvWeights& w, const ConvParams& p, const float* x, const float* b, float* y, Activation act,
                const float* r, int) {
  conv2d_direct(p, x, as<DirectWeights>(w), b, y, act, r);
}

void direct_oc_run(const ConvWeights& w, const ConvParams& p, const float* x, const float* b, float* y, Activation act,
                   const float* r, int layout) {
  conv2d_direct_oc(p, x, as<DirectWeights>(w), b, y, act, r, layout);
}

void depthwise_run(const ConvWeights& w, const ConvParams& p, const float* x, const float* b, float* y, Activation act,
                   const float* r, int) {
  conv2d_depthwise(p, x, as<DepthwiseWeights>(w), b, y, act, r);
}

void depthwise_c16_run(const ConvWeights& w, const ConvParams& p, const float* x, const float* b, float* y,
                       Activation act, const float* r, int layout) {
  conv2d_depthwise_c16(p, x, as<DepthwiseWeights>(w), b, y, act, r, layout);
}

void grouped_c16_run(const ConvWeights& w, const ConvParams& p, const float* x, const float* b, float* y,
                     Activation act, const float* r, int layout) {
  conv2d_grouped_c16(p, x, as<DepthwiseWeights>(w), b, y, act, r, layout);
}

template <int m>
void winograd_prepare_m(const ConvParams& p, const float* w, WinogradWeights& out) {
  conv2d_winograd_prepare(p, w, m, out);
}
void winograd_run(const ConvWeights& w, const ConvParams& p, const float* x, const float* b, float* y, Activation act,
                  const float* r, int layout) {
  if (layout && r) throw std::invalid_argument("residual: not supported with a blocked Winograd output");
  conv2d_winograd(p, x, as<WinogradWeights>(w), b, y, act, r, (layout & kDirectOcYBlocked) != 0);
}

// Measured max relative errors and the bounds the tests hold each tile to: README "Winograd accuracy".
const std::vector<ConvAlgorithm> kConvAlgorithms = {
    {"direct", "direct convolution vectorized along output columns (first layers: few input channels)", 0.0, 0.0,
     accept_all, nchw_only, prepare_as<DirectWeights, conv2d_direct_prepare>, direct_run},
    {"direct_oc",
     "direct convolution vectorized over output channels, reading x in place (small maps, strides, "
     "1x1, channel-blocked tensors)",
     0.0, 0.0, accept_all, direct_oc_layout_ok, prepare_as<DirectWeights, conv2d_direct_oc_prepare>, direct_oc_run},
    {"im2col", "implicit im2col packed into our SGEMM's panels", 0.0, 0.0, accept_all, nchw_only,
     prepare_as<Im2colWeights, conv2d_im2col_prepare>, im2col_run},
    {"depthwise", "depthwise convolution (one input channel per group), a padded plane per channel, rows in registers",
     0.0, 0.0, depthwise_refuse, nchw_only, prepare_as<DepthwiseWeights, conv2d_depthwise_prepare>, depthwise_run},
    {"depthwise_c16",
     "depthwise convolution (one channel per group) vectorized over 16-channel blocks: small maps, "
     "channel-blocked tensors",
     0.0, 0.0, depthwise_c16_refuse, depthwise_c16_layout_ok,
     prepare_as<DepthwiseWeights, conv2d_depthwise_c16_prepare>, depthwise_c16_run},
    {"grouped_c16",
     "grouped convolution with 2, 4 or 8 channels per group (C == K) vectorized over 16-channel blocks, "
     "the group's inputs as in-register rotations: every lane useful",
     0.0, 0.0, grouped_c16_refuse, grouped_c16_layout_ok, prepare_as<DepthwiseWeights, conv2d_grouped_c16_prepare>,
     grouped_c16_run},
    {"winograd_f2",
     "Winograd F(2x2,3x3): 16 multiplications per 4 outputs; F(2x2,5x5): 36 per 4 outputs on 5x5 kernels; "
     "one-dimensional F(1x2,1xr) / F(2x1,rx1) on 1x3, 1x5, 1x7 kernels and their transposes (r + 1 per 2 outputs), "
     "F(1x3,1x4) / F(3x1,4x1) on 1x4 and 4x1 (6 per 3)",
     5e-6, 5e-5, winograd_refuse<2>, winograd_layout_ok, prepare_as<WinogradWeights, winograd_prepare_m<2>>,
     winograd_run},
    {"winograd_f4",
     "Winograd F(4x4,3x3): 36 multiplications per 16 outputs; F(4x4,5x5): 64 per 16 outputs on 5x5 kernels; "
     "one-dimensional F(1x4,1xr) / F(4x1,rx1) on 1x3, 1x5, 1x7 kernels and their transposes (r + 3 per 4 outputs), "
     "F(1x5,1x4) / F(5x1,4x1) on 1x4 and 4x1 (8 per 5)",
     5e-5, 2e-4, winograd_refuse<4>, winograd_layout_ok, prepare_as<WinogradWeights, winograd_prepare_m<4>>,
     winograd_run},
    {"winograd_f6", "Winograd F(6x6,3x3): 64 multiplications per 36 outputs", 2e-4, 0.0, winograd_refuse<6>,
     winograd_layout_ok, prepare_as<WinogradWeights, winograd_prepare_m<6>>, winograd_run},
};

}  // namespace

const std::vector<ConvAlgorithm>& conv_algorithms() { return kConvAlgorithms; }

const ConvAlgorithm& conv_algorithm(const std::string& name) {
  std::string names;
  for (const ConvAlgorithm& a : kConvAlgorithms) {
    if (name == a.name) return a;
    names += std::string(names.empty() ? "'" : ", '") + a.name + "'";
  }
  throw std::invalid_argument("algo: unknown CPU conv2d algorithm '" + name + "' (C++ kernels: " + names + ")");
}

}  // namespace pycnn
