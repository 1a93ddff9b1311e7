// The element-wise activations for the avx2 build (eltwise_unary.inl).
#include "eltwise_unary.inl"

namespace pycnn {

void unary_chunk__avx2(int fn, int64_t n, const float* x, float* y, float a, float b) {
  unary_detail::run(fn, n, x, y, a, b);
}

}  // namespace pycnn
