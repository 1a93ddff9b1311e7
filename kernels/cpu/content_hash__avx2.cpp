// content_hash's chunk step for the avx2 build (content_hash.inl).
#include "content_hash.inl"

namespace pycnn {

uint64_t content_hash_chunk__avx2(const unsigned char* p, size_t n, uint64_t index) {
  return content_hash_detail::chunk_hash(p, n, index);
}

}  // namespace pycnn
