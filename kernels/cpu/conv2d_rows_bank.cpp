// A bank of whole-row convolutions, each reduced by the max over its map, in one pass (a
// sentence CNN's filters of several heights over word vectors, then max over time: Kim's CNN).
//
// x is (N, 1, H, W); conv j has K_j filters of R_j x W (the window spans whole input rows), stride
// sh down the rows, no padding: per image its im2col matrix B_j (R_j*W x Ho_j) has column t =
// x[n, t*sh*W : t*sh*W + R_j*W], one contiguous run. Every B_j is a top-left block of the B of
// the deepest window (rows past the plane zero), so one B is packed per image, block of depth by
// block, and every conv's A panels multiply the rows they need while the block sits in L1.
// Separate im2col convs packed each B_j (3600 rows for Kim's 3, 4, 5 against 1500 here) and ran
// three parallel regions per batch.
//
// Work: units (image, conv, row panel of MR filters), split over the threads in contiguous
// shares of equal FMA count, so at batch 1 the threads share one image's convs and at batch 8
// they take whole images. A thread packs, per image in its share, the B rows and columns its
// units there need. Each unit's MR x Ho_j outputs accumulate in the thread's C tiles (the
// epilogue adds the bias and applies ReLU on the last depth block), then the max of each row
// goes to y[n * ldy + off_j + filter], the concat of the maxima.
#include <algorithm>
#include <vector>

#include "conv2d.h"
#include "cpu_kernels.h"
#include "ops_cpu.h"
#include "pycnn/buffer.h"
#include "pycnn/parallel.h"

