// Element-wise activations of the ONNX networks (MobileNet's ReLU6 and hard-swish, EfficientNet's
// SiLU, ConvNeXt's GELU, squeeze-and-excitation's sigmoid), compiled once per ISA
// (eltwise_unary__<isa>.cpp): branch-free loops over a chunk the ISA's flags vectorize, with exp
// written out (Cody-Waite range reduction, degree-7 polynomial, 2^n through the exponent bits:
// relative error ~2e-7) because libm's is not vectorized. erf is Abramowitz-Stegun 7.1.26
// (absolute error <= 1.5e-7), its series near 0. NaN in gives NaN out (a final select), as IEEE says.
#pragma once
#include <cstdint>
#include <cstring>

#include "ops_cpu.h"
#include "pycnn/shapes.h"

namespace pycnn {
namespace unary_detail {
// Internal linkage: each ISA's translation unit compiles its own copy (see conv2d_depthwise.inl).
namespace {

// Forced into the loops below: they vectorize only with their calls inlined, and with this file
// included by every kernel's epilogue the link-time inliner left erf_approx as a call (GELU ran
// scalar, 9x slower).
#define PYCNN_UNARY_INLINE inline __attribute__((always_inline))

PYCNN_UNARY_INLINE float bits_to_float(int32_t i) {
  float f;
  std::memcpy(&f, &i, 4);
  return f;
}

// Cody-Waite: x = n ln 2 + r, |r| <= ln 2 / 2; t keeps n in its low mantissa bits for times_pow2.
PYCNN_UNARY_INLINE float ln2_reduce(float x, float& t) {
  t = x * 1.44269504f + 12582912.0f;  // 1.5 * 2^23: rounds x / ln 2 to an integer
  const float n = t - 12582912.0f;
  const float r = x - n * 0.693359375f;
  return r + n * 2.12194440e-4f;  // ln 2 = 0.693359375 - 2.12194440e-4
}

// p * 2^n for ln2_reduce's t: n added into the exponent field.
PYCNN_UNARY_INLINE float times_pow2(float p, float t) {
  int32_t ti, pi;
  std::memcpy(&ti, &t, 4);
  std::memcpy(&pi, &p, 4);
  return bits_to_float(pi + ((ti - 0x4B400000) << 23));
}

// e^x: 0 below -87.3 (before denormals), +inf above 88.7, the polynomial between.
PYCNN_UNARY_INLINE float exp_approx(float x0) {
  float t;
  const float r = ln2_reduce(x0 < -87.3f ? -87.3f : (x0 > 88.7f ? 88.7f : x0), t);
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  const float v = times_pow2(p, t);
  return x0 < -87.3f ? 0.0f : (x0 > 88.7f ? __builtin_inff() : v);
}

PYCNN_UNARY_INLINE float erf_approx(float x) {
  const float a = x < 0.0f ? -x : x;
  const float t = 1.0f / (1.0f + 0.3275911f * a);
  float p = 1.061405429f;
  p = p * t - 1.453152027f;
  p = p * t + 1.421413741f;
  p = p * t - 0.284496736f;
  p = p * t + 0.254829592f;
  const float y = 1.0f - p * t * exp_approx(-a * a);
  // near 0 the series (relative error < 1e-7 for |x| < 0.1), where 1 - p t e^(-x^2) cancels
  const float x2 = x * x;
  const float series = x * (1.1283791671f + x2 * (-0.3761263890f + x2 * 0.1128379167f));
  return a < 0.1f ? series : (x < 0.0f ? -y : y);
}

PYCNN_UNARY_INLINE float sigmoid(float x) { return 1.0f / (1.0f + exp_approx(-x)); }

// SiLU as v / (1 + e^-v), e^-v without exp_approx's underflow select (above v = 87.3 it is
// e^-87.3 ~ 1e-38 instead of 0: v / (1 + 1e-38) is v), one multiply fewer than v * sigmoid(v),
// and e^r of degree 5 (exp_approx's 7: 1.7e-7 against 6.6e-8 relative error, SiLU within 4e-7):
// 1.14-1.3x on a SiLU epilogue. Below v = -88.7, e^-v is +inf: v / inf = -0, and -inf / inf =
// NaN, as -inf * sigmoid(-inf) = -inf * 0.
PYCNN_UNARY_INLINE float silu(float v) {
  const float x0 = -v;
  float t;  // no upper clamp: above 88.7 the select below wins
  const float r = ln2_reduce(x0 < -87.3f ? -87.3f : x0, t);
  float q = 8.312860164819032e-3f;  // e^r ~ 1 + r + r^2 q(r): degree 5, relative error 1.7e-7
  q = q * r + 4.1889020097869545e-2f;
  q = q * r + 1.6667110631549767e-1f;
  q = q * r + 4.9999243234694857e-1f;
  const float e = times_pow2((r * r) * q + r + 1.0f, t);
  return v / (1.0f + (x0 > 88.7f ? __builtin_inff() : e));
}

PYCNN_UNARY_INLINE float clamp01(float v) { return v < 0.0f ? 0.0f : (v > 1.0f ? 1.0f : v); }

// One loop per function so each vectorizes on its own; the NaN select keeps NaN where the
// arithmetic above (clamps, comparisons) would drop it.
#define PYCNN_UNARY_LOOP(expr)      \
  for (int64_t i = 0; i < n; ++i) { \
    const float v = x[i];           \
    const float r = (expr);         \
    y[i] = v != v ? v : r;          \
  }

inline void run(int fn, int64_t n, const float* x, float* y, float a, float b) {
  switch (static_cast<UnaryFn>(fn)) {
    case UnaryFn::clip:  // a = lo, b = hi (+-inf: unbounded)
      PYCNN_UNARY_LOOP(v < a ? a : (v > b ? b : v));
      break;
    case UnaryFn::sigmoid:
      PYCNN_UNARY_LOOP(sigmoid(v));
      break;
    case UnaryFn::hardsigmoid:  // clip(a v + b, 0, 1)
      PYCNN_UNARY_LOOP(clamp01(a * v + b));
      break;
    case UnaryFn::hardswish:  // v clip(v / 6 + 1/2, 0, 1)
      PYCNN_UNARY_LOOP(v * clamp01(v * (1.0f / 6.0f) + 0.5f));
      break;
    case UnaryFn::silu:
      PYCNN_UNARY_LOOP(silu(v));
      break;
    case UnaryFn::erf:
      PYCNN_UNARY_LOOP(erf_approx(v));
      break;
    case UnaryFn::gelu:  // v/2 (1 + erf(v / sqrt 2))
      PYCNN_UNARY_LOOP(0.5f * v * (1.0f + erf_approx(v * 0.70710678f)));
      break;
  }
}
#undef PYCNN_UNARY_LOOP

// A conv epilogue's element-wise function (Activation::fn) on n floats just stored at p, in place.
inline void post(const Activation& act, float* p, int64_t n) {
  if (act.fn >= 0) run(act.fn, n, p, p, act.a, act.b);
}

// The same functions on N floats in registers (GCC vector extensions, lowered to the ISA of the
// file that includes this): what a conv epilogue applies to each vector before storing it. The
// scalar loops above through a stack buffer cost 2-3x more per vector (SiLU after a 16 -> 96
// 1x1 at 112x112: +0.45 ms on 0.40).
template <int N>
struct UnaryVec {
  typedef float F __attribute__((vector_size(4 * N)));
  typedef int32_t I __attribute__((vector_size(4 * N)));

