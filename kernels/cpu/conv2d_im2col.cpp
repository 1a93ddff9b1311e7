// conv2d by im2col + our SGEMM, without materializing the column matrix.
//
// Per image n and group g the convolution is C (Kg x Ho*Wo) = A (Kg x Cg*R*S) * B, where
// B(k, j) with k = (c*R + r)*S + s and j = oh*Wo + ow is x[n, g*Cg + c, oh*sh - pt + r*dh,
// ow*sw - pl + s*dw] (zero outside the image). Im2colBSource packs that view straight into the
// SGEMM's NR-column panels (im2col_pack.inl, vectorized per ISA), one KC x NC tile per thread,
// so the workspace is bounded and independent of the batch. C lands directly in y, with bias and
// ReLU fused into the SGEMM epilogue.
#include <atomic>

#include "conv2d.h"
#include "pycnn/isa.h"

namespace pycnn {

void im2col_pack_avx512(const ConvParams&, const float*, int64_t, int64_t, int64_t, int64_t, int, float*);
void im2col_pack_avx2(const ConvParams&, const float*, int64_t, int64_t, int64_t, int64_t, int, float*);
void im2col_pack_generic(const ConvParams&, const float*, int64_t, int64_t, int64_t, int64_t, int, float*);

namespace {

using PackFn = void (*)(const ConvParams&, const float*, int64_t, int64_t, int64_t, int64_t, int, float*);

PackFn pack_fn(Isa isa) {
  switch (isa) {
    case Isa::avx512: return im2col_pack_avx512;
    case Isa::avx2: return im2col_pack_avx2;
    default: return im2col_pack_generic;
  }
}

// The B view of one image's group; packing runs on the same ISA as the packed weights.
struct Im2colBSource final : BSource {
  const ConvParams& p;
  const float* x;  // first channel of this image's group: (Cg, H, W)
  PackFn fn;

  Im2colBSource(const ConvParams& p_, const float* x_, Isa isa) : p(p_), x(x_), fn(pack_fn(isa)) {}

  void pack(int64_t k0, int64_t kc, int64_t j0, int64_t nc, int NR, float* dst) const override {
    fn(p, x, k0, kc, j0, nc, NR, dst);
  }
};

}  // namespace

static std::atomic<int64_t> g_transforms{0};
int64_t weight_transform_count() { return g_transforms.load(); }
void count_weight_transform() { g_transforms.fetch_add(1); }

void conv2d_im2col_prepare(const ConvParams& p, const float* w, Im2colWeights& out) {
  count_weight_transform();
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
      sources.emplace_back(p, x + (n * p.C + g * Cg) * p.H * p.W, w.groups[(size_t)g].isa);
      probs.push_back(GemmProblem{&w.groups[(size_t)g], &sources.back(), HoWo,
                                  y + (n * p.K + g * Kg) * HoWo, HoWo,
                                  bias ? bias + g * Kg : nullptr, nullptr});
    }
  sgemm_run(probs, Kg, Cg * p.R * p.S, act == Activation::relu);
}

}  // namespace pycnn
