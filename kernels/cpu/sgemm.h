// Our SGEMM: C (M x N, row stride ldc) = A (M x K) * B (K x N), with a fused epilogue
// (bias per row or per column, ReLU, accumulate). BLIS-style: A is packed into MR-row panels
// (k-major, MR floats per k), B into NR-column panels (NR floats per k) one KC x NC tile at a
// time, and a register-blocked micro-kernel multiplies one MR x NR block of C.
//
// B is never required to exist as a matrix: a BSource packs any K x N view (a plain matrix, a
// transposed matrix, or the implicit im2col of an image: see conv2d_im2col.cpp), so the
// workspace is bounded by one KC x NC tile per thread whatever the batch size.
#pragma once
#include <cstdint>
#include <vector>

#include "pycnn/buffer.h"
#include "pycnn/shapes.h"

namespace pycnn {

constexpr int64_t kSgemmKC = 256;  // depth of one packed block (see docs/performance.md)

struct CpuKernels;  // cpu_kernels.h: the per-ISA kernels, micro-kernels and tile sizes

// C[0:mr, 0:nr] (+)= A_panel (kc x MR) * B (kc rows of NR, ldb apart: NR for a packed panel, the
// row stride for a matrix read in place; see BSource::direct); the epilogue adds bias and the
// residual and applies the activation (a clamp: ReLU, ReLU6) when `last` is set. Partial tiles (mr < MR or nr < NR) are
// handled inside.
struct Epilogue {
  const float* bias_row = nullptr;  // indexed by row (already offset to this tile)
  const float* bias_col = nullptr;  // indexed by column (already offset to this tile)
  const float* residual = nullptr;  // added before the activation: residual[i * ldr + j] (offset to this tile)
  int64_t ldr = 0;
  Activation act;
  // Lines to fetch into L2 while the k loop runs: MR * 4 bytes from `prefetch` per k step, one
  // software prefetch each, so a panel's worth of lines is spread over the panel's FMAs instead
  // of issued in a burst (which stalled on the line-fill buffers). Null: none.
  const float* prefetch = nullptr;
  // Where B is read in place (a row-major matrix, ldb apart), the panel's packed copy (kc rows of
  // NR floats) is written here as the k loop loads it, so the next row panels read the copy from
  // L1 instead of B's rows a page apart. Row kernels only (sgemm_ukernel_impl), whole panels.
  float* b_copy = nullptr;
};
using SgemmUkernel = void (*)(int64_t kc, const float* A, const float* B, int64_t ldb, float* C, int64_t ldc, int mr,
                              int nr, bool accumulate, bool last, const Epilogue& ep);
// A packed once (weights: packed when a layer is prepared, or per call by the functional API).
struct PackedA {
  const CpuKernels* kernels = nullptr;  // the ISA it was packed for (its MR), and runs with
  int MR = 0;
  int64_t M = 0, K = 0, Mpad = 0;
  AlignedBuffer<float> data;    // owned storage: for each KC block at k0, Mpad/MR panels of (kc x MR)
  const float* base = nullptr;  // the panels: data, or scratch the caller lent (pack_a's storage)
  // Not packed yet (a per-call GEMM, see describe_a): A(i, k) = src[i * src_rs + k * src_cs].
  const float* src = nullptr;
  int64_t src_rs = 0, src_cs = 0;
  bool packed() const { return base != nullptr; }
  const float* panel(int64_t k0, int64_t kc, int64_t ip) const { return base + k0 * Mpad + ip * MR * kc; }
  // Panel ip of the depth block at k0 (kc deep), packed from src into dst (kc x MR floats).
  void pack_panel(int64_t k0, int64_t kc, int64_t ip, float* dst) const;
};
// A(i, k) = a[i * rs + k * cs], packed in panels of kernels.sgemm_mr(M) rows, into out.data, or
// into storage (Mpad * K floats, kept alive by the caller while out is used) when given:
// a per-call GEMM packs into the calling thread's workspace instead of mapping and faulting in
// fresh pages every call (a 512 x 4608 A: 9 MiB, more time than the GEMM's arithmetic).
void pack_a(PackedA& out, const CpuKernels& kernels, int64_t M, int64_t K, const float* a, int64_t rs, int64_t cs,
            float* storage = nullptr);
// The same A described but not packed: sgemm_run packs each panel just before its use when each
// panel is used by one work item only (narrow C: 7x7 maps), so A is read once and never written
// back out (a 512 x 4608 A packed up front cost a third of the GEMM in writes and re-reads);
// otherwise it packs the whole matrix into the calling thread's workspace first.
void describe_a(PackedA& out, const CpuKernels& kernels, int64_t M, int64_t K, const float* a, int64_t rs, int64_t cs);

// A K x N matrix that can be packed into NR-column panels:
// dst[p * kc * NR + (k - k0) * NR + jj] = B(k, j0 + p * NR + jj), zero for columns >= N.
struct BSource {
  virtual ~BSource() = default;
  virtual void pack(int64_t k0, int64_t kc, int64_t j0, int64_t nc, int NR, float* dst) const = 0;
  // Where B already is a row-major matrix (a 1x1 convolution's input: rows = channels, columns =
  // pixels), the address of B(k0, j) and the row stride, so the micro-kernel reads whole panels
  // in place instead of packing them; null otherwise.
  virtual const float* direct(int64_t k0, int64_t j, int64_t& ldb) const { return nullptr; }
};
// B(k, j) = b[k * rs + j * cs]
struct MatrixBSource : BSource {
  const float* b;
  int64_t rs, cs;
  MatrixBSource(const float* b_, int64_t rs_, int64_t cs_) : b(b_), rs(rs_), cs(cs_) {}
  void pack(int64_t k0, int64_t kc, int64_t j0, int64_t nc, int NR, float* dst) const override;
  const float* direct(int64_t k0, int64_t j, int64_t& ldb) const override {
    ldb = rs;
    return cs == 1 ? b + k0 * rs + j : nullptr;
  }
};

// One GEMM of a batch of GEMMs that share A's shape (M x K) and the epilogue kind.
struct GemmProblem {
  const PackedA* A;
  const BSource* B;
  int64_t N;
  float* C;
  int64_t ldc;
  const float* bias_row;            // M entries or null
  const float* bias_col;            // N entries or null
  const float* residual = nullptr;  // M x N, row stride ldc, added before ReLU (ResNet's join), or null
};

// How one GEMM of few rows reads a large row-major B (sgemm_run): packed per depth block before
// the micro-kernels run (kLargeBPacked), in place by every row panel (kLargeBInPlace), or in
// place by each panel's first row panel, whose micro-kernel writes the packed copy the other row
// panels read (kLargeBCopyFirst, Epilogue::b_copy; packed beyond 24 row panels). -1 (the
// default) picks per vendor, as measured (docs/performance.md, SGEMM): in place on AMD's cores
// (Zen 5), copied by the first use on Intel's (a Sapphire Rapids-class Xeon). The tests run
// every mode on any CPU.
enum LargeBMode : int { kLargeBPacked = 0, kLargeBInPlace = 1, kLargeBCopyFirst = 2 };
void set_sgemm_large_b(int mode);  // -1 or a LargeBMode; std::invalid_argument otherwise
int sgemm_large_b();               // the mode in effect

// Runs all problems with OpenMP over (problem, row block, column block) tiles.
void sgemm_run(const std::vector<GemmProblem>& problems, int64_t M, int64_t K, Activation act);

// Convenience: C = A * B (+ bias) for plain strided matrices; packs A per call.
void sgemm(int64_t M, int64_t N, int64_t K, const float* a, int64_t rsa, int64_t csa, const float* b, int64_t rsb,
           int64_t csb, float* c, int64_t ldc, const float* bias_row, const float* bias_col, bool relu);

}  // namespace pycnn
