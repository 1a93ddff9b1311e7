// SGEMM micro-kernels for the avx512 build: 12 x 2 zmm and 8 x 3 zmm (the row count is chosen
// per matrix so that M = 64, 16 or 8 wastes no rows), each with narrower variants (1 or 2 zmm)
// for a panel's last columns, and for 8-row panels' last 1-4 columns ymm vectors down the rows
// (sgemm_cols_impl: four k chains for one or two columns, two for three or four).
#include "sgemm_ukernel.inl"

namespace pycnn {

// name: the exported SgemmUkernel; the rest: the template instance it runs.
#define PYCNN_UK(name, ...)                                                                        \
  void name(int64_t kc, const float* A, const float* B, int64_t ldb, float* C, int64_t ldc, int mr, \
            int nr, bool accumulate, bool last, const Epilogue& ep) {                             \
    __VA_ARGS__(kc, A, B, ldb, C, ldc, mr, nr, accumulate, last, ep);                             \
  }
PYCNN_UK(sgemm_ukernel_avx512_full, sgemm_ukernel_impl<simd::avx512, 12, 2>)
PYCNN_UK(sgemm_ukernel_avx512_half, sgemm_ukernel_impl<simd::avx512, 12, 1>)
PYCNN_UK(sgemm_ukernel_avx512_mr8_full, sgemm_ukernel_impl<simd::avx512, 8, 2>)
PYCNN_UK(sgemm_ukernel_avx512_mr8_half, sgemm_ukernel_impl<simd::avx512, 8, 1>)
PYCNN_UK(sgemm_ukernel_avx512_mr8_x3, sgemm_ukernel_impl<simd::avx512, 8, 3>)
PYCNN_UK(sgemm_ukernel_avx512_mr8r4_full, sgemm_ukernel_impl<simd::avx512, 8, 2, 4>)
PYCNN_UK(sgemm_ukernel_avx512_mr8r4_half, sgemm_ukernel_impl<simd::avx512, 8, 1, 4>)
PYCNN_UK(sgemm_ukernel_avx512_mr8r4_x3, sgemm_ukernel_impl<simd::avx512, 8, 3, 4>)
PYCNN_UK(sgemm_ukernel_avx512_mr8_cols1, sgemm_cols_impl<simd::avx2, 1, 4>)
PYCNN_UK(sgemm_ukernel_avx512_mr8_cols2, sgemm_cols_impl<simd::avx2, 2, 4>)
PYCNN_UK(sgemm_ukernel_avx512_mr8_cols4, sgemm_cols_impl<simd::avx2, 4, 2>)

}  // namespace pycnn
