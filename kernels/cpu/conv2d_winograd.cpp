// Winograd convolution: the filter transform (done once, in double precision), the run-time ISA
// dispatch of the per-ISA kernels (conv2d_winograd__<isa>.cpp), and the transforms exposed for
// the tests.
#include <stdexcept>
#include <vector>

#include "conv2d.h"
#include "winograd_matrices.h"

namespace pycnn {

#define PYCNN_WINO_DECL(isa)                                                                      \
  void conv2d_winograd_##isa(const ConvParams&, const float*, const WinogradWeights&, const float*, \
                             float*, bool, const float*, bool);                                    \
  void winograd_input_##isa(const ConvParams&, int, const float*, float*);                        \
  void winograd_output_##isa(const ConvParams&, int, const float*, float*);
PYCNN_WINO_DECL(avx512)
PYCNN_WINO_DECL(avx2)
PYCNN_WINO_DECL(generic)

namespace {

template <int m>
void filter_transform_m(int64_t K, int64_t Cg, const float* w, float* U) {
  using Mat = WinogradMatrices<m>;
  constexpr int a = Mat::a;
  for (int64_t k = 0; k < K; ++k)
    for (int64_t c = 0; c < Cg; ++c) {
      const float* g = w + (k * Cg + c) * 9;
      double t[a][3];  // G g
      for (int i = 0; i < a; ++i)
        for (int j = 0; j < 3; ++j)
          t[i][j] = Mat::G[i][0] * g[0 * 3 + j] + Mat::G[i][1] * g[1 * 3 + j] + Mat::G[i][2] * g[2 * 3 + j];
      for (int i = 0; i < a; ++i)
        for (int j = 0; j < a; ++j) {
          const double u = t[i][0] * Mat::G[j][0] + t[i][1] * Mat::G[j][1] + t[i][2] * Mat::G[j][2];
          U[((int64_t)(i * a + j) * K + k) * Cg + c] = (float)u;
        }
    }
}

}  // namespace

void winograd_filter_transform(int m, int64_t K, int64_t Cg, const float* w, float* U) {
  if (m == 2) return filter_transform_m<2>(K, Cg, w, U);
  if (m == 4) return filter_transform_m<4>(K, Cg, w, U);
  return filter_transform_m<6>(K, Cg, w, U);
}

void conv2d_winograd_prepare(const ConvParams& p, const float* w, int m, WinogradWeights& out) {
  count_weight_transform();
  const int a = m + 2;
  const int64_t a2 = (int64_t)a * a, Kg = p.Kg(), Cg = p.Cg();
  out.m = m;
  out.isa = active_isa();
  out.K = p.K;
  out.Cg = Cg;
  out.groups = p.groups;
  out.U.clear();
  out.U.resize((size_t)(p.groups * a2));
  std::vector<float> U((size_t)(a2 * Kg * Cg));
  for (int64_t g = 0; g < p.groups; ++g) {
    winograd_filter_transform(m, Kg, Cg, w + g * Kg * Cg * 9, U.data());
    for (int64_t xi = 0; xi < a2; ++xi)
      pack_a(out.U[(size_t)(g * a2 + xi)], out.isa, Kg, Cg, U.data() + xi * Kg * Cg, Cg, 1);
  }
}

void conv2d_winograd(const ConvParams& p, const float* x, const WinogradWeights& w, const float* bias,
                     float* y, Activation act, const float* residual, bool y_blocked) {
  if (y_blocked && (p.groups != 1 || p.K % 16 != 0 || residual))
    throw std::invalid_argument("layout: a blocked Winograd output needs groups 1, 16 | K and no residual");
  const bool relu = act == Activation::relu;
  switch (w.isa) {
    case Isa::avx512: return conv2d_winograd_avx512(p, x, w, bias, y, relu, residual, y_blocked);
    case Isa::avx2: return conv2d_winograd_avx2(p, x, w, bias, y, relu, residual, y_blocked);
    default: return conv2d_winograd_generic(p, x, w, bias, y, relu, residual, y_blocked);
  }
}

void winograd_input_transform(const ConvParams& p, int m, const float* x, float* V) {
  switch (active_isa()) {
    case Isa::avx512: return winograd_input_avx512(p, m, x, V);
    case Isa::avx2: return winograd_input_avx2(p, m, x, V);
    default: return winograd_input_generic(p, m, x, V);
  }
}

void winograd_output_transform(const ConvParams& p, int m, const float* M, float* y) {
  switch (active_isa()) {
    case Isa::avx512: return winograd_output_avx512(p, m, M, y);
    case Isa::avx2: return winograd_output_avx2(p, m, M, y);
    default: return winograd_output_generic(p, m, M, y);
  }
}

}  // namespace pycnn
