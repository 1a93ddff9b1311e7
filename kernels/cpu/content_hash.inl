// The per-chunk step of content_hash (content_hash.cpp), compiled per ISA by
// content_hash__<isa>.cpp so the 8-lane accumulate loop is vectorized with that ISA's 32x32->64
// multiplies (XXH3's accumulate: acc[l] += lo32(d ^ k) * hi32(d ^ k), acc[l ^ 1] += d).
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>
#if defined(__AVX2__)
#include <immintrin.h>
#endif

namespace pycnn {
namespace content_hash_detail {

constexpr uint64_t kP1 = 0x9E3779B185EBCA87ull, kP2 = 0xC2B2AE3D27D4EB4Full, kP3 = 0x165667B19E3779F9ull;
constexpr uint64_t kKeys[8] = {0xbe4ba423396cfeb8ull, 0x1cad21f72c81017cull, 0xdb979083e96dd4deull,
                               0x1f67b3b7a4a44072ull, 0x78e5c0cc4ee679cbull, 0x2172ffcc7dd05a82ull,
                               0x8e2443f7744608b8ull, 0x4c263a81e69035e0ull};

static inline uint64_t rotl(uint64_t v, int r) { return (v << r) | (v >> (64 - r)); }

static inline uint64_t avalanche(uint64_t h) {
  h ^= h >> 33;
  h *= kP2;
  h ^= h >> 29;
  h *= kP3;
  h ^= h >> 32;
  return h;
}

// The hash of one chunk (its index mixed in, so equal chunks at different places differ).
static inline uint64_t chunk_hash(const unsigned char* p, size_t n, uint64_t index) {
  uint64_t acc[8];
  for (int l = 0; l < 8; ++l) acc[l] = kKeys[l] ^ (index * kP1 + (uint64_t)l);
  size_t i = 0;
#if defined(__AVX2__) && !defined(__AVX512F__)
  // GCC's own vectorization of the loop below is slower than scalar code on AVX2 (it gathers the
  // swapped lanes); the same arithmetic written with 4-lane vectors: acc += lo*hi + swap(d).
  __m256i a0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(acc)),
          a1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(acc + 4));
  const __m256i k0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(kKeys)),
                k1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(kKeys + 4));
  for (; i + 64 <= n; i += 64) {
    const __m256i d0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i)),
                  d1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i + 32));
    const __m256i x0 = _mm256_xor_si256(d0, k0), x1 = _mm256_xor_si256(d1, k1);
    a0 = _mm256_add_epi64(a0, _mm256_mul_epu32(x0, _mm256_srli_epi64(x0, 32)));
    a1 = _mm256_add_epi64(a1, _mm256_mul_epu32(x1, _mm256_srli_epi64(x1, 32)));
    a0 = _mm256_add_epi64(a0, _mm256_shuffle_epi32(d0, 0x4E));  // lanes 0<->1, 2<->3
    a1 = _mm256_add_epi64(a1, _mm256_shuffle_epi32(d1, 0x4E));
  }
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(acc), a0);
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(acc + 4), a1);
#else
  for (; i + 64 <= n; i += 64) {
    uint64_t d[8];
    std::memcpy(d, p + i, 64);
    for (int l = 0; l < 8; ++l) {
      const uint64_t dk = d[l] ^ kKeys[l];
      acc[l ^ 1] += d[l];
      acc[l] += (dk & 0xffffffffull) * (dk >> 32);
    }
  }
#endif
  uint64_t h = index * kP3;
  for (int l = 0; l < 8; ++l) h = rotl(h ^ avalanche(acc[l] + (uint64_t)l * kP2), 27) * kP1;
  for (; i + 8 <= n; i += 8) {
    uint64_t w;
    std::memcpy(&w, p + i, 8);
    h = rotl(h ^ avalanche(w ^ kP2), 27) * kP1 + kP3;
  }
  for (; i < n; ++i) h = rotl(h ^ (p[i] * kP3), 11) * kP1;
  return h;
}

}  // namespace content_hash_detail
}  // namespace pycnn
