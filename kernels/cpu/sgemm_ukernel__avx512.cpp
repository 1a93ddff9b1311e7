// SGEMM micro-kernels for the avx512 build (one zmm = 16 floats): 12 rows x 2 zmm and 8 rows x 3
// zmm (24 accumulators each; the row count is chosen per matrix so that M = 64, 16 or 8 wastes no
// rows), each with narrower variants (1 or 2 zmm) for a panel's last columns; for 8-row panels
// whose real rows are at most 4 (a matrix's last panel: Kim's 100 filters), variants computing 4
// rows; and for 8-row panels' last 1-4 columns, ymm vectors down the rows (sgemm_cols_impl: four k
// chains for one or two columns, two for three or four).
#include "cpu_kernels.h"
#include "sgemm_ukernel.inl"

namespace pycnn {

namespace {

using V = simd::avx512;
constexpr int kWideMR = 12, kWideVecs = 2;  // 12 x 32
constexpr int kTallMR = 8, kTallVecs = 3;   // 8 x 48: 11 loads per 24 FMAs
constexpr int kShortMRC = 4;                // rows computed of a mostly empty 8-row panel
static_assert(kTallMR == simd::avx2::W, "the column kernels run one ymm down an 8-row panel");

constexpr SgemmVariant kVariants[] = {
    {"12x16", kWideMR, kWideMR, 1 * V::W, false, &sgemm_ukernel_impl<V, kWideMR, 1>},
    {"12x32", kWideMR, kWideMR, kWideVecs * V::W, false, &sgemm_ukernel_impl<V, kWideMR, kWideVecs>},
    {"8x1c", kTallMR, kTallMR, 1, true, &sgemm_cols_impl<simd::avx2, 1, 4>},
    {"8x2c", kTallMR, kTallMR, 2, true, &sgemm_cols_impl<simd::avx2, 2, 4>},
    {"8x4c", kTallMR, kTallMR, 4, true, &sgemm_cols_impl<simd::avx2, 4, 2>},
    {"8x16", kTallMR, kTallMR, 1 * V::W, false, &sgemm_ukernel_impl<V, kTallMR, 1>},
    {"8x32", kTallMR, kTallMR, 2 * V::W, false, &sgemm_ukernel_impl<V, kTallMR, 2>},
    {"8x48", kTallMR, kTallMR, kTallVecs * V::W, false, &sgemm_ukernel_impl<V, kTallMR, kTallVecs>},
    {"8r4x16", kTallMR, kShortMRC, 1 * V::W, false, &sgemm_ukernel_impl<V, kTallMR, 1, kShortMRC>},
    {"8r4x32", kTallMR, kShortMRC, 2 * V::W, false, &sgemm_ukernel_impl<V, kTallMR, 2, kShortMRC>},
    {"8r4x48", kTallMR, kShortMRC, kTallVecs * V::W, false, &sgemm_ukernel_impl<V, kTallMR, kTallVecs, kShortMRC>},
};

}  // namespace

SgemmVariants sgemm_variants__avx512() { return {kVariants, (int)(sizeof(kVariants) / sizeof(kVariants[0]))}; }

// 12 rows unless 8 pads M less (M = 64: 72 vs 64 rows).
int sgemm_mr__avx512(int64_t M) {
  return (M + kWideMR - 1) / kWideMR * kWideMR <= (M + kTallMR - 1) / kTallMR * kTallMR ? kWideMR : kTallMR;
}

// 8 x 48 for 8-row panels: 24 accumulators with 11 loads per 24 FMAs, against 10 per 16 for 8 x 32.
int sgemm_nr__avx512(int MR) { return MR == kTallMR ? kTallVecs * V::W : kWideVecs * V::W; }

}  // namespace pycnn
