// The SGEMM's packers for the avx2 build (sgemm_pack.inl).
#include "sgemm_pack.inl"

namespace pycnn {

void pack_transposed__avx2(const float* src, int64_t ld, int rows, int P, int64_t kc, float* dst) {
  pack_transposed_impl<simd::avx2>(src, ld, rows, P, kc, dst);
}

void pack_rows__avx2(const float* src, int64_t ld, int64_t k0, int64_t kc, int64_t j0, int64_t nc, int NR, float* dst) {
  pack_rows_impl<simd::avx2>(src, ld, k0, kc, j0, nc, NR, dst);
}

}  // namespace pycnn
