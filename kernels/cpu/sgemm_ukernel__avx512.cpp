// SGEMM micro-kernels for the avx512 build: 12 x 2 vectors (full panel) and 12 x 1 vector
// (panels of at most half the width, e.g. the last columns of a 7x7 or 13x13 feature map).
#include "sgemm_ukernel.inl"

namespace pycnn {

void sgemm_ukernel_avx512_full(int64_t kc, const float* A, const float* B, float* C, int64_t ldc,
                               int mr, int nr, bool accumulate, bool last, const Epilogue& ep) {
  sgemm_ukernel_impl<simd::avx512, 12, 2, 2>(kc, A, B, C, ldc, mr, nr, accumulate, last, ep);
}

void sgemm_ukernel_avx512_half(int64_t kc, const float* A, const float* B, float* C, int64_t ldc,
                               int mr, int nr, bool accumulate, bool last, const Epilogue& ep) {
  sgemm_ukernel_impl<simd::avx512, 12, 1, 2>(kc, A, B, C, ldc, mr, nr, accumulate, last, ep);
}

}  // namespace pycnn
