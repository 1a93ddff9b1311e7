// content_hash's chunk step for the generic build (content_hash.inl).
#include "content_hash.inl"

namespace pycnn {

uint64_t content_hash_chunk__generic(const unsigned char* p, size_t n, uint64_t index) {
  return content_hash_detail::chunk_hash(p, n, index);
}

}  // namespace pycnn
