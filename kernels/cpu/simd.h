// Thin SIMD vector types, one per ISA, so each kernel is written once as a template and compiled
// once per ISA in its own translation unit (*__avx2.cpp with -mavx2 -mfma, *__avx512.cpp with
// -mavx512f, *__generic.cpp with baseline flags). W is the number of float lanes.
//
// max0(v) is ReLU written as max(0, v): VMAXPS returns its second operand when either is NaN, so
// a NaN in v survives, as IEEE (and torch.relu) say it should.
#pragma once
#include <cstdint>
#include <cstring>
#if defined(__AVX2__) || defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace pycnn {
namespace simd {

// First stage of the in-register transposes: within every 128-bit lane, the 4x4 block of rows
// r[4g..4g+3] transposed into s[4g..4g+3] (s[4g + m] holds column m of those rows).
template <class V>
static inline void transpose4_in_lanes(const typename V::reg* r, typename V::reg* s, int groups) {
  for (int g = 0; g < groups; ++g) {
    const typename V::reg t0 = V::unpacklo(r[4 * g], r[4 * g + 1]), t1 = V::unpackhi(r[4 * g], r[4 * g + 1]);
    const typename V::reg t2 = V::unpacklo(r[4 * g + 2], r[4 * g + 3]), t3 = V::unpackhi(r[4 * g + 2], r[4 * g + 3]);
    s[4 * g] = V::pick01(t0, t2);
    s[4 * g + 1] = V::pick23(t0, t2);
    s[4 * g + 2] = V::pick01(t1, t3);
    s[4 * g + 3] = V::pick23(t1, t3);
  }
}

// Rotation within groups of G lanes (G = 1, 2, 4, 8; at most W): lane l takes lane
// l / G * G + (l % G + J) % G. The grouped conv (conv2d_depthwise_c16.inl) multiplies rotation J of
// an input pixel's channels by the weights of input channel (k + J) mod G of each output lane k.
constexpr int rot_lane(int G, int J, int l) { return l / G * G + (l % G + J) % G; }
// The same within one 128-bit lane as a VPERMILPS / SHUFPS immediate (G <= 4).
constexpr int rot_imm(int G, int J) {
  return rot_lane(G, J, 0) | rot_lane(G, J, 1) << 2 | rot_lane(G, J, 2) << 4 | rot_lane(G, J, 3) << 6;
}

#if defined(__AVX512F__)
struct avx512 {
  static constexpr int W = 16;
  static constexpr bool kRegisters = true;  // reg is a machine register (see the generic one)
  using reg = __m512;
  static inline reg zero() { return _mm512_setzero_ps(); }
  static inline reg set1(float a) { return _mm512_set1_ps(a); }
  static inline reg loadu(const float* p) { return _mm512_loadu_ps(p); }
  // Makes r opaque to the compiler, so a loaded vector stays in its register: GCC folds a load
  // back into each instruction that uses the value as a memory operand (one load per use), which
  // undid the input reuse of the depthwise kernel (conv2d_depthwise_c16.inl pixels_reuse: 72
  // loads per 8 pixels instead of 30, bound by the load ports).
  static inline void keep(reg& r) { asm("" : "+v"(r)); }
  static inline void storeu(float* p, reg v) { _mm512_storeu_ps(p, v); }
  static inline reg fmadd(reg a, reg b, reg c) { return _mm512_fmadd_ps(a, b, c); }
  static inline reg add(reg a, reg b) { return _mm512_add_ps(a, b); }
  static inline reg sub(reg a, reg b) { return _mm512_sub_ps(a, b); }
  static inline reg mul(reg a, reg b) { return _mm512_mul_ps(a, b); }
  static inline reg max0(reg v) { return _mm512_max_ps(zero(), v); }
  // min(max(v, lo), hi): VMAXPS / VMINPS return their second operand on NaN, so v's NaN survives.
  static inline reg clamp(reg v, reg lo, reg hi) { return _mm512_min_ps(hi, _mm512_max_ps(lo, v)); }
  static inline reg div(reg a, reg b) { return _mm512_div_ps(a, b); }
  // Per 128-bit lane: interleave low/high halves; (a0 a1 b0 b1) and (a2 a3 b2 b3) picks.
  static inline reg unpacklo(reg a, reg b) { return _mm512_unpacklo_ps(a, b); }
  static inline reg unpackhi(reg a, reg b) { return _mm512_unpackhi_ps(a, b); }
  static inline reg pick01(reg a, reg b) { return _mm512_shuffle_ps(a, b, 0x44); }
  static inline reg pick23(reg a, reg b) { return _mm512_shuffle_ps(a, b, 0xEE); }
  // max(m, v) where a NaN in either wins (as torch.max_pool2d): VMAXPS returns its second
  // operand on NaN, which keeps m's NaN; v's NaN is blended in.
  static inline reg nanmax(reg m, reg v) {
    return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q), _mm512_max_ps(v, m), v);
  }
  static inline __mmask16 mask(int n) { return (__mmask16)((1u << n) - 1u); }
  static inline reg loadu_n(const float* p, int n) { return _mm512_maskz_loadu_ps(mask(n), p); }
  // Lanes [lo, hi) from p + lane, the others `fill`; lanes outside are never read (no fault).
  static inline reg loadu_range(const float* p, int lo, int hi, float fill) {
    return _mm512_mask_loadu_ps(set1(fill), (__mmask16)(mask(hi) & ~mask(lo)), p);
  }
  // p[0], p[2], ..., p[2W - 2] (reads p[0, 2W)): stride-2 columns without a gather.
  static inline reg even2(const float* p) { return even2_of(loadu(p), loadu(p + 16)); }
  // The even lanes of the 2W floats a then b.
  static inline reg even2_of(reg a, reg b) {
    const __m512i idx = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    return _mm512_permutex2var_ps(a, idx, b);
  }
  // The odd lanes of the 2W floats a then b.
  static inline reg odd2_of(reg a, reg b) {
    const __m512i idx = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    return _mm512_permutex2var_ps(a, idx, b);
  }
  // a shifted down J lanes with c's first J lanes last: (aJ .. a15 c0 .. cJ-1).
  template <int J>
  static inline reg shift_in(reg a, reg c) {
    return _mm512_castsi512_ps(_mm512_alignr_epi32(_mm512_castps_si512(c), _mm512_castps_si512(a), J));
  }
  static inline void storeu_n(float* p, reg v, int n) { _mm512_mask_storeu_ps(p, mask(n), v); }
  // Rotation J (0 < J < G) within groups of G lanes: call simd::rotate_in_groups.
  template <int G, int J>
  static inline reg rotate_lanes(reg v) {
    if constexpr (G <= 4) {
      return _mm512_permute_ps(v, rot_imm(G, J));
    } else {
      const __m512i idx =
          _mm512_setr_epi32(rot_lane(G, J, 0), rot_lane(G, J, 1), rot_lane(G, J, 2), rot_lane(G, J, 3),
                            rot_lane(G, J, 4), rot_lane(G, J, 5), rot_lane(G, J, 6), rot_lane(G, J, 7),
                            rot_lane(G, J, 8), rot_lane(G, J, 9), rot_lane(G, J, 10), rot_lane(G, J, 11),
                            rot_lane(G, J, 12), rot_lane(G, J, 13), rot_lane(G, J, 14), rot_lane(G, J, 15));
      return _mm512_permutexvar_ps(idx, v);
    }
  }
  // p[0], p[stride], ..., p[(n-1)*stride] into the first n lanes (the rest zero).
  static inline reg gather_n(const float* p, int64_t stride, int n) {
    const __m512i idx = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                           _mm512_set1_epi32((int)stride));
    return _mm512_mask_i32gather_ps(zero(), mask(n), idx, p, 4);
  }
  // Lane l = base[idx[l]] where bit l of m is set, else 0; idx is W int32 offsets.
  static inline reg gather_masked(const float* base, const int32_t* idx, uint32_t m) {
    return _mm512_mask_i32gather_ps(zero(), (__mmask16)m, _mm512_loadu_si512(idx), base, 4);
  }
  // base[idx[l]] = lane l where bit l of m is set.
  static inline void scatter_masked(float* base, const int32_t* idx, reg v, uint32_t m) {
    _mm512_mask_i32scatter_ps(base, (__mmask16)m, _mm512_loadu_si512(idx), v, 4);
  }
  // In-register W x W transpose: afterwards lane j of r[i] is what lane i of r[j] was.
  // Within each 128-bit lane, 4x4 blocks by unpack + shuffle (s[4g + m] holds column m of rows
  // 4g..4g+3 in every 128-bit chunk), then 128-bit chunks regrouped in two shuffle_f32x4 rounds.
  static inline void transpose(reg r[16]) {
    reg s[16];
    transpose4_in_lanes<avx512>(r, s, 4);
    for (int m = 0; m < 4; ++m) {
      const reg p0 = _mm512_shuffle_f32x4(s[m], s[4 + m], 0x88), p1 = _mm512_shuffle_f32x4(s[m], s[4 + m], 0xDD);
      const reg q0 = _mm512_shuffle_f32x4(s[8 + m], s[12 + m], 0x88),
                q1 = _mm512_shuffle_f32x4(s[8 + m], s[12 + m], 0xDD);
      r[m] = _mm512_shuffle_f32x4(p0, q0, 0x88);
      r[4 + m] = _mm512_shuffle_f32x4(p1, q1, 0x88);
      r[8 + m] = _mm512_shuffle_f32x4(p0, q0, 0xDD);
      r[12 + m] = _mm512_shuffle_f32x4(p1, q1, 0xDD);
    }
  }
};
#endif

