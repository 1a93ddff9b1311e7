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

// w (K, Cg, rh, rw) -> U (ah aw, K, Cg), U = G_h g G_w^T per (k, c), in double.
template <int mh, int rh, int mw, int rw>
void filter_transform_t(int64_t K, int64_t Cg, const float* w, float* U) {
  using MatH = WinogradMatrices<mh, rh>;
  using MatW = WinogradMatrices<mw, rw>;
  constexpr int ah = MatH::a, aw = MatW::a;
  for (int64_t k = 0; k < K; ++k)
    for (int64_t c = 0; c < Cg; ++c) {
      const float* g = w + (k * Cg + c) * rh * rw;
      double t[ah][rw];  // G_h g
      for (int i = 0; i < ah; ++i)
        for (int j = 0; j < rw; ++j) {
          double s = 0;
          for (int q = 0; q < rh; ++q) s += MatH::G[i][q] * g[q * rw + j];
          t[i][j] = s;
        }
      for (int i = 0; i < ah; ++i)
        for (int j = 0; j < aw; ++j) {
          double u = 0;
          for (int q = 0; q < rw; ++q) u += t[i][q] * MatW::G[j][q];
          U[((int64_t)(i * aw + j) * K + k) * Cg + c] = (float)u;
        }
    }
}

std::string no_tile(int m, int64_t R, int64_t S) {
  return "Winograd: no tile of output size " + std::to_string(m) + " for a " + std::to_string(R) + "x" +
         std::to_string(S) + " kernel";
}

}  // namespace

int winograd_alpha_product(int m, int64_t R, int64_t S) {
  int a2 = 0;
  if (!with_winograd_tile(m, R, S, [&](auto t) {
        using T = decltype(t);
        a2 = (T::mh + T::rh - 1) * (T::mw + T::rw - 1);
      }))
    throw std::invalid_argument(no_tile(m, R, S));
  return a2;
}

int64_t winograd_tile_count(int m, int64_t R, int64_t S, int64_t N, int64_t Ho, int64_t Wo) {
  int64_t T = 0;
  if (!with_winograd_tile(m, R, S, [&](auto t) {
        using Tl = decltype(t);
        T = N * ((Ho + Tl::mh - 1) / Tl::mh) * ((Wo + Tl::mw - 1) / Tl::mw);
      }))
    throw std::invalid_argument(no_tile(m, R, S));
  return T;
}

void winograd_filter_transform(int m, int64_t R, int64_t S, int64_t K, int64_t Cg, const float* w, float* U) {
  if (!with_winograd_tile(m, R, S, [&](auto t) {
        using T = decltype(t);
        filter_transform_t<T::mh, T::rh, T::mw, T::rw>(K, Cg, w, U);
      }))
    throw std::invalid_argument(no_tile(m, R, S));
}

void conv2d_winograd_prepare(const ConvParams& p, const float* w, int m, WinogradWeights& out) {
  const int64_t a2 = winograd_alpha_product(m, p.R, p.S);  // throws where there is no such tile
  count_weight_transform();
  const int64_t Kg = p.Kg(), Cg = p.Cg();
  out.m = m;
  out.kernels = &active_kernels();
  out.K = p.K;
  out.Cg = Cg;
  out.groups = p.groups;
  out.U.clear();
  out.U.resize((size_t)(p.groups * a2));
  std::vector<float> U((size_t)(a2 * Kg * Cg));
  for (int64_t g = 0; g < p.groups; ++g) {
    winograd_filter_transform(m, p.R, p.S, Kg, Cg, w + g * Kg * Cg * p.R * p.S, U.data());
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

WinogradPlanInfo conv2d_winograd_plan(const ConvParams& p, const WinogradWeights& w, bool y_blocked) {
  return w.kernels->winograd_plan(p, w, y_blocked);
}

void winograd_input_transform(const ConvParams& p, int m, const float* x, float* V) {
  active_kernels().winograd_input(p, m, x, V);
}

void winograd_output_transform(const ConvParams& p, int m, const float* M, float* y) {
  active_kernels().winograd_output(p, m, M, y);
}

}  // namespace pycnn
