// SGEMM micro-kernels for the avx512 build: 12 x 2 zmm and 8 x 3 zmm (the row count is chosen
// per matrix so that M = 64, 16 or 8 wastes no rows), each with narrower variants (1 or 2 zmm)
// for a panel's last columns.
#include "sgemm_ukernel.inl"

namespace pycnn {

#define PYCNN_UK(MR, NV, name)                                                                    \
  void name(int64_t kc, const float* A, const float* B, int64_t ldb, float* C, int64_t ldc, int mr, \
            int nr, bool accumulate, bool last, const Epilogue& ep) {                             \
    sgemm_ukernel_impl<simd::avx512, MR, NV>(kc, A, B, ldb, C, ldc, mr, nr, accumulate, last, ep); \
  }
PYCNN_UK(12, 2, sgemm_ukernel_avx512_full)
PYCNN_UK(12, 1, sgemm_ukernel_avx512_half)
PYCNN_UK(8, 2, sgemm_ukernel_avx512_mr8_full)
PYCNN_UK(8, 1, sgemm_ukernel_avx512_mr8_half)
PYCNN_UK(8, 3, sgemm_ukernel_avx512_mr8_x3)

// 8-row panels' last 1-4 columns: ymm vectors down the rows (sgemm_cols_impl), four k chains
// for one or two columns, two for three or four.
#define PYCNN_UK_COLS(NC, U, name)                                                                \
  void name(int64_t kc, const float* A, const float* B, int64_t ldb, float* C, int64_t ldc, int mr, \
            int nr, bool accumulate, bool last, const Epilogue& ep) {                             \
    sgemm_cols_impl<simd::avx2, NC, U>(kc, A, B, ldb, C, ldc, mr, nr, accumulate, last, ep);     \
  }
PYCNN_UK_COLS(1, 4, sgemm_ukernel_avx512_mr8_cols1)
PYCNN_UK_COLS(2, 4, sgemm_ukernel_avx512_mr8_cols2)
PYCNN_UK_COLS(4, 2, sgemm_ukernel_avx512_mr8_cols4)

}  // namespace pycnn