namespace pycnn {

namespace {

// Depth of B packed per step: a 48-column panel block of 256 rows is 48 KiB, all of L1 (128 rows
// ran the same).
constexpr int64_t kBankKB = 256;
static_assert(kSgemmKC % kBankKB == 0, "a B block must lie inside one packed A block");

struct Unit {
  int64_t n, ip;  // image, row panel
  int j;          // conv
};

}  // namespace

void conv2d_rows_bank_max(int64_t N, int64_t H, int64_t W, int64_t sh, const float* x,
                          const std::vector<RowsBankConv>& convs, float* y, int64_t ldy) {
  if (N == 0 || convs.empty()) return;
  const CpuKernels& kern = *convs[0].A->kernels;  // all packed for one ISA (checked by the binding)
  const int MR = convs[0].A->MR, NR = kern.sgemm_nr(MR);
  const int J = (int)convs.size();
  const int64_t HW = H * W, jstride = sh * W;
  std::vector<int64_t> Ho((size_t)J), D((size_t)J), off((size_t)J), panels((size_t)J);
  int64_t sum_panels = 0, Ho_max = 0;
  int64_t o = 0;
  for (int j = 0; j < J; o += convs[(size_t)j].A->M, ++j) {
    const PackedA& A = *convs[(size_t)j].A;
    D[(size_t)j] = A.K;  // R_j * W
    Ho[(size_t)j] = (H - convs[(size_t)j].R) / sh + 1;
    off[(size_t)j] = o;
    panels[(size_t)j] = A.Mpad / MR;
    sum_panels += panels[(size_t)j];
    Ho_max = std::max(Ho_max, Ho[(size_t)j]);
  }
  // Units in order (image, conv, panel) and the FMAs before each (a panel's rows as its kernel
  // computes them: an 8-row AVX-512 panel with <= 4 real rows runs a 4-row kernel).
  std::vector<Unit> units;
  std::vector<double> before;
  units.reserve((size_t)(N * sum_panels));
  double total = 0.0;
  for (int64_t n = 0; n < N; ++n)
    for (int j = 0; j < J; ++j)
      for (int64_t ip = 0; ip < panels[(size_t)j]; ++ip) {
        const int64_t mr = std::min<int64_t>(MR, convs[(size_t)j].A->M - ip * MR);
        const int64_t cols = (Ho[(size_t)j] + NR - 1) / NR * NR;
        units.push_back({n, ip, j});
        before.push_back(total);
        total += double(std::max<int64_t>(mr, MR / 2)) * D[(size_t)j] * cols;
      }
  before.push_back(total);
  const int nt = threads_for(2.0 * total, (int64_t)units.size());
  const int64_t ncpad = (Ho_max + NR - 1) / NR * NR, ldc = ncpad + 16;
  const size_t bsize = (size_t)(kBankKB * ncpad), csize = (size_t)(sum_panels * MR * ldc);
  check_workspace(bsize);
  check_workspace(csize);
  const WholeRowsPackFn pack = kern.whole_rows_pack;
  ParallelFailure failure;
  parallel_run(nt, [&] {
    const int t = omp_get_thread_num(), nth = omp_get_num_threads();
    float* bbuf = workspace_nothrow(kSlotGemmB, bsize);
    float* cbuf = workspace_nothrow(kSlotGemmC, csize);
    if (!bbuf || !cbuf) failure.set();
    // This thread's units: [u0, u1), cut where the FMAs before reach t / nth of the total.
    auto cut = [&](int i) {
      return int64_t(std::lower_bound(before.begin(), before.end() - 1, total * i / nth) - before.begin());
    };
    const int64_t u0 = cut(t), u1 = t + 1 == nth ? (int64_t)units.size() : cut(t + 1);
    for (int64_t g0 = u0; bbuf && cbuf && g0 < u1;) {
      // The units of one image: their deepest window and widest map.
      const int64_t n = units[(size_t)g0].n;
      int64_t g1 = g0, Dg = 0, Hog = 0;
      for (; g1 < u1 && units[(size_t)g1].n == n; ++g1) {
        Dg = std::max(Dg, D[(size_t)units[(size_t)g1].j]);
        Hog = std::max(Hog, Ho[(size_t)units[(size_t)g1].j]);
      }
      const float* xn = x + n * HW;
      for (int64_t kb0 = 0; kb0 < Dg; kb0 += kBankKB) {
        const int64_t kcB = std::min(kBankKB, Dg - kb0);
        // One channel: the run length (RS) is the whole plane.
        pack(xn, HW, HW, jstride, kb0, kcB, 0, Hog, NR, bbuf);
        for (int64_t u = g0; u < g1; ++u) {
          const Unit& un = units[(size_t)u];
          const RowsBankConv& cv = convs[(size_t)un.j];
          const int64_t Dj = D[(size_t)un.j], Hoj = Ho[(size_t)un.j];
          if (kb0 >= Dj) continue;
          const int64_t kc = std::min(kcB, Dj - kb0);
          const int64_t k0a = kb0 / kSgemmKC * kSgemmKC, kcf = std::min(kSgemmKC, Dj - k0a);
          const float* ap = cv.A->panel(k0a, kcf, un.ip) + (kb0 - k0a) * MR;
          const int mr = (int)std::min<int64_t>(MR, cv.A->M - un.ip * MR);
          float* ct = cbuf + (u - g0) * MR * ldc;
          Epilogue ep;
          ep.bias_row = cv.bias ? cv.bias + un.ip * MR : nullptr;
          ep.act = cv.relu ? Activation::relu() : Activation::none();
          for (int64_t jp = 0; jp * NR < Hoj; ++jp) {
            const int nr = (int)std::min<int64_t>(NR, Hoj - jp * NR);
            sgemm_select(kern, MR, nr, mr)
                .fn(kc, ap, bbuf + jp * kcB * NR, NR, ct + jp * NR, ldc, mr, nr, kb0 > 0, kb0 + kc >= Dj, ep);
          }
        }
      }
      for (int64_t u = g0; u < g1; ++u) {
        const Unit& un = units[(size_t)u];
        const int mr = (int)std::min<int64_t>(MR, convs[(size_t)un.j].A->M - un.ip * MR);
        float* yr = y + n * ldy + off[(size_t)un.j] + un.ip * MR;
        for (int i = 0; i < mr; ++i) yr[i] = nan_max(cbuf + ((u - g0) * MR + i) * ldc, Ho[(size_t)un.j]);
      }
      g0 = g1;
    }
  });
  failure.rethrow();
}

}  // namespace pycnn