#if defined(__AVX2__) && defined(__FMA__)
struct avx2 {
  static constexpr int W = 8;
  static constexpr bool kRegisters = true;
  using reg = __m256;
  static inline reg zero() { return _mm256_setzero_ps(); }
  static inline reg set1(float a) { return _mm256_set1_ps(a); }
  static inline reg loadu(const float* p) { return _mm256_loadu_ps(p); }
  static inline void keep(reg& r) { asm("" : "+v"(r)); }  // see avx512::keep
  static inline void storeu(float* p, reg v) { _mm256_storeu_ps(p, v); }
  static inline reg fmadd(reg a, reg b, reg c) { return _mm256_fmadd_ps(a, b, c); }
  static inline reg add(reg a, reg b) { return _mm256_add_ps(a, b); }
  static inline reg sub(reg a, reg b) { return _mm256_sub_ps(a, b); }
  static inline reg mul(reg a, reg b) { return _mm256_mul_ps(a, b); }
  static inline reg max0(reg v) { return _mm256_max_ps(zero(), v); }
  static inline reg clamp(reg v, reg lo, reg hi) { return _mm256_min_ps(hi, _mm256_max_ps(lo, v)); }
  static inline reg div(reg a, reg b) { return _mm256_div_ps(a, b); }
  static inline reg unpacklo(reg a, reg b) { return _mm256_unpacklo_ps(a, b); }
  static inline reg unpackhi(reg a, reg b) { return _mm256_unpackhi_ps(a, b); }
  static inline reg pick01(reg a, reg b) { return _mm256_shuffle_ps(a, b, 0x44); }
  static inline reg pick23(reg a, reg b) { return _mm256_shuffle_ps(a, b, 0xEE); }
  static inline reg nanmax(reg m, reg v) {
    return _mm256_blendv_ps(_mm256_max_ps(v, m), v, _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
  }
  static inline __m256i mask(int n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  }
  static inline reg loadu_n(const float* p, int n) { return _mm256_maskload_ps(p, mask(n)); }
  static inline reg loadu_range(const float* p, int lo, int hi, float fill) {
    const __m256i m = _mm256_andnot_si256(mask(lo), mask(hi));
    return _mm256_blendv_ps(set1(fill), _mm256_maskload_ps(p, m), _mm256_castsi256_ps(m));
  }
  static inline reg even2(const float* p) {  // (a0 a2 b0 b2 | a4 a6 b4 b6) -> a0 a2 a4 a6 b0 b2 b4 b6
    return even2_of(loadu(p), loadu(p + 8));
  }
  static inline reg even2_of(reg a, reg b) {
    const reg e = _mm256_shuffle_ps(a, b, 0x88);
    return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(e), 0xD8));
  }
  static inline reg odd2_of(reg a, reg b) {
    const reg o = _mm256_shuffle_ps(a, b, 0xDD);
    return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(o), 0xD8));
  }
  template <int J>
  static inline reg shift_in(reg a, reg c) {  // (aJ .. a7 c0 .. cJ-1): both rotated, top J lanes from c
    const __m256i idx = _mm256_setr_epi32(J % 8, (1 + J) % 8, (2 + J) % 8, (3 + J) % 8, (4 + J) % 8, (5 + J) % 8,
                                          (6 + J) % 8, (7 + J) % 8);
    return _mm256_blend_ps(_mm256_permutevar8x32_ps(a, idx), _mm256_permutevar8x32_ps(c, idx),
                           (0xFF << (8 - J)) & 0xFF);
  }
  static inline void storeu_n(float* p, reg v, int n) { _mm256_maskstore_ps(p, mask(n), v); }
  // Rotation J (0 < J < G) within groups of G lanes: call simd::rotate_in_groups.
  template <int G, int J>
  static inline reg rotate_lanes(reg v) {
    if constexpr (G <= 4) {
      return _mm256_permute_ps(v, rot_imm(G, J));
    } else {
      const __m256i idx = _mm256_setr_epi32(rot_lane(G, J, 0), rot_lane(G, J, 1), rot_lane(G, J, 2), rot_lane(G, J, 3),
                                            rot_lane(G, J, 4), rot_lane(G, J, 5), rot_lane(G, J, 6), rot_lane(G, J, 7));
      return _mm256_permutevar8x32_ps(v, idx);
    }
  }
  static inline reg gather_n(const float* p, int64_t stride, int n) {
    const __m256i idx = _mm256_mullo_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), _mm256_set1_epi32((int)stride));
    return _mm256_mask_i32gather_ps(zero(), p, idx, _mm256_castsi256_ps(mask(n)), 4);
  }
  static inline reg gather_masked(const float* base, const int32_t* idx, uint32_t m) {
    const __m256i bits = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
    const __m256i mv = _mm256_cmpeq_epi32(_mm256_and_si256(_mm256_set1_epi32((int)m), bits), bits);
    return _mm256_mask_i32gather_ps(zero(), base, _mm256_loadu_si256((const __m256i*)idx), _mm256_castsi256_ps(mv), 4);
  }
  static inline void scatter_masked(float* base, const int32_t* idx, reg v, uint32_t m) {  // no AVX2 scatter
    alignas(32) float t[8];
    _mm256_store_ps(t, v);
    for (int l = 0; l < 8; ++l)
      if (m >> l & 1u) base[idx[l]] = t[l];
  }
  // In-register 8 x 8 transpose (see avx512::transpose): 4x4 blocks per 128-bit half, then halves.
  static inline void transpose(reg r[8]) {
    reg s[8];
    transpose4_in_lanes<avx2>(r, s, 2);
    for (int m = 0; m < 4; ++m) {
      r[m] = _mm256_permute2f128_ps(s[m], s[4 + m], 0x20);
      r[4 + m] = _mm256_permute2f128_ps(s[m], s[4 + m], 0x31);
    }
  }
};
#endif

