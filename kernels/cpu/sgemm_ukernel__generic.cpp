// SGEMM micro-kernels for the generic build (8 floats per vector): 6 rows x 2 vectors (a full panel)
// and 6 x 1 (panels of at most half the width, e.g. the last columns of a 7x7 or 13x13 map).
#include "cpu_kernels.h"
#include "sgemm_ukernel.inl"

namespace pycnn {

namespace {

using V = simd::generic;
constexpr int kMR = 6, kVecs = 2;  // 12 accumulators

constexpr SgemmVariant kVariants[] = {
    {"6x8", kMR, kMR, 1 * V::W, false, &sgemm_ukernel_impl<V, kMR, 1>},
    {"6x16", kMR, kMR, kVecs * V::W, false, &sgemm_ukernel_impl<V, kMR, kVecs>},
};

}  // namespace

SgemmVariants sgemm_variants__generic() { return {kVariants, (int)(sizeof(kVariants) / sizeof(kVariants[0]))}; }
int sgemm_mr__generic(int64_t) { return kMR; }
int sgemm_nr__generic(int) { return kVecs * V::W; }

}  // namespace pycnn