  static PYCNN_UNARY_INLINE F splat(float a) { return F{} + a; }
  static PYCNN_UNARY_INLINE F sel(I m, F a, F b) { return m ? a : b; }

  // as the scalar ln2_reduce and times_pow2
  static PYCNN_UNARY_INLINE F ln2_reduce(F x, F& t) {
    t = x * 1.44269504f + 12582912.0f;
    const F n = t - 12582912.0f;
    const F r = x - n * 0.693359375f;
    return r + n * 2.12194440e-4f;
  }
  static PYCNN_UNARY_INLINE F times_pow2(F p, F t) { return (F)((I)p + (((I)t - 0x4B400000) << 23)); }

  static PYCNN_UNARY_INLINE F exp(F x0) {
    const F lo = splat(-87.3f), hi = splat(88.7f);
    F x = sel(x0 < lo, lo, x0);
    x = sel(x > hi, hi, x);
    F t;
    const F r = ln2_reduce(x, t);
    F p = splat(1.9875691500e-4f);
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    F v = times_pow2(p, t);
    v = sel(x0 < lo, splat(0.0f), v);
    return sel(x0 > hi, splat(__builtin_inff()), v);
  }
  static PYCNN_UNARY_INLINE F sigmoid(F x) { return 1.0f / (1.0f + exp(-x)); }
  // as the scalar silu (see there)
  static PYCNN_UNARY_INLINE F silu(F v) {
    const F lo = splat(-87.3f), hi = splat(88.7f), x0 = -v;
    F t;
    const F r = ln2_reduce(sel(x0 < lo, lo, x0), t);
    F q = splat(8.312860164819032e-3f);
    q = q * r + 4.1889020097869545e-2f;
    q = q * r + 1.6667110631549767e-1f;
    q = q * r + 4.9999243234694857e-1f;
    const F e = times_pow2((r * r) * q + r + 1.0f, t);
    return v / (1.0f + sel(x0 > hi, splat(__builtin_inff()), e));
  }
  static PYCNN_UNARY_INLINE F clamp01(F v) {
    const F z = splat(0.0f), o = splat(1.0f);
    v = sel(v < z, z, v);
    return sel(v > o, o, v);
  }
  static PYCNN_UNARY_INLINE F erf(F x) {
    const F z = splat(0.0f);
    const F a = sel(x < z, -x, x);
    const F t = 1.0f / (1.0f + 0.3275911f * a);
    F p = splat(1.061405429f);
    p = p * t - 1.453152027f;
    p = p * t + 1.421413741f;
    p = p * t - 0.284496736f;
    p = p * t + 0.254829592f;
    const F y = 1.0f - p * t * exp(-a * a);
    const F x2 = x * x;
    const F series = x * (1.1283791671f + x2 * (-0.3761263890f + x2 * 0.1128379167f));
    return sel(a < splat(0.1f), series, sel(x < z, -y, y));
  }