// Portable 8-lane vector: plain loops that the compiler vectorizes with the baseline ISA (SSE2).
struct generic {
  static constexpr int W = 8;
  // reg is an array in memory: kernels whose point is keeping values in registers skip it
  static constexpr bool kRegisters = false;
  struct reg {
    float v[8];
  };
  static inline reg zero() { return reg{{0, 0, 0, 0, 0, 0, 0, 0}}; }
  static inline reg set1(float a) { return reg{{a, a, a, a, a, a, a, a}}; }
  static inline reg loadu(const float* p) {
    reg r;
    std::memcpy(r.v, p, sizeof r.v);
    return r;
  }
  static inline void keep(reg&) {}  // see avx512::keep (memory-backed here)
  static inline void storeu(float* p, reg a) { std::memcpy(p, a.v, sizeof a.v); }
  static inline reg fmadd(reg a, reg b, reg c) {
    for (int i = 0; i < 8; ++i) c.v[i] += a.v[i] * b.v[i];
    return c;
  }
  static inline reg add(reg a, reg b) {
    for (int i = 0; i < 8; ++i) a.v[i] += b.v[i];
    return a;
  }
  static inline reg sub(reg a, reg b) {
    for (int i = 0; i < 8; ++i) a.v[i] -= b.v[i];
    return a;
  }
  static inline reg mul(reg a, reg b) {
    for (int i = 0; i < 8; ++i) a.v[i] *= b.v[i];
    return a;
  }
  static inline reg max0(reg a) {
    for (int i = 0; i < 8; ++i) a.v[i] = a.v[i] < 0.0f ? 0.0f : a.v[i];
    return a;
  }
  static inline reg clamp(reg a, reg lo, reg hi) {
    for (int i = 0; i < 8; ++i) {
      const float r = a.v[i] < lo.v[i] ? lo.v[i] : a.v[i];
      a.v[i] = r > hi.v[i] ? hi.v[i] : r;  // NaN stays NaN
    }
    return a;
  }
  static inline reg div(reg a, reg b) {
    for (int i = 0; i < 8; ++i) a.v[i] /= b.v[i];
    return a;
  }
  static inline reg nanmax(reg m, reg v) {
    for (int i = 0; i < 8; ++i) m.v[i] = (v.v[i] > m.v[i] || v.v[i] != v.v[i]) ? v.v[i] : m.v[i];
    return m;
  }
  static inline reg even2(const float* p) {
    reg r;
    for (int i = 0; i < 8; ++i) r.v[i] = p[2 * i];
    return r;
  }
  static inline reg even2_of(reg a, reg b) {
    reg r;
    for (int i = 0; i < 4; ++i) r.v[i] = a.v[2 * i], r.v[i + 4] = b.v[2 * i];
    return r;
  }
  static inline reg odd2_of(reg a, reg b) {
    reg r;
    for (int i = 0; i < 4; ++i) r.v[i] = a.v[2 * i + 1], r.v[i + 4] = b.v[2 * i + 1];
    return r;
  }
  template <int J>
  static inline reg shift_in(reg a, reg c) {
    reg r;
    for (int i = 0; i < 8; ++i) r.v[i] = i + J < 8 ? a.v[i + J] : c.v[i + J - 8];
    return r;
  }
  static inline reg loadu_range(const float* p, int lo, int hi, float fill) {
    reg r = set1(fill);
    for (int i = lo; i < hi; ++i) r.v[i] = p[i];
    return r;
  }
  static inline reg loadu_n(const float* p, int n) {
    reg r = zero();
    for (int i = 0; i < n; ++i) r.v[i] = p[i];
    return r;
  }
  static inline void storeu_n(float* p, reg a, int n) {
    for (int i = 0; i < n; ++i) p[i] = a.v[i];
  }
  // Rotation J (0 < J < G) within groups of G lanes: call simd::rotate_in_groups.
  template <int G, int J>
  static inline reg rotate_lanes(reg a) {
    reg r;
    for (int l = 0; l < 8; ++l) r.v[l] = a.v[rot_lane(G, J, l)];
    return r;
  }
  static inline reg gather_n(const float* p, int64_t stride, int n) {
    reg r = zero();
    for (int i = 0; i < n; ++i) r.v[i] = p[i * stride];
    return r;
  }
  static inline reg gather_masked(const float* base, const int32_t* idx, uint32_t m) {
    reg r = zero();
    for (int l = 0; l < 8; ++l)
      if (m >> l & 1u) r.v[l] = base[idx[l]];
    return r;
  }
  static inline void scatter_masked(float* base, const int32_t* idx, reg v, uint32_t m) {
    for (int l = 0; l < 8; ++l)
      if (m >> l & 1u) base[idx[l]] = v.v[l];
  }
  static inline void transpose(reg r[8]) {
    for (int i = 0; i < 8; ++i)
      for (int j = i + 1; j < 8; ++j) {
        const float t = r[i].v[j];
        r[i].v[j] = r[j].v[i];
        r[j].v[i] = t;
      }
  }
};

