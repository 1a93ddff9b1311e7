// conv2d by im2col + our SGEMM, without materializing the column matrix.
//
// Per image n and group g the convolution is C (Kg x Ho*Wo) = A (Kg x Cg*R*S) * B, where
// B(k, j) with k = (c*R + r)*S + s and j = oh*Wo + ow is x[n, g*Cg + c, oh*sh - pt + r*dh,
// ow*sw - pl + s*dw] (zero outside the image). Im2colBSource packs that view straight into the
// SGEMM's NR-column panels (im2col_pack.inl, vectorized per ISA), one KC x NC tile per thread,
// so the workspace is bounded and independent of the batch. C lands directly in y, with bias and
// ReLU fused into the SGEMM epilogue.
#include <algorithm>
#include <atomic>
#include <cstring>

#include "conv2d.h"
#include "pad_plane.h"
#include "subsample.h"
#include "pycnn/buffer.h"
#include "cpu_kernels.h"
#include "pycnn/parallel.h"

namespace pycnn {

namespace {

// The B view of one image's group; packing runs on the same ISA as the packed weights.
struct Im2colBSource final : BSource {
  const ConvParams& p;
  const float* x;  // first channel of this image's group: (Cg, H, W)
  Im2colPackFn fn;

  Im2colBSource(const ConvParams& p_, const float* x_, const CpuKernels& k) : p(p_), x(x_), fn(k.im2col_pack) {}

  void pack(int64_t k0, int64_t kc, int64_t j0, int64_t nc, int NR, float* dst) const override {
    fn(p, x, k0, kc, j0, nc, NR, dst);
  }
  // A pointwise convolution's B is x itself.
  const float* direct(int64_t k0, int64_t j, int64_t& ldb) const override {
    ldb = p.H * p.W;
    return p.pointwise() ? x + k0 * ldb + j : nullptr;
  }
};

// Stride-1 convolutions on a padded-width grid (implicit GEMM): the image is copied once into a
// zero-padded plane xp (Cg, Hp, Wp) and the GEMM computes Ho x Wp columns, j = oh*Wp + ow; then
// B(k = (c, r, s), j) = xp[c][j + r*dh*Wp + s*dw], so each packed row is one contiguous copy (no
// runs, no bounds). Columns with ow >= Wo read past their row and are dropped when the result is
// copied into y; every valid column reads inside its plane.
struct PaddedGridBSource final : BSource {
  const float* xp;  // (Cg, Hp, Wp) + slack
  int64_t HpWp, Wp, R, S, dh, dw;

  PaddedGridBSource(const float* xp_, int64_t HpWp_, int64_t Wp_, const ConvParams& p)
      : xp(xp_), HpWp(HpWp_), Wp(Wp_), R(p.R), S(p.S), dh(p.dil_h), dw(p.dil_w) {}

