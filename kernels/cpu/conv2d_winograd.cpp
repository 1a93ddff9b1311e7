// Winograd convolution: the filter transform (done once, in double precision), the run with the
// kernels of the ISA the weights were packed for (conv2d_winograd__<isa>.cpp), and the transforms
// exposed for the tests.
#include <stdexcept>
#include <string>
#include <vector>

#include "conv2d.h"
#include "cpu_kernels.h"
#include "winograd_matrices.h"

namespace pycnn {

namespace {

// w (K, Cg, r, r) -> U (alpha^2, K, Cg), in double.
template <int m, int r>
void filter_transform_m(int64_t K, int64_t Cg, const float* w, float* U) {
  using Mat = WinogradMatrices<m, r>;
  constexpr int a = Mat::a;
  for (int64_t k = 0; k < K; ++k)
    for (int64_t c = 0; c < Cg; ++c) {
      const float* g = w + (k * Cg + c) * r * r;
      double t[a][r];  // G g
      for (int i = 0; i < a; ++i)
        for (int j = 0; j < r; ++j) {
          double s = 0;
          for (int q = 0; q < r; ++q) s += Mat::G[i][q] * g[q * r + j];
          t[i][j] = s;
        }
      for (int i = 0; i < a; ++i)
        for (int j = 0; j < a; ++j) {
          double u = 0;
          for (int q = 0; q < r; ++q) u += t[i][q] * Mat::G[j][q];
          U[((int64_t)(i * a + j) * K + k) * Cg + c] = (float)u;
        }
    }
}

}  // namespace

void winograd_filter_transform(int m, int r, int64_t K, int64_t Cg, const float* w, float* U) {
  if (r == 5) {
    if (m == 2) return filter_transform_m<2, 5>(K, Cg, w, U);
    if (m == 4) return filter_transform_m<4, 5>(K, Cg, w, U);
  } else if (r == 3) {
    if (m == 2) return filter_transform_m<2, 3>(K, Cg, w, U);
    if (m == 4) return filter_transform_m<4, 3>(K, Cg, w, U);
    if (m == 6) return filter_transform_m<6, 3>(K, Cg, w, U);
  }
  throw std::invalid_argument("Winograd: no F(" + std::to_string(m) + "x" + std::to_string(m) + "," +
                              std::to_string(r) + "x" + std::to_string(r) + ")");
}

void conv2d_winograd_prepare(const ConvParams& p, const float* w, int m, WinogradWeights& out) {
  const int r = (int)p.R;
  if (p.S != p.R || (r != 3 && r != 5) || (r == 5 && m == 6))
    throw std::invalid_argument("Winograd: no F(" + std::to_string(m) + "x" + std::to_string(m) + "," +
                                std::to_string(p.R) + "x" + std::to_string(p.S) + ")");
  count_weight_transform();
  const int a = m + r - 1;
  const int64_t a2 = (int64_t)a * a, Kg = p.Kg(), Cg = p.Cg();
  out.m = m;
  out.r = r;
  out.kernels = &active_kernels();
  out.K = p.K;
  out.Cg = Cg;
  out.groups = p.groups;
  out.U.clear();
  out.U.resize((size_t)(p.groups * a2));
  std::vector<float> U((size_t)(a2 * Kg * Cg));
  for (int64_t g = 0; g < p.groups; ++g) {
    winograd_filter_transform(m, r, Kg, Cg, w + g * Kg * Cg * r * r, U.data());
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
