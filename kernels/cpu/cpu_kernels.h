// The per-ISA kernel table (NNPACK's nnp_hwinfo). Every kernel that has an ISA build is listed once
// in PYCNN_CPU_KERNELS with its signature; each ISA build (the *__generic.cpp, *__avx2.cpp and
// *__avx512.cpp files) defines it as <name>__<isa>, e.g. conv2d_winograd__avx2. cpu_kernels.cpp
// fills one CpuKernels per ISA from those symbols, so an ISA that lacks one fails to link, and
// cpu_kernels(isa) is the only place that switches over the ISA. Prepared weights keep a pointer
// to the table they were packed for and run with it.
#pragma once
#include <cstdint>

#include "conv2d.h"
#include "pycnn/isa.h"
#include "pycnn/shapes.h"
#include "sgemm.h"

namespace pycnn {

// One SGEMM micro-kernel (XNNPACK's registry entry): it multiplies an MR-row A panel (kc x MR) by
// B (kc rows of at least NR readable floats, ldb apart) into C[0:mr, 0:nr], computing MRC <= MR
// rows (mr <= MRC) and up to NR columns (nr <= NR). A column kernel (cols) vectorizes down the
// rows and reads B(k, j) for j < NR only, so a panel for it may be packed NR wide.
struct SgemmVariant {
  const char* name;  // rows x columns: "12x32", "8x48", "8r4x16" (4 rows of an 8-row panel), "8x4c"
  int MR, MRC, NR;
  bool cols;
  SgemmUkernel fn;
};
// An ISA's micro-kernels, narrowest first for each MR.
struct SgemmVariants {
  const SgemmVariant* items;
  int count;
};

// Signatures (x, y, w are float32; layouts as in conv2d.h and ops_cpu.h).
using Im2colPackFn = void (*)(const ConvParams&, const float* x, int64_t k0, int64_t kc, int64_t j0, int64_t nc, int NR,
                              float* dst);
using WholeRowsPackFn = void (*)(const float* x, int64_t HW, int64_t RS, int64_t jstride, int64_t k0, int64_t kc,
                                 int64_t j0, int64_t nc, int NR, float* dst);
using WinogradRunFn = void (*)(const ConvParams&, const float* x, const WinogradWeights&, const float* bias, float* y,
                               Activation, const float* residual, bool y_blocked);
using WinogradPlanFn = WinogradPlanInfo (*)(const ConvParams&, const WinogradWeights&, bool y_blocked);
using WinogradTransformFn = void (*)(const ConvParams&, int m, const float* in, float* out);
using LinearGemvFn = void (*)(int64_t N, int64_t In, int64_t Out, const float* x, const float* w, const float* b,
                              float* y, bool relu);
using LinearPackFn = int64_t (*)(int64_t In, int64_t Out, const float* w, float* dst);
using MaxPoolFn = void (*)(const PoolParams&, const float* x, float* y);
using AvgPoolFn = void (*)(const PoolParams&, const float* x, float* y, bool count_include_pad);
using ReorderFn = void (*)(int64_t N, int64_t C, int64_t HW, const float* in, float* out);
using DirectPrepareFn = void (*)(const ConvParams&, const float* w, AlignedBuffer<float>& wb);
using DirectRunFn = void (*)(const ConvParams&, const float* x, const float* wb, const float* bias, float* y,
                             Activation, const float* residual);
using DirectOcRunFn = void (*)(const ConvParams&, const float* x, const float* wb, const float* bias, float* y,
                               Activation, const float* residual, int layout);
using DepthwiseRunFn = void (*)(const ConvParams&, const float* x, const float* w, const float* bias, float* y,
                                Activation, const float* residual);
using DepthwiseC16RunFn = void (*)(const ConvParams&, const float* x, const float* w16, const float* bias, float* y,
                                   Activation, const float* residual, int layout);
// The depthwise conv's geometry (C = K = the 1x1's outputs), the 1x1's input channels, x, the 1x1's
// weights (K/16, C_in, 16), bias and epilogue, the depthwise's (K/16, R*S, 16), bias and epilogue, y.
using PwDwC16RunFn = void (*)(const ConvParams& dw, int64_t cin, const float* x, const float* wpw, const float* bpw,
                              Activation apw, const float* wdw, const float* bdw, Activation adw, float* y);
// Squeeze-and-excitation (se_block.inl): N, C, Cm, HW, blocked, x, w1 (Cm, C), b1, act1, w2 (C, Cm), b2, act2, y.
using SeBlockFn = void (*)(int64_t N, int64_t C, int64_t Cm, int64_t HW, bool blocked, const float* x, const float* w1,
                           const float* b1, Activation a1, const float* w2, const float* b2, Activation a2, float* y);
using UnaryChunkFn = void (*)(int fn, int64_t n, const float* x, float* y, float a, float b);
using SgemmMrFn = int (*)(int64_t M);
using SgemmNrFn = int (*)(int MR);
using SgemmVariantsFn = SgemmVariants (*)();
using ContentHashChunkFn = uint64_t (*)(const unsigned char* p, size_t n, uint64_t index);
using FmaPeakFn = double (*)(int64_t iters, float* sink);  // FLOPs done
// dst[k * P + r] = src[r * ld + k] for r < rows <= P, k < kc; zero for rows <= r < P.
using PackTransposedFn = void (*)(const float* src, int64_t ld, int rows, int P, int64_t kc, float* dst);
// dst[p * kc * NR + (k - k0) * NR + jj] = src[k * ld + j0 + p * NR + jj], zero past column j0 + nc.
using PackRowsFn = void (*)(const float* src, int64_t ld, int64_t k0, int64_t kc, int64_t j0, int64_t nc, int NR,
                            float* dst);

#define PYCNN_CPU_KERNELS(X)                                                              \
  X(sgemm_variants, SgemmVariantsFn)   /* sgemm_ukernel__<isa>.cpp: every micro-kernel */ \
  X(sgemm_mr, SgemmMrFn)               /* rows per A panel for an M-row matrix */         \
  X(sgemm_nr, SgemmNrFn)               /* columns per B panel for MR-row A panels */      \
  X(pack_transposed, PackTransposedFn) /* sgemm_pack__<isa>.cpp: A, B^T panels */         \
  X(pack_rows, PackRowsFn)             /* B panels of a row-major matrix */               \
  X(im2col_pack, Im2colPackFn)         /* im2col_pack__<isa>.cpp */                       \
  X(whole_rows_pack, WholeRowsPackFn)                                                     \
  X(conv2d_direct_prepare, DirectPrepareFn) /* conv2d_direct__<isa>.cpp */                \
  X(conv2d_direct, DirectRunFn)                                                           \
  X(conv2d_direct_oc_prepare, DirectPrepareFn) /* conv2d_direct_oc__<isa>.cpp */          \
  X(conv2d_direct_oc, DirectOcRunFn)                                                      \
  X(conv2d_direct_oc_images, DirectOcRunFn)                                               \
  X(conv2d_depthwise, DepthwiseRunFn)        /* conv2d_depthwise__<isa>.cpp */            \
  X(conv2d_depthwise_c16, DepthwiseC16RunFn) /* conv2d_depthwise_c16__<isa>.cpp */        \
  X(conv2d_grouped_c16, DepthwiseC16RunFn)   /* conv2d_grouped_c16__<isa>.cpp */          \
  X(conv2d_pw_dw_c16, PwDwC16RunFn)          /* conv2d_pw_dw_c16__<isa>.cpp */            \
  X(conv2d_winograd, WinogradRunFn)          /* conv2d_winograd__<isa>.cpp */             \
  X(winograd_plan, WinogradPlanFn)                                                        \
  X(winograd_input, WinogradTransformFn)                                                  \
  X(winograd_output, WinogradTransformFn)                                                 \
  X(linear_gemv, LinearGemvFn) /* linear_gemv__<isa>.cpp */                               \
  X(linear_pack, LinearPackFn)                                                            \
  X(linear_panels, LinearGemvFn) /* wp: linear_pack's panels */                           \
  X(se_block, SeBlockFn)         /* se_block__<isa>.cpp */                                \
  X(max_pool2d, MaxPoolFn)       /* pool2d__<isa>.cpp */                                  \
  X(avg_pool2d, AvgPoolFn)                                                                \
  X(max_pool2d_blocked16, MaxPoolFn) /* pool2d_blocked__<isa>.cpp */                      \
  X(avg_pool2d_blocked16, AvgPoolFn)                                                      \
  X(reorder_to_blocked16, ReorderFn) /* reorder_blocked__<isa>.cpp */                     \
  X(reorder_from_blocked16, ReorderFn)                                                    \
  X(unary_chunk, UnaryChunkFn)              /* eltwise_unary__<isa>.cpp */                \
  X(content_hash_chunk, ContentHashChunkFn) /* content_hash__<isa>.cpp */                 \
  X(fma_peak, FmaPeakFn)                    /* fma_peak__<isa>.cpp */

struct CpuKernels {
  Isa isa;
  const char* name;  // "generic", "avx2", "avx512"
#define PYCNN_CPU_KERNEL_FIELD(fn, type) type fn;
  PYCNN_CPU_KERNELS(PYCNN_CPU_KERNEL_FIELD)
#undef PYCNN_CPU_KERNEL_FIELD
};

// The table of one ISA (every ISA this build knows, whether or not the CPU runs it).
const CpuKernels& cpu_kernels(Isa isa);
// The table kernels use now: cpu_kernels(active_isa()).
const CpuKernels& active_kernels();

// The micro-kernel a panel of nr columns (1 <= nr <= sgemm_nr(MR)) runs with on MR-row panels,
// for a panel with mr real rows: among k's variants for MR, the narrowest that covers nr, then the
// one computing the fewest rows that covers mr.
const SgemmVariant& sgemm_select(const CpuKernels& k, int MR, int nr, int mr);

}  // namespace pycnn
