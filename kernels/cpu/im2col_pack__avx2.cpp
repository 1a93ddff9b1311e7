// Implicit-im2col packing for the avx2 build (see im2col_pack.inl).
#include "im2col_pack.inl"

namespace pycnn {

void im2col_pack__avx2(const ConvParams& p, const float* x, int64_t k0, int64_t kc, int64_t j0, int64_t nc, int NR,
                       float* dst) {
  im2col_pack_impl<simd::avx2>(p, x, k0, kc, j0, nc, NR, dst);
}

void whole_rows_pack__avx2(const float* x, int64_t HW, int64_t RS, int64_t jstride, int64_t k0, int64_t kc, int64_t j0,
                           int64_t nc, int NR, float* dst) {
  pack_whole_rows_impl<simd::avx2>(x, HW, RS, jstride, k0, kc, j0, nc, NR, dst);
}

}  // namespace pycnn
