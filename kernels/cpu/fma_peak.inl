// The FP32 FMA peak of one core for this translation unit's ISA: 12 independent accumulator
// vectors (more than FMA latency x FMA ports on the CPUs pycnn targets: 4 x 2 on Zen 3/4 and
// Skylake-X), each updated acc = acc * a + b, so the loop is bound by FMA throughput alone.
// What the bench reports SGEMM and conv rates against (bench/__main__.py: isa_peak_gflops).
#pragma once
#include <cstdint>
#if defined(__AVX2__)
#include <immintrin.h>
#endif

namespace pycnn {
namespace fma_peak_detail {

// FLOPs done (2 per lane per FMA); `sink` keeps the result alive.
static inline double run(int64_t iters, float* sink) {
#if defined(__AVX512F__)
  __m512 acc[12];
  const __m512 a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-7f);
  for (int i = 0; i < 12; ++i) acc[i] = _mm512_set1_ps((float)i);
  for (int64_t it = 0; it < iters; ++it)
#pragma GCC unroll 12
    for (int i = 0; i < 12; ++i) acc[i] = _mm512_fmadd_ps(acc[i], a, b);
  __m512 s = acc[0];
  for (int i = 1; i < 12; ++i) s = _mm512_add_ps(s, acc[i]);
  *sink = _mm512_reduce_add_ps(s);
  return 2.0 * 16 * 12 * (double)iters;
#elif defined(__AVX2__)
  __m256 acc[12];
  const __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-7f);
  for (int i = 0; i < 12; ++i) acc[i] = _mm256_set1_ps((float)i);
  for (int64_t it = 0; it < iters; ++it)
#pragma GCC unroll 12
    for (int i = 0; i < 12; ++i) acc[i] = _mm256_fmadd_ps(acc[i], a, b);
  __m256 s = acc[0];
  for (int i = 1; i < 12; ++i) s = _mm256_add_ps(s, acc[i]);
  float t[8];
  _mm256_storeu_ps(t, s);
  *sink = t[0] + t[1] + t[2] + t[3] + t[4] + t[5] + t[6] + t[7];
  return 2.0 * 8 * 12 * (double)iters;
#else
  // The baseline x86-64 build has no FMA: a multiply and an add per element, 4 lanes (SSE2).
  typedef float v4 __attribute__((vector_size(16)));
  v4 acc[12];
  const v4 a = {0.999999f, 0.999999f, 0.999999f, 0.999999f}, b = {1e-7f, 1e-7f, 1e-7f, 1e-7f};
  for (int i = 0; i < 12; ++i) acc[i] = v4{(float)i, (float)i, (float)i, (float)i};
  for (int64_t it = 0; it < iters; ++it)
    for (int i = 0; i < 12; ++i) acc[i] = acc[i] * a + b;
  v4 s = acc[0];
  for (int i = 1; i < 12; ++i) s += acc[i];
  *sink = s[0] + s[1] + s[2] + s[3];
  return 2.0 * 4 * 12 * (double)iters;
#endif
}

}  // namespace fma_peak_detail
}  // namespace pycnn
