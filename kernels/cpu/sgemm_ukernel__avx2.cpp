// SGEMM micro-kernels for the avx2 build: 6 x 2 vectors (full panel) and 6 x 1 vector
// (panels of at most half the width, e.g. the last columns of a 7x7 or 13x13 feature map).
#include "sgemm_ukernel.inl"

namespace pycnn {

void sgemm_ukernel_avx2_full(int64_t kc, const float* A, const float* B, int64_t ldb, float* C, int64_t ldc,
                               int mr, int nr, bool accumulate, bool last, const Epilogue& ep) {
  sgemm_ukernel_impl<simd::avx2, 6, 2>(kc, A, B, ldb, C, ldc, mr, nr, accumulate, last, ep);
}

void sgemm_ukernel_avx2_half(int64_t kc, const float* A, const float* B, int64_t ldb, float* C, int64_t ldc,
                               int mr, int nr, bool accumulate, bool last, const Epilogue& ep) {
  sgemm_ukernel_impl<simd::avx2, 6, 1>(kc, A, B, ldb, C, ldc, mr, nr, accumulate, last, ep);
}

}  // namespace pycnn
