// Winograd convolution: the filter transform (done once, in double precision), the run with the
// kernels of the ISA the weights were packed for (conv2d_winograd__<isa>.cpp), and the transforms
// exposed for the tests.
#include <stdexcept>
#include <vector>

#include "conv2d.h"
#include "cpu_kernels.h"
#include "winograd_matrices.h"

namespace pycnn {

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
  out.kernels = &active_kernels();
  out.K = p.K;
  out.Cg = Cg;
  out.groups = p.groups;
  out.U.clear();
  out.U.resize((size_t)(p.groups * a2));
  std::vector<float> U((size_t)(a2 * Kg * Cg));
  for (int64_t g = 0; g < p.groups; ++g) {
    winograd_filter_transform(m, Kg, Cg, w + g * Kg * Cg * 9, U.data());
    for (int64_t xi = 0; xi < a2; ++xi)
      pack_a(out.U[(size_t)(g * a2 + xi)], *out.kernels, Kg, Cg, U.data() + xi * Kg * Cg, Cg, 1);
  }
}

void conv2d_winograd(const ConvParams& p, const float* x, const WinogradWeights& w, const float* bias, float* y,
                     Activation act, const float* residual, bool y_blocked) {
  if (y_blocked && (p.groups != 1 || p.K % 16 != 0 || residual))
    throw std::invalid_argument("layout: a blocked Winograd output needs groups 1, 16 | K and no residual");
  w.kernels->conv2d_winograd(p, x, w, bias, y, act, residual, y_blocked);
}

void winograd_input_transform(const ConvParams& p, int m, const float* x, float* V) {
  active_kernels().winograd_input(p, m, x, V);
}

void winograd_output_transform(const ConvParams& p, int m, const float* M, float* y) {
  active_kernels().winograd_output(p, m, M, y);
}

}  // namespace pycnn
