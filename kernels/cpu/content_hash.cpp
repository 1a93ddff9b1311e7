// A 64-bit hash of a buffer's bytes, near memory bandwidth: how pycnn.conv2d notices that a
// weight array whose transformed copy it kept was written in place (pycnn/_weight_cache.py).
// Chunks of 1 MiB are hashed by the threads with the ISA's content_hash_chunk (content_hash.inl)
// and combined in order with the length, then xxHash64's avalanche. Not cryptographic: a change
// to the bytes leaves it unchanged with probability ~2^-64 (uniform changes, such as filling an
// array with another value, included: per-lane keys and each chunk's position enter every lane).
#include <algorithm>
#include <cstdint>
#include <vector>

#include "content_hash.inl"
#include "cpu_kernels.h"
#include "ops_cpu.h"
#include "pycnn/parallel.h"

namespace pycnn {

namespace {
constexpr size_t kChunk = size_t(1) << 20;
}  // namespace

uint64_t content_hash(const void* data, size_t nbytes) {
  using namespace content_hash_detail;
  const unsigned char* p = static_cast<const unsigned char*>(data);
  const int64_t chunks = (int64_t)((nbytes + kChunk - 1) / kChunk);
  std::vector<uint64_t> part((size_t)std::max<int64_t>(chunks, 1), 0);
  const ContentHashChunkFn chunk = active_kernels().content_hash_chunk;
  // Memory-bound: a chunk of 1 MiB is worth a thread.
  const int nt = threads_for(double(nbytes), chunks);
  parallel_run(nt, [&] {
#pragma omp for schedule(static)
    for (int64_t c = 0; c < chunks; ++c) {
      const size_t off = (size_t)c * kChunk;
      part[(size_t)c] = chunk(p + off, std::min(kChunk, nbytes - off), (uint64_t)c);
    }
  });
  uint64_t h = (uint64_t)nbytes * kP1;
  for (uint64_t v : part) h = rotl(h ^ v, 31) * kP2 + kP3;
  return avalanche(h);
}

}  // namespace pycnn