  // fn(v) as run() computes it (NaN kept); a, b as there.
  static PYCNN_UNARY_INLINE F apply(int fn, F v, float a, float b) {
    F r;
    switch (static_cast<UnaryFn>(fn)) {
      case UnaryFn::clip:
        r = sel(v < splat(a), splat(a), sel(v > splat(b), splat(b), v));
        break;
      case UnaryFn::sigmoid:
        r = sigmoid(v);
        break;
      case UnaryFn::hardsigmoid:
        r = clamp01(a * v + b);
        break;
      case UnaryFn::hardswish:
        r = v * clamp01(v * (1.0f / 6.0f) + 0.5f);
        break;
      case UnaryFn::silu:
        r = silu(v);
        break;
      case UnaryFn::erf:
        r = erf(v);
        break;
      case UnaryFn::gelu:
        r = 0.5f * v * (1.0f + erf(v * 0.70710678f));
        break;
      default:
        r = v;
    }
    return sel(v != v, v, r);
  }
};

// The same on one register of V.
template <class V>
PYCNN_UNARY_INLINE typename V::reg post_reg(const Activation& act, typename V::reg v) {
  using U = UnaryVec<V::W>;
  typename U::F f;
  static_assert(sizeof(f) == sizeof(v), "a register of V::W floats");
  std::memcpy(&f, &v, sizeof(f));
  f = U::apply(act.fn, f, act.a, act.b);
  std::memcpy(&v, &f, sizeof(f));
  return v;
}

}  // namespace
}  // namespace unary_detail
}  // namespace pycnn