  void pack(int64_t k0, int64_t kc, int64_t j0, int64_t nc, int NR, float* dst) const override {
    const int64_t RS = R * S;
    for (int64_t pj = 0; pj * NR < nc; ++pj) {
      const int64_t jb = j0 + pj * NR, nr = std::min<int64_t>(NR, nc - pj * NR);
      float* d = dst + pj * kc * NR;
      int64_t c = k0 / RS, r = (k0 / S) % R, s = k0 % S;
      for (int64_t k = 0; k < kc; ++k) {
        std::memcpy(d + k * NR, xp + c * HpWp + r * dh * Wp + s * dw + jb, (size_t)nr * sizeof(float));
        if (nr < NR) std::fill(d + k * NR + nr, d + (k + 1) * NR, 0.0f);
        if (++s == S) {
          s = 0;
          if (++r == R) {
            r = 0;
            ++c;
          }
        }
      }
    }
  }
};

// The padded grid pays Wp / Wo more GEMM columns to save the packing of row runs (which cost
// 24-45% of the time on 56x56 and 7x7 maps): used for stride 1, kernels wider than 1x1, and a
// halo of at most half the output width.
bool use_padded_grid(const ConvParams& p) {
  const int64_t Wp = p.Wo + (p.S - 1) * p.dil_w;
  return p.stride_h == 1 && p.stride_w == 1 && p.R * p.S > 1 && 2 * Wp <= 3 * p.Wo;
}

void conv2d_im2col_padded_grid(const ConvParams& p, const float* x, const Im2colWeights& w, const float* bias, float* y,
                               Activation act, const float* residual) {
  const int64_t Kg = p.Kg(), Cg = p.Cg(), HoWo = p.Ho * p.Wo;
  const int64_t Wp = p.Wo + (p.S - 1) * p.dil_w, Hp = p.Ho + (p.R - 1) * p.dil_h, HpWp = Hp * Wp;
  const int64_t cols = p.Ho * Wp;
  const int64_t slack = (p.S - 1) * p.dil_w + 64;  // the last plane's garbage columns read past it
  // Images per chunk: padded inputs and staged outputs of a chunk within ~32 MiB.
  const int64_t per_image = (p.C * HpWp + p.K * cols) * (int64_t)sizeof(float);
  const int64_t chunk = std::max<int64_t>(1, std::min<int64_t>(p.N, (32ll << 20) / std::max<int64_t>(per_image, 1)));
  float* xp = workspace(kSlotConvIn, (size_t)(chunk * p.C * HpWp + slack));
  float* cst = workspace(kSlotConvOut, (size_t)(chunk * p.K * cols));
  const int nt = threads_for(p.flops(), 1 << 30);
  for (int64_t n0 = 0; n0 < p.N; n0 += chunk) {
    const int64_t nn = std::min(chunk, p.N - n0);
    parallel_run(nt, [&] {
#pragma omp for schedule(static)
      for (int64_t t = 0; t < nn * p.C; ++t)  // zero-padded copy, plane t = (image, channel)
        pad_plane(x + (n0 * p.C + t) * p.H * p.W, p.H, p.W, p.pad_t, p.pad_l, xp + t * HpWp, Hp, Wp);
    });
    std::fill(xp + nn * p.C * HpWp, xp + nn * p.C * HpWp + slack, 0.0f);
    std::vector<PaddedGridBSource> srcs;
    srcs.reserve((size_t)(nn * p.groups));
    std::vector<GemmProblem> probs;
    for (int64_t n = 0; n < nn; ++n)
      for (int64_t g = 0; g < p.groups; ++g) {
        srcs.emplace_back(xp + (n * p.C + g * Cg) * HpWp, HpWp, Wp, p);
        probs.push_back(GemmProblem{&w.groups[(size_t)g], &srcs.back(), cols, cst + (n * p.K + g * Kg) * cols, cols,
                                    bias ? bias + g * Kg : nullptr, nullptr});
      }
    // With a residual, it and the activation are applied on the copy-out (its layout is y's, not the grid's).
    sgemm_run(probs, Kg, Cg * p.R * p.S, residual ? Activation::none() : act);
    parallel_run(nt, [&] {
#pragma omp for schedule(static)
      for (int64_t t = 0; t < nn * p.K * p.Ho; ++t) {  // drop the halo columns: row t = (image, k, oh)
        const int64_t oh = t % p.Ho, nk = t / p.Ho;
        float* yr = y + (n0 * p.K + nk) * HoWo + oh * p.Wo;
        const float* cr = cst + nk * cols + oh * Wp;
        if (!residual) {
          std::memcpy(yr, cr, (size_t)p.Wo * sizeof(float));
          continue;
        }
        const float* rr = residual + (yr - y);
        for (int64_t ow = 0; ow < p.Wo; ++ow) {
          yr[ow] = act.apply(cr[ow] + rr[ow]);  // NaN stays NaN
        }
        if (act.fn >= 0) w.groups[0].kernels->unary_chunk(act.fn, p.Wo, yr, yr, act.a, act.b);
      }
    });
  }
}

// One GEMM per (image, group), B packed straight from x (the general path).
void conv2d_im2col_images(const ConvParams& p, const float* x, const Im2colWeights& w, const float* bias, float* y,
                          Activation act, const float* residual) {
  const int64_t Kg = p.Kg(), Cg = p.Cg(), HoWo = p.Ho * p.Wo;
  std::vector<Im2colBSource> sources;
  sources.reserve((size_t)(p.N * p.groups));
  std::vector<GemmProblem> probs;
  probs.reserve((size_t)(p.N * p.groups));
  for (int64_t n = 0; n < p.N; ++n)
    for (int64_t g = 0; g < p.groups; ++g) {
      sources.emplace_back(p, x + (n * p.C + g * Cg) * p.H * p.W, *w.groups[(size_t)g].kernels);
      probs.push_back(GemmProblem{&w.groups[(size_t)g], &sources.back(), HoWo, y + (n * p.K + g * Kg) * HoWo, HoWo,
                                  bias ? bias + g * Kg : nullptr, nullptr,
                                  residual ? residual + (n * p.K + g * Kg) * HoWo : nullptr});
    }
  sgemm_run(probs, Kg, Cg * p.R * p.S, act);
}

// Strided 1x1 convolutions without padding (ResNet's downsamples): packing panels straight from
// x would gather every sw-th float of every sh-th row per packed row; the pointwise GEMMs run on
// subsampled planes instead (subsample.h).
void conv2d_im2col_subsampled(const ConvParams& p, const float* x, const Im2colWeights& w, const float* bias, float* y,
                              Activation act, const float* residual) {
  const int64_t HoWo = p.Ho * p.Wo;
  for_subsampled_chunks(p, x, [&](const ConvParams& q, const float* xs, int64_t n0) {
    const int64_t off = n0 * p.K * HoWo;
    conv2d_im2col_images(q, xs, w, bias, y + off, act, residual ? residual + off : nullptr);
  });
}

}  // namespace

static std::atomic<int64_t> g_transforms{0};
int64_t weight_transform_count() { return g_transforms.load(); }
void count_weight_transform() { g_transforms.fetch_add(1); }

void conv2d_im2col_prepare(const ConvParams& p, const float* w, Im2colWeights& out) {
  count_weight_transform();
  const CpuKernels& kernels = active_kernels();  // packed for, and run with, the ISA in use now
  const int64_t Kg = p.Kg(), CRS = p.Cg() * p.R * p.S;
  out.groups.clear();
  out.groups.resize((size_t)p.groups);
  for (int64_t g = 0; g < p.groups; ++g) pack_a(out.groups[(size_t)g], kernels, Kg, CRS, w + g * Kg * CRS, CRS, 1);
}

void conv2d_im2col(const ConvParams& p, const float* x, const Im2colWeights& w, const float* bias, float* y,
                   Activation act, const float* residual) {
  if (use_padded_grid(p)) return conv2d_im2col_padded_grid(p, x, w, bias, y, act, residual);
  if (subsampled_pointwise(p)) return conv2d_im2col_subsampled(p, x, w, bias, y, act, residual);
  conv2d_im2col_images(p, x, w, bias, y, act, residual);
}

}  // namespace pycnn
