// SGEMM driver: packing of A and plain B, tiling, and the OpenMP loop (see sgemm.h).
//
// Tiling: each work item is one (problem, row block, column block) of C. A thread packs the B
// tile (KC x NC) it needs into its own buffer, then runs the micro-kernel over the tile with the
// column panels outside and the row panels inside, so one B panel (KC x NR) stays in L1 while
// the A block streams from L2. Items are spread with a dynamic schedule.
#include "sgemm.h"

#include "cpu_kernels.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <stdexcept>

#include "pycnn/isa.h"
#include "pycnn/parallel.h"

namespace pycnn {

void describe_a(PackedA& out, const CpuKernels& kernels, int64_t M, int64_t K, const float* a, int64_t rs, int64_t cs) {
  const int MR = kernels.sgemm_mr(M);
  out.kernels = &kernels;
  out.MR = MR;
  out.M = M;
  out.K = K;
  out.Mpad = (M + MR - 1) / MR * MR;
  out.base = nullptr;
  out.src = a;
  out.src_rs = rs;
  out.src_cs = cs;
}

void PackedA::pack_panel(int64_t k0, int64_t kc, int64_t ip, float* dst) const {
  const int64_t row0 = ip * MR, rs = src_rs, cs = src_cs;
  const int rows = (int)std::min<int64_t>(MR, M - row0);
  if (cs == 1) {  // rows run along k: transposed in registers
    kernels->pack_transposed(src + row0 * rs + k0, rs, rows, MR, kc, dst);
  } else if (rs == 1) {  // columns run along the rows: one copy of MR floats per k
    for (int64_t k = 0; k < kc; ++k) {
      std::memcpy(dst + k * MR, src + row0 + (k0 + k) * cs, rows * sizeof(float));
      for (int i = rows; i < MR; ++i) dst[k * MR + i] = 0.0f;
    }
  } else {
    for (int i = 0; i < MR; ++i) {
      const float* a = src + (row0 + i) * rs + k0 * cs;
      for (int64_t k = 0; k < kc; ++k) dst[k * MR + i] = i < rows ? a[k * cs] : 0.0f;
    }
  }
}

void pack_a(PackedA& out, const CpuKernels& kernels, int64_t M, int64_t K, const float* a, int64_t rs, int64_t cs,
            float* storage) {
  describe_a(out, kernels, M, K, a, rs, cs);
  if (!storage) {
    out.data.resize((size_t)(out.Mpad * K));
    storage = out.data.data();
  }
  const int64_t panels = out.Mpad / out.MR;
  const int nt = threads_for(8.0 * M * K, panels);
  for (int64_t k0 = 0; k0 < K; k0 += kSgemmKC) {
    const int64_t kc = std::min(kSgemmKC, K - k0);
    parallel_run(nt, [&] {
#pragma omp for schedule(static)
      for (int64_t ip = 0; ip < panels; ++ip) out.pack_panel(k0, kc, ip, storage + k0 * out.Mpad + ip * out.MR * kc);
    });
  }
  out.base = storage;
}

void MatrixBSource::pack(int64_t k0, int64_t kc, int64_t j0, int64_t nc, int NR, float* dst) const {
  if (cs == 1) return active_kernels().pack_rows(b, rs, k0, kc, j0, nc, NR, dst);
  for (int64_t p = 0; p * NR < nc; ++p) {
    const int64_t jb = j0 + p * NR;
    const int64_t nr = std::min<int64_t>(NR, nc - p * NR);
    float* d = dst + p * kc * NR;
    if (rs == 1) {
      // Transposed source (B = W^T): each column's k-run is contiguous, transposed in registers.
      active_kernels().pack_transposed(b + jb * cs + k0, cs, (int)nr, NR, kc, d);
    } else {
      for (int64_t jj = 0; jj < NR; ++jj)
        for (int64_t k = 0; k < kc; ++k) d[k * NR + jj] = jj < nr ? b[(k0 + k) * rs + (jb + jj) * cs] : 0.0f;
    }
  }
}

namespace {

struct Item {
  int64_t problem, m0, m1, j0, j1;
};

constexpr int64_t kNC = 384;              // columns of one packed B tile: KC x NC floats = 384 KiB (L2)
constexpr int64_t kMC = 240;              // rows of A swept per B tile: MC x KC floats = 240 KiB (L2)
constexpr int64_t kNarrowNC = 64;         // C blocks this narrow run A-panel-outer (see sgemm_run)
constexpr int64_t kShallowK = 128;        // GEMMs this shallow also run A-panel-outer (see sgemm_run)
constexpr int64_t kDirectMaxRows = 64;    // B read in place for GEMMs this short (see sgemm_run)
constexpr int64_t kPrefetchPanels = 2;    // A panels prefetched ahead in that order
constexpr int64_t kKsplitMaxPanels = 8;   // depth split when the row panels per thread are fewer
constexpr int64_t kKsplitMinDepth = 256;  // ... and each thread gets at least this much depth
// ... or when each thread's partial C is at most this big (it stays in L2 for the sum): the rows'
// split costs a panel's imbalance and every thread packing all of B, the depth's split the sum
constexpr int64_t kKsplitMaxPartialBytes = 512 << 10;
// B read in place for one GEMM of at most this many rows whose B has at least this many bytes
// (see sgemm_run, set_sgemm_large_b).
constexpr int64_t kDirectOneMaxRows = 384;
constexpr int64_t kDirectOneMinBytes = int64_t(1) << 20;
constexpr int64_t kCopyFirstMaxPanels = 24;  // ... copied by its first use up to this many row panels
constexpr int kMaxMR = 16;                   // rows of the widest A panel (a panel packed per use: abuf)
std::atomic<int> g_large_b_mode{-1};         // set_sgemm_large_b's mode; -1: per vendor

// Work items: column blocks of every problem. Rows are split only when the column blocks
// cannot keep every thread busy (small feature maps such as 7x7 or 13x13): then each thread
// takes a share of the rows over the whole width, so A is still streamed once.
std::vector<Item> make_items(const std::vector<GemmProblem>& probs, int64_t M, int MR, int NR, int nt,
                             int64_t& row_parts) {
  int64_t maxN = 0;
  for (auto& p : probs) maxN = std::max(maxN, p.N);
  const int64_t np = (int64_t)probs.size();
  // Column blocks of whole NR panels, as equal in panel count as possible (rounding a block
  // width up to NR instead left e.g. 784 columns as 224+224+224+112: one thread idled 25% of the
  // time), as many per problem as make the total a multiple of the thread count when that costs
  // little, so no thread idles at the end.
  const int64_t max_panels = (maxN + NR - 1) / NR;
  int64_t per = (maxN + kNC - 1) / kNC;
  if (nt > 1 && (np * per) % nt != 0 && per >= nt) per = (per + nt - 1) / nt * nt;
  per = std::max<int64_t>(1, std::min(per, max_panels));
  const int64_t col_blocks = np * per;
  const int64_t mpanels = (M + MR - 1) / MR;
  int64_t mparts = 1;
  if (nt > 1 && col_blocks < 4 * nt && col_blocks % nt != 0) mparts = nt;
  mparts = std::min(mparts, mpanels);
  row_parts = mparts;
  std::vector<Item> items;
  for (int64_t pi = 0; pi < np; ++pi) {
    const int64_t N = probs[pi].N, panels = (N + NR - 1) / NR;
    for (int64_t b = 0; b < per; ++b) {
      int64_t jb, je;
      split_range(panels, (int)per, (int)b, jb, je);
      if (jb == je) continue;
      for (int64_t mp = 0; mp < mparts; ++mp) {
        int64_t pb, pe;
        split_range(mpanels, (int)mparts, (int)mp, pb, pe);
        if (pb == pe) continue;
        items.push_back({pi, pb * MR, std::min(M, pe * MR), jb * NR, std::min(N, je * NR)});
      }
    }
  }
  return items;
}

// For each panel width nr <= NR: the columns of a whole number of vectors to run first when the
// rest (nr mod the vector width) fits a column kernel and uk[nr] is a vector kernel wider than
// those vectors; 0 where uk[nr] runs the panel alone. The vector width is the narrowest row
// kernel's for these panels. Packed panels are NR wide and zero-padded, so the column kernel's
// reads from column h on stay inside them.
std::vector<int> split_heads(const CpuKernels& kern, int MR, int NR, const std::vector<const SgemmVariant*>& uk) {
  const SgemmVariants vs = kern.sgemm_variants();
  int W = NR;
  for (int i = 0; i < vs.count; ++i)
    if (vs.items[i].MR == MR && !vs.items[i].cols) W = std::min(W, vs.items[i].NR);
  std::vector<int> head((size_t)NR + 1, 0);
  for (int nr = W + 1; nr < NR; ++nr) {
    const int r = nr % W;
    if (r != 0 && !uk[(size_t)nr]->cols && uk[(size_t)r]->cols && uk[(size_t)r]->NR < W) head[(size_t)nr] = nr - r;
  }
  return head;
}

// The micro-kernel for each panel width (a panel's last columns take a narrower one), for full
// row panels and for the last one, which may have fewer real rows (mr_last) and so a shorter
// kernel. A partial panel a few columns past a whole vector (169 columns = 10 x 16 + 9 on avx2)
// runs as the vector kernel for the whole vectors and a column kernel for the rest (head),
// instead of one kernel as wide as the next vector count.
struct PanelKernels {
  int MR;
  std::vector<const SgemmVariant*> uk, uk_last;
  std::vector<int> head, head_last;

