// Depthwise convolution (groups == C, one input channel per group: MobileNet, EfficientNet,
// ShuffleNet, ConvNeXt's 7x7), compiled once per ISA (conv2d_depthwise__<isa>.cpp): plain loops the
// ISA's flags vectorize. x (N, C, H, W), w (K, 1, R, S) with K = m*C (output channel k reads input
// channel k / m), y (N, K, Ho, Wo), all NCHW.
//
// Per output plane: the input plane is copied once into a zero-padded buffer split into stride_w
// column phases (phase q holds padded columns q, q + sw, ...), so every tap (r, s) reads a
// contiguous run of a phase row whatever the stride: tap s of a row is phase (s*dw) % sw at offset
// (s*dw) / sw. An output row is computed kBlock columns at a time with the accumulators in
// registers over all R*S taps (unrolled for 3x3, 5x5, 7x7), then bias, residual and the activation, and
// stored: y is written once and x read once from memory (the padded plane stays in L1/L2), the
// floor of this memory-bound op.
#include <algorithm>
#include <cstring>
#include <vector>

#include "conv2d.h"
#include "eltwise_unary.inl"
#include "pycnn/parallel.h"

namespace pycnn {
namespace depthwise_detail {
// Internal linkage: every ISA's translation unit includes this file with its own flags, and
// shared inline functions would be merged by the linker into one ISA's copy.
namespace {

// kBlock, the output columns per register block: 16 (one zmm, two ymm per row), 8 on maps at most 8 wide
// (7x7: a 16-column block would compute 2.3x the outputs).

constexpr int64_t kRows = 4;  // output rows per register block: kRows independent FMA chains per column

// The ISA's native vector as GCC's vector extension (one zmm, ymm or xmm): as locals they live in
// registers (an array of float accumulators was kept in memory by the vectorizer, reloaded at
// every tap: ~8 cycles per output), and no wider type is lowered piecewise through the stack.
#if defined(__AVX512F__)
typedef float Vec __attribute__((vector_size(64)));
#elif defined(__AVX__)
typedef float Vec __attribute__((vector_size(32)));
#else
typedef float Vec __attribute__((vector_size(16)));
#endif
constexpr int kLanes = sizeof(Vec) / sizeof(float);
// Maps at most 8 wide (7x7) run 8-column blocks: one ymm where the ISA has them.
#if defined(__AVX__)
typedef float Vec8 __attribute__((vector_size(32)));
#else
typedef Vec Vec8;
#endif

template <class V>
inline void fma_vec(V& acc, float w, const float* p) {
  V v;
  std::memcpy(&v, p, sizeof(v));  // an unaligned vector load
  acc += w * v;
}

// out[t][0, kBlock) for output rows ho + t = b + sum over taps of w[r][s] * the tap's phase row.
// R, S > 0 known at compile time unroll the taps (the common 3x3, 5x5, 7x7); 0 reads them from p.
template <class V, int kBlock, int kR, int kS>
inline void block(const ConvParams& p, const float* buf, int64_t rows, int64_t phase_w, int64_t ho, int64_t wo0,
                  const float* wk, float b, float (*out)[kBlock]) {
  constexpr int kV = kBlock / int(sizeof(V) / sizeof(float));  // vectors per block row
  const int64_t R = kR ? kR : p.R, S = kS ? kS : p.S, sw = p.stride_w, sh = p.stride_h;
  const int64_t row_step = sh * phase_w;
  V acc[kRows][kV];
  for (int t = 0; t < kRows; ++t)
    for (int v = 0; v < kV; ++v) acc[t][v] = V{} + b;
  for (int64_t r = 0; r < R; ++r) {
    for (int64_t s = 0; s < S; ++s) {
      const int64_t q = (s * p.dil_w) % sw, off = (s * p.dil_w) / sw;
      const float* src = buf + (q * rows + ho * sh + r * p.dil_h) * phase_w + off + wo0;
      const float wv = wk[r * S + s];
      for (int t = 0; t < kRows; ++t)
        for (int v = 0; v < kV; ++v) fma_vec(acc[t][v], wv, src + t * row_step + v * int(sizeof(V) / sizeof(float)));
    }
  }
  std::memcpy(out, acc, sizeof(acc));
}

// Copies input plane xp (H, W) into buf: `rows` zero-padded rows, each split into sw phases of
// phase_w columns (phase q, column j = padded column j*sw + q = input column j*sw + q - pad_l).
inline void load_plane(const ConvParams& p, const float* xp, int64_t rows, int64_t phase_w, float* buf) {
  const int64_t sw = p.stride_w;
  std::memset(buf, 0, sizeof(float) * (size_t)(sw * rows * phase_w));
  for (int64_t i = 0; i < rows; ++i) {
    const int64_t h = i - p.pad_t;
    if (h < 0 || h >= p.H) continue;
    const float* xr = xp + h * p.W;
    if (sw == 2 && p.pad_l <= 1) {  // both phases in one pass: even/odd de-interleave the compiler vectorizes
      float* d0 = buf + i * phase_w;
      float* d1 = buf + (rows + i) * phase_w;
      // padded column 2j + q is input column 2j + q - pad_l
      const int64_t jmax = std::min<int64_t>(phase_w, (p.W + p.pad_l) / 2);  // both columns of pair j exist
      const float* src = xr - p.pad_l;
      int64_t j = p.pad_l;  // pad_l == 1: pair 0 has only its odd column
      if (p.pad_l == 1 && phase_w > 0) d1[0] = xr[0];
      for (; j < jmax; ++j) {
        d0[j] = src[2 * j];
        d1[j] = src[2 * j + 1];
      }
      if (j < phase_w && 2 * j - p.pad_l < p.W) d0[j] = src[2 * j];  // a last even column without its pair
      continue;
    }
    for (int64_t q = 0; q < sw; ++q) {
      float* dst = buf + (q * rows + i) * phase_w;
      // columns j with 0 <= j*sw + q - pad_l < W, and j < phase_w
      const int64_t j0 = std::max<int64_t>(0, (p.pad_l - q + sw - 1) / sw);
      const int64_t j1 = std::min<int64_t>(phase_w, (p.W - 1 + p.pad_l - q) / sw + 1);
      if (sw == 1) {
        if (j1 > j0) std::memcpy(dst + j0, xr + j0 - p.pad_l, sizeof(float) * (size_t)(j1 - j0));
      } else {
        const float* src = xr + q - p.pad_l;
        for (int64_t j = j0; j < j1; ++j) dst[j] = src[j * sw];
      }
    }
  }
}

template <class V, int kBlock, int kR, int kS>
void run_taps(const ConvParams& p, const float* x, const float* w, const float* bias, float* y, Activation act,
              const float* residual) {
  const int64_t m = p.K / p.C, sw = p.stride_w, RS = p.R * p.S, planes = p.N * p.K, HWo = p.Ho * p.Wo;
  const int64_t Wo_pad = (p.Wo + kBlock - 1) / kBlock * kBlock;
  const int64_t phase_w = Wo_pad + ((p.S - 1) * p.dil_w) / sw + 1;  // columns per phase row
  const int64_t Ho_pad = (p.Ho + kRows - 1) / kRows * kRows;
  const int64_t rows = (Ho_pad - 1) * p.stride_h + (p.R - 1) * p.dil_h + 1;  // padded rows read
  const bool clamp = act.active();
  // Memory-bound: what a thread is worth is the bytes it moves (x plane in, y plane out).
  const double work = double(planes) * double(p.H * p.W / m + HWo) * 4.0;
  parallel_run(threads_for(work, planes), [&] {
    std::vector<float> buf((size_t)(sw * rows * phase_w));
    int64_t loaded = -1;  // the input plane buf holds (the m planes of one input channel share it)
#pragma omp for schedule(static)
    for (int64_t pk = 0; pk < planes; ++pk) {
      const int64_t n = pk / p.K, k = pk % p.K, src_plane = n * p.C + k / m;
      if (src_plane != loaded) {
        load_plane(p, x + src_plane * p.H * p.W, rows, phase_w, buf.data());
        loaded = src_plane;
      }
      const float* wk = w + k * RS;
      const float b = bias ? bias[k] : 0.0f;
      float* yp = y + pk * HWo;
      const float* rp = residual ? residual + pk * HWo : nullptr;
      for (int64_t ho = 0; ho < p.Ho; ho += kRows) {
        for (int64_t wo0 = 0; wo0 < p.Wo; wo0 += kBlock) {
          alignas(64) float acc[kRows][kBlock];
          block<V, kBlock, kR, kS>(p, buf.data(), rows, phase_w, ho, wo0, wk, b, acc);
          const int64_t n_out = std::min<int64_t>(kBlock, p.Wo - wo0);
          for (int64_t t = 0; t < std::min(kRows, p.Ho - ho); ++t) {  // rows past Ho read padding: dropped
            float* yr = yp + (ho + t) * p.Wo + wo0;
            float* a = acc[t];
            if (rp) {
              const float* rr = rp + (ho + t) * p.Wo + wo0;
              for (int64_t i = 0; i < n_out; ++i) a[i] += rr[i];
            }
            if (clamp)
              for (int64_t i = 0; i < n_out; ++i) yr[i] = act.apply(a[i]);  // NaN kept
            else
              std::memcpy(yr, a, (size_t)n_out * sizeof(float));
            unary_detail::post(act, yr, n_out);
          }
        }
      }
    }
  });
}

template <class V, int kBlock>
void run_block(const ConvParams& p, const float* x, const float* w, const float* bias, float* y, Activation act,
               const float* residual) {
  if (p.R == 3 && p.S == 3) return run_taps<V, kBlock, 3, 3>(p, x, w, bias, y, act, residual);
  if (p.R == 5 && p.S == 5) return run_taps<V, kBlock, 5, 5>(p, x, w, bias, y, act, residual);
  if (p.R == 7 && p.S == 7) return run_taps<V, kBlock, 7, 7>(p, x, w, bias, y, act, residual);
  run_taps<V, kBlock, 0, 0>(p, x, w, bias, y, act, residual);
}

inline void run(const ConvParams& p, const float* x, const float* w, const float* bias, float* y, Activation act,
                const float* residual) {
  constexpr int kWide = kLanes > 16 ? kLanes : 16;
  if (p.Wo <= 8) return run_block<Vec8, 8>(p, x, w, bias, y, act, residual);
  run_block<Vec, kWide>(p, x, w, bias, y, act, residual);
}

}  // namespace
}  // namespace depthwise_detail
}  // namespace pycnn
