// conv2d by im2col + our SGEMM, without materializing the column matrix.
//
// Per image n and group g the convolution is C (Kg x Ho*Wo) = A (Kg x Cg*R*S) * B, where
// B(k, j) with k = (c*R + r)*S + s and j = oh*Wo + ow is x[n, g*Cg + c, oh*sh - pt + r*dh,
// ow*sw - pl + s*dw] (zero outside the image). Im2colBSource packs that view straight into the
// SGEMM's NR-column panels, one KC x NC tile per thread, so the workspace is bounded and
// independent of the batch. Each panel's columns are split into runs that share an output row,
// and a run is a contiguous copy when the stride is 1 (the common case) and a strided gather
// otherwise. C lands directly in y, with bias and ReLU fused into the SGEMM epilogue.
#include <algorithm>
#include <cstring>

#include "conv2d.h"
#include "pycnn/isa.h"

namespace pycnn {

namespace {

struct Im2colBSource final : BSource {
  const ConvParams& p;
  const float* x;  // first channel of this image's group: (Cg, H, W)

  Im2colBSource(const ConvParams& p_, const float* x_) : p(p_), x(x_) {}

  void pack(int64_t k0, int64_t kc, int64_t j0, int64_t nc, int NR, float* dst) const override {
    const int64_t RS = p.R * p.S, HW = p.H * p.W;
    const bool pointwise = p.R == 1 && p.S == 1 && p.stride_h == 1 && p.stride_w == 1 &&
                           p.pad_t == 0 && p.pad_l == 0 && p.Ho == p.H && p.Wo == p.W;
    for (int64_t pj = 0; pj * NR < nc; ++pj) {
      const int64_t jb = j0 + pj * NR;
      const int64_t nr = std::min<int64_t>(NR, nc - pj * NR);
      float* d = dst + pj * kc * NR;
      if (pointwise) {  // 1x1 stride 1: B is x itself, (Cg, H*W).
        for (int64_t k = 0; k < kc; ++k) {
          std::memcpy(d + k * NR, x + (k0 + k) * HW + jb, nr * sizeof(float));
          std::fill(d + k * NR + nr, d + (k + 1) * NR, 0.0f);
        }
        continue;
      }
      // Runs of columns that share an output row: (oh, first ow, length, offset in panel).
      struct Run { int64_t oh, ow, len, off; };
      Run runs[64];
      int nruns = 0;
      for (int64_t off = 0; off < nr;) {
        const int64_t j = jb + off, oh = j / p.Wo, ow = j % p.Wo;
        const int64_t len = std::min<int64_t>(nr - off, p.Wo - ow);
        runs[nruns++] = {oh, ow, len, off};
        off += len;
      }
      int64_t c = k0 / RS, r = (k0 / p.S) % p.R, s = k0 % p.S;
      for (int64_t k = 0; k < kc; ++k) {
        float* drow = d + k * NR;
        const float* xc = x + c * HW;
        for (int ri = 0; ri < nruns; ++ri) {
          const Run& run = runs[ri];
          float* o = drow + run.off;
          const int64_t ih = run.oh * p.stride_h - p.pad_t + r * p.dil_h;
          if (ih < 0 || ih >= p.H) {
            std::fill(o, o + run.len, 0.0f);
            continue;
          }
          const float* xr = xc + ih * p.W;
          const int64_t iw0 = run.ow * p.stride_w - p.pad_l + s * p.dil_w;
          if (p.stride_w == 1) {
            // Columns t with 0 <= iw0 + t < W are inside the image.
            const int64_t lo = std::clamp<int64_t>(-iw0, 0, run.len);
            const int64_t hi = std::clamp<int64_t>(p.W - iw0, lo, run.len);
            std::fill(o, o + lo, 0.0f);
            std::memcpy(o + lo, xr + iw0 + lo, (hi - lo) * sizeof(float));
            std::fill(o + hi, o + run.len, 0.0f);
          } else {
            for (int64_t t = 0; t < run.len; ++t) {
              const int64_t iw = iw0 + t * p.stride_w;
              o[t] = (iw >= 0 && iw < p.W) ? xr[iw] : 0.0f;
            }
          }
        }
        std::fill(drow + nr, drow + NR, 0.0f);
        if (++s == p.S) {
          s = 0;
          if (++r == p.R) {
            r = 0;
            ++c;
          }
        }
      }
    }
  }
};

}  // namespace

void conv2d_im2col_prepare(const ConvParams& p, const float* w, Im2colWeights& out) {
  const int64_t Kg = p.Kg(), CRS = p.Cg() * p.R * p.S;
  out.groups.clear();
  out.groups.resize((size_t)p.groups);
  for (int64_t g = 0; g < p.groups; ++g)
    pack_a(out.groups[(size_t)g], active_isa(), Kg, CRS, w + g * Kg * CRS, CRS, 1);
}

void conv2d_im2col(const ConvParams& p, const float* x, const Im2colWeights& w, const float* bias,
                   float* y, Activation act) {
  const int64_t Kg = p.Kg(), Cg = p.Cg(), HoWo = p.Ho * p.Wo;
  std::vector<Im2colBSource> sources;
  sources.reserve((size_t)(p.N * p.groups));
  std::vector<GemmProblem> probs;
  probs.reserve((size_t)(p.N * p.groups));
  for (int64_t n = 0; n < p.N; ++n)
    for (int64_t g = 0; g < p.groups; ++g) {
      sources.emplace_back(p, x + (n * p.C + g * Cg) * p.H * p.W);
      probs.push_back(GemmProblem{&w.groups[(size_t)g], &sources.back(), HoWo,
                                  y + (n * p.K + g * Kg) * HoWo, HoWo,
                                  bias ? bias + g * Kg : nullptr, nullptr});
    }
  sgemm_run(probs, Kg, Cg * p.R * p.S, act == Activation::relu);
}

}  // namespace pycnn