  PanelKernels(const CpuKernels& kern, int MR_, int NR, int64_t M)
      : MR(MR_), uk((size_t)NR + 1), uk_last((size_t)NR + 1) {
    const int mr_last = (int)(M - ((M + MR - 1) / MR - 1) * MR);
    for (int nr = 1; nr <= NR; ++nr) {
      uk[(size_t)nr] = &sgemm_select(kern, MR, nr, MR);
      uk_last[(size_t)nr] = &sgemm_select(kern, MR, nr, mr_last);
    }
    head = split_heads(kern, MR, NR, uk);
    head_last = split_heads(kern, MR, NR, uk_last);
  }
  // One mr x nr block of C: one micro-kernel call, or two for a split panel (the second with
  // the epilogue from column h on).
  void run(int64_t kc, const float* ap, const float* bp, int64_t ldb, float* c, int64_t ldc, int mr, int nr,
           bool accumulate, bool last, const Epilogue& ep) const {
    const std::vector<const SgemmVariant*>& u = mr < MR ? uk_last : uk;
    const int h = (mr < MR ? head_last : head)[(size_t)nr];
    if (ep.b_copy && (h != 0 || u[(size_t)nr]->cols))
      throw std::logic_error("sgemm: a B panel copied while read needs a whole panel's row kernel");
    if (h == 0) return u[(size_t)nr]->fn(kc, ap, bp, ldb, c, ldc, mr, nr, accumulate, last, ep);
    u[(size_t)h]->fn(kc, ap, bp, ldb, c, ldc, mr, h, accumulate, last, ep);
    Epilogue et = ep;
    if (et.bias_col) et.bias_col += h;
    if (et.residual) et.residual += h;
    et.prefetch = nullptr;
    u[(size_t)(nr - h)]->fn(kc, ap, bp + h, ldb, c + h, ldc, mr, nr - h, accumulate, last, et);
  }
};

// One GEMM whose rows split unevenly over the threads (Kim's CNN at batch 1: 100 rows = 13
// panels of 8, so 7 against 6, each thread packing all of B) and whose depth is large: each
// thread takes a share of the depth instead, for all rows and columns, into its own partial C;
// then the threads add the partials (and apply the epilogue) over row shares. Every thread
// packs only its depth share of B.
void sgemm_run_ksplit(const GemmProblem& p, int64_t M, int64_t K, Activation act, int nt) {
  const CpuKernels& kern = *p.A->kernels;
  const int MR = p.A->MR, NR = kern.sgemm_nr(MR);
  const int64_t N = p.N, ncpad = (N + NR - 1) / NR * NR, ldp = ncpad + 16;
  const size_t bsize = (size_t)(kSgemmKC * ncpad), psize = (size_t)(M * ldp);
  check_workspace(bsize);
  check_workspace(psize);
  std::vector<float*> parts((size_t)nt, nullptr);
  ParallelFailure failure;
  const Epilogue none;
  const PanelKernels pk(kern, MR, NR, M);
  const bool lazy_a = !p.A->packed();  // each panel's depth share packed here just before use
  parallel_run(nt, [&] {
    // Shares of the team OpenMP gave (it may be smaller than asked: OMP_THREAD_LIMIT, dynamic).
    const int t = omp_get_thread_num(), nth = omp_get_num_threads();
    alignas(64) float abuf[kMaxMR * kSgemmKC];
    float* bbuf = workspace_nothrow(kSlotGemmB, bsize);
    float* part = workspace_nothrow(kSlotGemmC, psize);
    parts[(size_t)t] = part;
    if (!bbuf || !part) failure.set();
    int64_t ka, kb;
    split_range(K, nth, t, ka, kb);
    for (int64_t k = ka; bbuf && part && k < kb;) {
      // The piece of the depth share inside one packed depth block of A.
      const int64_t k0 = k / kSgemmKC * kSgemmKC, kcf = std::min(kSgemmKC, K - k0);
      const int64_t kc = std::min(kb, k0 + kcf) - k;
      p.B->pack(k, kc, 0, N, NR, bbuf);
      for (int64_t i = 0; i < M; i += MR) {
        const float* ap = abuf;
        if (lazy_a)
          p.A->pack_panel(k, kc, i / MR, abuf);
        else
          ap = p.A->panel(k0, kcf, i / MR) + (k - k0) * MR;
        const int mr = (int)std::min<int64_t>(MR, M - i);
        for (int64_t jp = 0; jp * NR < N; ++jp) {
          const int nr = (int)std::min<int64_t>(NR, N - jp * NR);
          pk.run(kc, ap, bbuf + jp * kc * NR, NR, part + i * ldp + jp * NR, ldp, mr, nr, k != ka, false, none);
        }
      }
      k += kc;
    }
#pragma omp barrier
    if (!failure.failed.load()) {
      int64_t i0, i1;
      split_range(M, nth, t, i0, i1);
      // Row i is this thread's alone now, so the sum goes into thread 0's partial row (simple
      // loops, vectorized by the compiler), then to C with the epilogue.
      for (int64_t i = i0; i < i1; ++i) {
        float* v = parts[0] + i * ldp;
        for (int u = 1; u < nth; ++u) {
          const float* q = parts[(size_t)u] + i * ldp;
          for (int64_t j = 0; j < N; ++j) v[j] += q[j];
        }
        if (p.residual) {
          const float* r = p.residual + i * p.ldc;
          for (int64_t j = 0; j < N; ++j) v[j] += r[j];
        }
        if (p.bias_col)
          for (int64_t j = 0; j < N; ++j) v[j] += p.bias_col[j];
        const float brow = p.bias_row ? p.bias_row[i] : 0.0f;
        float* c = p.C + i * p.ldc;
        if (act.active())
          for (int64_t j = 0; j < N; ++j) c[j] = act.apply(v[j] + brow);  // NaN stays NaN
        else
          for (int64_t j = 0; j < N; ++j) c[j] = v[j] + brow;
        if (act.fn >= 0) kern.unary_chunk(act.fn, N, c, c, act.a, act.b);
      }
    }
  });
  failure.rethrow();
}

}  // namespace

void set_sgemm_large_b(int mode) {
  if (mode < -1 || mode > kLargeBCopyFirst)
    throw std::invalid_argument(
        "mode: expected -1 (per vendor), 0 (packed), 1 (in place) or 2 (copied by its first use)");
  g_large_b_mode.store(mode);
}

int sgemm_large_b() {
  const int mode = g_large_b_mode.load(std::memory_order_relaxed);
  return mode >= 0 ? mode : cpu_is_amd() ? kLargeBInPlace : kLargeBCopyFirst;
}

void sgemm_run(const std::vector<GemmProblem>& probs_in, int64_t M, int64_t K, Activation act) {
  if (probs_in.empty() || M == 0) return;
  const CpuKernels& kern = *probs_in[0].A->kernels;
  const int MR = probs_in[0].A->MR, NR = kern.sgemm_nr(MR);
  int64_t totalN = 0;
  for (auto& p : probs_in) totalN += p.N;
  const int nt_max = threads_for(2.0 * M * totalN * K, 1 << 30);
  int64_t row_parts = 1;
  const std::vector<Item> items = make_items(probs_in, M, MR, NR, nt_max, row_parts);
  // Rows split unevenly over the threads in a deep GEMM (one column block): split the depth.
  const int64_t mpanels = (M + MR - 1) / MR;
  const int64_t partial_bytes = M * ((probs_in[0].N + NR - 1) / NR * NR + 16) * (int64_t)sizeof(float);
  const bool ksplit = probs_in.size() == 1 && row_parts == nt_max && nt_max > 1 && (int64_t)items.size() == row_parts &&
                      mpanels % nt_max != 0 &&
                      (mpanels < kKsplitMaxPanels * nt_max || partial_bytes <= kKsplitMaxPartialBytes) &&
                      K >= kKsplitMinDepth * nt_max;
  // An A not packed yet (describe_a) is packed just before use when each item covers all columns
  // or the depth is split (so every panel is packed once, by the thread that uses it): panel by
  // panel in the narrow order below and in the depth split, a row block (MC x KC, in L2) at a
  // time in the wide order; else the whole matrix first (each block of it then re-read from
  // memory by every item: a 384 x 3456 A packed up front wrote and re-read 5 MiB around 0.45
  // GFLOP).
  const GemmProblem& p0 = probs_in[0];
  bool lazy_a = !p0.A->packed();
  std::vector<GemmProblem> repacked;
  PackedA whole;
  if (lazy_a && MR > kMaxMR) throw std::logic_error("sgemm_run: MR above kMaxMR");
  if (lazy_a) {
    bool once = probs_in.size() == 1;  // the depth split: each thread packs its share of every panel
    for (auto& it : items) once = once && (ksplit || (it.j0 == 0 && it.j1 == p0.N));
    if (!once) {
      for (auto& p : probs_in)
        if (p.A != p0.A) throw std::logic_error("sgemm_run: an unpacked A must be shared by every problem");
      const PackedA& a = *p0.A;
      pack_a(whole, kern, M, K, a.src, a.src_rs, a.src_cs, workspace(kSlotPackedA, (size_t)(a.Mpad * K)));
      repacked = probs_in;
      for (auto& p : repacked) p.A = &whole;
      lazy_a = false;
    }
  }
  const std::vector<GemmProblem>& probs = repacked.empty() ? probs_in : repacked;
  if (ksplit) return sgemm_run_ksplit(probs[0], M, K, act, nt_max);
  // In-place B where each thread would otherwise pack the same B tile (rows split across threads
  // on small maps) for few rows, saving the duplicated packing; and for one GEMM of few rows
  // whose B is large enough to come from memory: packing it read B at the memory's pace before
  // any FMA, where the micro-kernel's strided loads of B overlap the FMAs. On Intel's Xeon a
  // panel read in place did not stay in L1 across the row panels (its rows are a page apart), so
  // there only a panel's first row panel reads it in place and writes the packed copy the others
  // read (set_sgemm_large_b). A B in the caches (Winograd's GEMMs of a chunk) packs faster than
  // the strided loads cost; taller GEMMs would re-read B from memory per row block
  // (docs/performance.md, SGEMM).
  const bool large_b =
      probs.size() == 1 && M <= kDirectOneMaxRows && K * probs[0].N * (int64_t)sizeof(float) >= kDirectOneMinBytes;
  const int large_mode = large_b ? sgemm_large_b() : kLargeBPacked;
  // The copy by the first use for at most kCopyFirstMaxPanels row panels (in the wide order; in
  // place in the narrow one); with more, packing's cost is spread thin and it stays.
  const bool copy_first = large_mode == kLargeBCopyFirst && mpanels <= kCopyFirstMaxPanels;
  const bool one_large_b = large_mode == kLargeBInPlace || copy_first;
  const bool allow_direct = (row_parts > 1 && M <= kDirectMaxRows) || one_large_b;
  const int nt = std::max(1, std::min<int>(nt_max, (int)items.size()));
  const PanelKernels pk(kern, MR, NR, M);  // the micro-kernels per panel width (and split)
  int64_t max_nc = 0;
  for (auto& it : items) max_nc = std::max(max_nc, it.j1 - it.j0);
  const int64_t ncpad = (max_nc + NR - 1) / NR * NR;
  const int64_t MC = kMC / MR * MR;
  // The narrow order's A-panel prefetch is for weights that stream from memory (7x7 maps at
  // batch 1: 512 x 4608 = 9 MiB; Winograd F2 on 14x14 maps: 16 A matrices of up to 320 x 160):
  // A matrices within 1 MiB in all stay in L2 across items and runs, where the prefetches only
  // cost issue slots (Kim's convolutions).
  int64_t a_bytes = 0;
  for (size_t i = 0; i < probs.size(); ++i)
    if (i == 0 || probs[i].A != probs[i - 1].A) a_bytes += M * K * (int64_t)sizeof(float);
  const bool prefetch_a = a_bytes > (int64_t(1) << 20);

  const size_t bsize = (size_t)(std::min(kSgemmKC, std::max<int64_t>(K, 1)) * ncpad);
  int64_t max_rows = 0;
  for (auto& it : items) max_rows = std::max(max_rows, it.m1 - it.m0);
  const size_t csize = K > kSgemmKC ? (size_t)(max_rows * (ncpad + 16)) : 0;
  check_workspace(bsize);
  check_workspace(csize);
  ParallelFailure failure;

  const size_t ablk_size = lazy_a ? (size_t)(MC * kSgemmKC) : 0;  // a row block of A (wide order)
  parallel_run(nt, [&] {
    float* bbuf = workspace_nothrow(kSlotGemmB, bsize);
    float* ctile = csize ? workspace_nothrow(kSlotGemmC, csize) : nullptr;
    float* ablk = ablk_size ? workspace_nothrow(kSlotGemmA, ablk_size) : nullptr;
    alignas(64) float abuf[kMaxMR * kSgemmKC];  // one A panel packed here (lazy_a, narrow order)
    const bool ok = bbuf && (ctile || !csize) && (ablk || !ablk_size);
    if (!ok) failure.set();
#pragma omp for schedule(dynamic, 1)
    for (int64_t ii = 0; ii < (int64_t)items.size(); ++ii) {
      if (!ok) continue;
      const Item& it = items[ii];
      const GemmProblem& p = probs[it.problem];
      const int64_t nc = it.j1 - it.j0;
      if (K == 0) {  // C = bias (+ the activation): an empty sum.
        for (int64_t i = it.m0; i < it.m1; ++i)
          for (int64_t j = it.j0; j < it.j1; ++j) {
            float v = (p.bias_row ? p.bias_row[i] : 0.0f) + (p.bias_col ? p.bias_col[j] : 0.0f);
            if (p.residual) v += p.residual[i * p.ldc + j];
            p.C[i * p.ldc + j] = act.apply(v);
          }
        if (act.fn >= 0)
          for (int64_t i = it.m0; i < it.m1; ++i)
            kern.unary_chunk(act.fn, it.j1 - it.j0, p.C + i * p.ldc + it.j0, p.C + i * p.ldc + it.j0, act.a, act.b);
        continue;
      }
      const bool narrow_order = nc <= kNarrowNC || K <= kShallowK;  // A-panel-outer (see below)
      // With several depth blocks, partial sums go to a per-thread tile whose row stride does
      // not alias in L1 (C's own stride is often a multiple of 4 KiB, e.g. 2048 columns, which
      // puts all MR rows of a C block in one cache set); the tile is copied out once.
      const bool staged = K > kSgemmKC;
      float* cbase = staged ? ctile : p.C + it.m0 * p.ldc + it.j0;
      const int64_t ldc = staged ? ncpad + 16 : p.ldc;
      // One MR x NR block of C at row i, column panel jp: the micro-kernel with its epilogue.
      auto block = [&](int64_t i, int64_t jp, int64_t kc, const float* ap, const float* bp, int64_t ldb, bool first,
                       bool last, const float* prefetch = nullptr, float* b_copy = nullptr) {
        const int mr = (int)std::min<int64_t>(MR, M - i);
        const int nr = (int)std::min<int64_t>(NR, nc - jp * NR);
        const int64_t j = it.j0 + jp * NR;
        Epilogue ep;
        ep.bias_row = p.bias_row ? p.bias_row + i : nullptr;
        ep.bias_col = p.bias_col ? p.bias_col + j : nullptr;
        ep.residual = p.residual ? p.residual + i * p.ldc + j : nullptr;
        ep.ldr = p.ldc;
        ep.act = act;
        ep.prefetch = prefetch;
        ep.b_copy = b_copy;
        pk.run(kc, ap, bp, ldb, cbase + (i - it.m0) * ldc + (j - it.j0), ldc, mr, nr, !first, last, ep);
      };
      for (int64_t k0 = 0; k0 < K; k0 += kSgemmKC) {
        const int64_t kc = std::min(kSgemmKC, K - k0);
        const bool first = k0 == 0, last = k0 + kc >= K;
        // B read in place where it is a row-major matrix (whole panels only; a last partial panel
        // is packed, since reading its missing columns could run past the end of the input).
        int64_t ldb_direct = 0;
        const float* bdir = allow_direct ? p.B->direct(k0, it.j0, ldb_direct) : nullptr;
        const int64_t whole = bdir ? nc / NR : 0;  // panels read in place
        // A last panel that a column kernel computes is packed only as wide as that kernel reads
        // (zero-padded to 48 its k-th row was a cache line per float read: Winograd F2's 49
        // tiles on 14x14 maps leave one column).
        const int64_t jl = (nc - 1) / NR, rem = nc - jl * NR;
        const SgemmVariant &vl = *pk.uk[(size_t)rem], &vll = *pk.uk_last[(size_t)rem];
        const bool narrow_last = jl >= whole && vl.cols && vll.cols && vll.NR == vl.NR;
        const int64_t packed_end = narrow_last ? jl * NR : nc;
        // copy_first: panel jp's packed copy at bbuf + jp * kc * NR, written by its first use
        const bool copy_now = copy_first && whole > 0 && !narrow_order;
        const int64_t pbase = copy_now ? 0 : whole;  // packed panel jp at bbuf + (jp - pbase) * kc * NR
        if (whole * NR < packed_end)
          p.B->pack(k0, kc, it.j0 + whole * NR, packed_end - whole * NR, NR, bbuf + (whole - pbase) * kc * NR);
        if (narrow_last) p.B->pack(k0, kc, it.j0 + jl * NR, rem, vl.NR, bbuf + (jl - pbase) * kc * NR);
        auto bpanel = [&](int64_t jp, int64_t& ldb) -> const float* {
          ldb = jp < whole ? ldb_direct : (narrow_last && jp == jl) ? vl.NR : NR;
          return jp < whole ? bdir + jp * NR : bbuf + (jp - pbase) * kc * NR;
        };
        if (narrow_order) {
          // Narrow C (small feature maps at batch 1: 7x7 = 49 columns): each A panel is used
          // for all of the few B panels while it sits in L1, so the weights stream from memory
          // exactly once, and the next panels are prefetched into L2 meanwhile (A streams from
          // DRAM here: per panel only nc columns of work hide its latency). The prefetches go
          // out one per k step from inside the first block's micro-kernel (Epilogue::prefetch):
          // issued as a burst before the block they stalled on the line-fill buffers.
          // Shallow GEMMs (K <= 128: ResNet's 1x1 expansions at batch 8) take the same order for
          // their output: MR rows are written across the whole tile width in turn (long runs
          // per row) instead of 32 columns of every row per panel; with so little depth per
          // output the layer is bound by writing C.
          // An A packed here (lazy_a) is read once from its rows, which the hardware prefetcher
          // follows, into abuf: no software prefetch then.
          const int64_t pfloats = (int64_t)MR * kc;
          for (int64_t i = it.m0; i < it.m1; i += MR) {
            const float* ap = abuf;
            if (lazy_a)
              p.A->pack_panel(k0, kc, i / MR, abuf);
            else
              ap = p.A->panel(k0, kc, i / MR);
            // The panel kPrefetchPanels ahead, fetched from inside the first block's k loop.
            const float* pf =
                !lazy_a && prefetch_a && i + kPrefetchPanels * MR < it.m1 ? ap + kPrefetchPanels * pfloats : nullptr;
            for (int64_t jp = 0; jp * NR < nc; ++jp) {
              int64_t ldb;
              const float* bp = bpanel(jp, ldb);
              block(i, jp, kc, ap, bp, ldb, first, last, jp == 0 ? pf : nullptr);
            }
          }
          continue;
        }
        for (int64_t ic = it.m0; ic < it.m1; ic += MC) {
          const int64_t ie = std::min(it.m1, ic + MC);
          // lazy_a: the row block's panels packed into ablk (panel (i - ic) / MR at (i - ic) * kc).
          if (lazy_a)
            for (int64_t i = ic; i < ie; i += MR) p.A->pack_panel(k0, kc, i / MR, ablk + (i - ic) * kc);
          for (int64_t jp = 0; jp * NR < nc; ++jp) {
            int64_t ldb;
            const float* bp = bpanel(jp, ldb);
            float* copy = copy_now && jp < whole ? bbuf + jp * kc * NR : nullptr;  // see copy_first
            for (int64_t i = ic; i < ie; i += MR) {
              const float* ap = lazy_a ? ablk + (i - ic) * kc : p.A->panel(k0, kc, i / MR);
              if (!copy)
                block(i, jp, kc, ap, bp, ldb, first, last);
              else if (ic == it.m0 && i == ic)  // the first use reads B in place and writes the copy
                block(i, jp, kc, ap, bp, ldb, first, last, nullptr, copy);
              else
                block(i, jp, kc, ap, copy, NR, first, last);
            }
          }
        }
      }
      if (staged)
        for (int64_t i = it.m0; i < it.m1; ++i)
          std::memcpy(p.C + i * p.ldc + it.j0, cbase + (i - it.m0) * ldc, nc * sizeof(float));
    }
  });
  failure.rethrow();
}

void sgemm(int64_t M, int64_t N, int64_t K, const float* a, int64_t rsa, int64_t csa, const float* b, int64_t rsb,
           int64_t csb, float* c, int64_t ldc, const float* bias_row, const float* bias_col, bool relu) {
  PackedA A;
  describe_a(A, active_kernels(), M, K, a, rsa, csa);  // packed by sgemm_run, per panel or whole
  MatrixBSource B(b, rsb, csb);
  sgemm_run({GemmProblem{&A, &B, N, c, ldc, bias_row, bias_col}}, M, K, relu ? Activation::relu() : Activation::none());
}

}  // namespace pycnn
