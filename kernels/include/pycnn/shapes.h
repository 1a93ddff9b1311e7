// Shapes shared by the CPU and CUDA kernels. Python (pycnn/ops.py) validates every field before a
// kernel sees it; kernels trust these structs. All sizes are int64_t so indexing never overflows
// 32 bits on large tensors.
#pragma once
#include <cstdint>
#include <limits>

namespace pycnn {

// x is (N, C, H, W), w is (K, C/groups, R, S), y is (N, K, Ho, Wo); all C-contiguous float32.
// pad_t / pad_l are the top and left padding; bottom/right padding is implied by Ho / Wo, so the
// same struct serves symmetric (PyTorch) and asymmetric (ONNX) padding.
struct ConvParams {
  int64_t N, C, H, W;
  int64_t K, R, S;
  int64_t stride_h, stride_w;
  int64_t pad_t, pad_l;
  int64_t dil_h, dil_w;
  int64_t groups;
  int64_t Ho, Wo;
  // Floats from one image of y to the next; 0: dense (K * Ho * Wo). Set only for algorithms whose
  // layout_ok takes kYImageStrided (a channel-blocked y written into a slice of a wider concat).
  int64_t y_img = 0;
  int64_t y_image_stride() const { return y_img ? y_img : K * Ho * Wo; }
  int64_t Cg() const { return C / groups; }
  int64_t Kg() const { return K / groups; }
  double flops() const { return 2.0 * N * K * Ho * Wo * Cg() * R * S; }
  // 1x1, stride 1, no padding: the output grid is the input grid, so the im2col matrix of one
  // image's group is x itself, (Cg, H*W) row-major.
  bool pointwise() const {
    return R == 1 && S == 1 && stride_h == 1 && stride_w == 1 && pad_t == 0 && pad_l == 0 && Ho == H && Wo == W;
  }
};

// x is (N, C, H, W) viewed as N*C planes; y is (N, C, Ho, Wo). images: the N the planes make (the
// channel-blocked pools order their work by image first, then as the conv before split it).
struct PoolParams {
  int64_t planes, H, W;
  int64_t R, S;
  int64_t stride_h, stride_w;
  int64_t pad_t, pad_l;
  int64_t Ho, Wo;
  int64_t images = 1;
};

// One axis of output o's pooling window (start o * stride - pad, k wide, over n inputs): the
// inputs [begin, end) it covers and the count an average divides by: with count_include_pad the
// window clipped to [-pad, n + pad) (PyTorch's rule), else end - begin; never 0 (1 instead).
struct PoolSpan {
  int64_t begin, end, count;
};
inline PoolSpan pool_span(int64_t o, int64_t stride, int64_t pad, int64_t k, int64_t n, bool count_include_pad) {
  const int64_t w0 = o * stride - pad;
  const int64_t b = w0 > 0 ? w0 : 0, e = w0 + k < n ? w0 + k : n;
  const int64_t padded_end = w0 + k < n + pad ? w0 + k : n + pad;
  const int64_t c = count_include_pad ? padded_end - w0 : e - b;
  return {b, e, c > 0 ? c : 1};
}

// What a convolution's epilogue does to each output before it is stored: y = min(max(v, lo), hi),
// a NaN kept (comparisons with NaN are false), then the element-wise function fn (a UnaryFn of
// ops_cpu.h with its a, b: hard-swish, SiLU, sigmoid, GELU ...; -1: none) on the values just
// stored, while they are in L1. none: unbounded; ReLU: [0, inf); ReLU6 and ONNX's Clip: [lo, hi]
// with lo <= hi (the bindings check).
struct Activation {
  float lo = -std::numeric_limits<float>::infinity();
  float hi = std::numeric_limits<float>::infinity();
  int fn = -1;
  float a = 0.0f, b = 0.0f;
  static constexpr Activation none() { return {}; }
  static constexpr Activation relu() { return {0.0f, std::numeric_limits<float>::infinity(), -1, 0.0f, 0.0f}; }
  static constexpr Activation clamp(float lo, float hi) { return {lo, hi, -1, 0.0f, 0.0f}; }
  bool active() const {
    return lo > -std::numeric_limits<float>::infinity() || hi < std::numeric_limits<float>::infinity();
  }
  float apply(float v) const {
    const float r = v < lo ? lo : v;
    return r > hi ? hi : r;
  }
};

}  // namespace pycnn
