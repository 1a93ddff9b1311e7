// SGEMM micro-kernels for the avx2 build (8 floats per vector): 6 rows x 2 vectors (a full panel)
// and 6 x 1 (panels of at most half the width, e.g. the last columns of a 13x13 map), and for a
// panel's last 1-4 columns a vector down the 6 rows (sgemm_cols_impl): 7x7 maps' 49 columns leave
// one, which 6 x 8 computed in 1 of its 8 lanes at about half a full panel's cost.
#include "cpu_kernels.h"
#include "sgemm_ukernel.inl"

namespace pycnn {

namespace {

using V = simd::avx2;
constexpr int kMR = 6, kVecs = 2;  // 12 accumulators

constexpr SgemmVariant kVariants[] = {
    {"6x1c", kMR, kMR, 1, true, &sgemm_cols_impl<V, 1, 4, kMR>},
    {"6x2c", kMR, kMR, 2, true, &sgemm_cols_impl<V, 2, 4, kMR>},
    {"6x4c", kMR, kMR, 4, true, &sgemm_cols_impl<V, 4, 2, kMR>},
    {"6x8", kMR, kMR, 1 * V::W, false, &sgemm_ukernel_impl<V, kMR, 1>},
    {"6x16", kMR, kMR, kVecs * V::W, false, &sgemm_ukernel_impl<V, kMR, kVecs>},
};

}  // namespace

SgemmVariants sgemm_variants__avx2() { return {kVariants, (int)(sizeof(kVariants) / sizeof(kVariants[0]))}; }
int sgemm_mr__avx2(int64_t) { return kMR; }
int sgemm_nr__avx2(int) { return kVecs * V::W; }

}  // namespace pycnn