// Rotation J within groups of G lanes (rot_lane) of any vector type: none when J % G == 0,
// else V's shuffle for it.
template <class V, int G, int J>
static inline typename V::reg rotate_in_groups(typename V::reg v) {
  static_assert((G == 1 || G == 2 || G == 4 || G == 8) && G <= V::W, "groups of 1, 2, 4 or 8 lanes within a vector");
  if constexpr (J % G == 0)
    return v;
  else
    return V::template rotate_lanes<G, J % G>(v);
}

}  // namespace simd

// Strided row copies shared by the packers and transforms.
template <class V>
static inline void copy_floats(float* o, const float* s, int64_t n) {
  int64_t t = 0;
  for (; t + V::W <= n; t += V::W) V::storeu(o + t, V::loadu(s + t));
  if (t < n) V::storeu_n(o + t, V::loadu_n(s + t, (int)(n - t)), (int)(n - t));
}

// o[t] = s[t * stride] for t < n, vector gathers (stride 1 is a plain copy).
template <class V>
static inline void gather_floats(float* o, const float* s, int64_t stride, int64_t n) {
  if (stride == 1) return copy_floats<V>(o, s, n);
  for (int64_t t = 0; t < n; t += V::W) {
    const int m = (int)(n - t < V::W ? n - t : V::W);
    V::storeu_n(o + t, V::gather_n(s + t * stride, stride, m), m);
  }
}

// The t in [0, n) with 0 <= base + t*step < limit (step >= 1), as [lo, hi).
static inline void valid_range(int64_t base, int64_t step, int64_t limit, int64_t n, int64_t& lo, int64_t& hi) {
  lo = base >= 0 ? 0 : (-base + step - 1) / step;
  hi = base >= limit ? 0 : (limit - base + step - 1) / step;
  lo = lo < n ? lo : n;
  hi = hi < lo ? lo : (hi > n ? n : hi);
}

}  // namespace pycnn
