// Squeeze-and-excitation as one kernel, written once over a SIMD type V and compiled per ISA
// (se_block__<isa>.cpp): y = x * act2(w2 act1(w1 mean_hw(x) + b1) + b2), one gate per (image,
// channel). x, y (N, C/16, HW, 16) when blocked, else (N, C, HW); w1 (Cm, C), w2 (C, Cm).
//
// Why one kernel: each of the four parts is a few microseconds of arithmetic at batch 1, and as
// separate calls each paid an OpenMP team (about a microsecond with two threads) besides its plan
// step. Here one team runs the three phases, the implicit barriers of the omp for loops ordering
// them: pool (per channel block or plane), hidden units (a dot of length C each), then per channel
// block the gates (dots of length Cm) and the product, so no barrier sits between gate and product.
#pragma once
#include <algorithm>
#include <cstdint>
#include <vector>

#include "eltwise_unary.inl"
#include "pycnn/parallel.h"
#include "pycnn/shapes.h"
#include "simd.h"

namespace pycnn {

template <class V>
struct SeBlock {
  static constexpr int W = V::W;
  using reg = typename V::reg;

  int64_t N, C, Cm, HW;
  bool blocked;
  const float *x, *w1, *b1, *w2, *b2;
  Activation a1, a2;
  float* y;

  // sum(a[i] * b[i], i < n)
  static float dot(const float* a, const float* b, int64_t n) {
    reg acc0 = V::zero(), acc1 = V::zero();
    int64_t i = 0;
    for (; i + 2 * W <= n; i += 2 * W) {
      acc0 = V::fmadd(V::loadu(a + i), V::loadu(b + i), acc0);
      acc1 = V::fmadd(V::loadu(a + i + W), V::loadu(b + i + W), acc1);
    }
    for (; i < n; i += W) {
      const int m = (int)std::min<int64_t>(W, n - i);
      acc0 = V::fmadd(V::loadu_n(a + i, m), V::loadu_n(b + i, m), acc0);
    }
    return hsum(V::add(acc0, acc1));
  }

  static float hsum(reg v) {
    alignas(64) float t[W];
    V::storeu(t, v);
    float s = 0.0f;
    for (int l = 0; l < W; ++l) s += t[l];
    return s;
  }

  // The clamp (NaN kept), then the function, on n floats in place.
  static void activate(const Activation& act, float* v, int64_t n) {
    if (act.active())
      for (int64_t i = 0; i < n; ++i) v[i] = act.apply(v[i]);
    unary_detail::post(act, v, n);
  }

  // pooled[n * C + c]: the mean of plane (n, c), for channel block or plane `it`.
  void pool(int64_t it, float* pooled) const {
    const float inv = 1.0f / (float)HW;
    if (blocked) {
      const float* xp = x + it * HW * 16;
      reg acc[16 / W];
      for (int v = 0; v < 16 / W; ++v) acc[v] = V::zero();
      for (int64_t i = 0; i < HW; ++i)
        for (int v = 0; v < 16 / W; ++v) acc[v] = V::add(acc[v], V::loadu(xp + i * 16 + v * W));
      for (int v = 0; v < 16 / W; ++v) V::storeu(pooled + it * 16 + v * W, V::mul(acc[v], V::set1(inv)));
      return;
    }
    const float* xp = x + it * HW;
    reg acc = V::zero();
    int64_t i = 0;
    for (; i + W <= HW; i += W) acc = V::add(acc, V::loadu(xp + i));
    if (i < HW) acc = V::add(acc, V::loadu_n(xp + i, (int)(HW - i)));
    pooled[it] = hsum(acc) * inv;
  }

  // gate[c] for the channels c0 .. c0 + n of image img, then y = x * gate over their planes.
  void gate_and_scale(int64_t img, int64_t c0, int n, const float* hidden, float* gate) const {
    for (int k = 0; k < n; ++k) gate[k] = (b2 ? b2[c0 + k] : 0.0f) + dot(w2 + (c0 + k) * Cm, hidden + img * Cm, Cm);
    activate(a2, gate, n);
    if (blocked) {  // n == 16: block c0 / 16 of image img
      const int64_t off = (img * C + c0) * HW;
      reg g[16 / W];
      for (int v = 0; v < 16 / W; ++v) g[v] = V::loadu(gate + v * W);
      for (int64_t i = 0; i < HW; ++i)
        for (int v = 0; v < 16 / W; ++v) {
          const int64_t o = off + i * 16 + v * W;
          V::storeu(y + o, V::mul(V::loadu(x + o), g[v]));
        }
      return;
    }
    for (int k = 0; k < n; ++k) {  // n == 1: plane (img, c0)
      const int64_t off = (img * C + c0 + k) * HW;
      const reg g = V::set1(gate[k]);
      int64_t i = 0;
      for (; i + W <= HW; i += W) V::storeu(y + off + i, V::mul(V::loadu(x + off + i), g));
      if (i < HW) V::storeu_n(y + off + i, V::mul(V::loadu_n(x + off + i, (int)(HW - i)), g), (int)(HW - i));
    }
  }

  // The three phases; called by every thread of a team, or by the caller alone (parallel_run).
  void phases(float* pooled, float* hidden) const {
    const int64_t unit = blocked ? 16 : 1, items = N * C / unit;
#pragma omp for schedule(static)
    for (int64_t it = 0; it < items; ++it) pool(it, pooled);
#pragma omp for schedule(static)
    for (int64_t it = 0; it < N * Cm; ++it) {
      const int64_t img = it / Cm, r = it % Cm;
      float h = (b1 ? b1[r] : 0.0f) + dot(w1 + r * C, pooled + img * C, C);
      activate(a1, &h, 1);
      hidden[it] = h;
    }
#pragma omp for schedule(static)
    for (int64_t it = 0; it < items; ++it) {
      alignas(64) float gate[16];
      gate_and_scale(it / (C / unit), it % (C / unit) * unit, (int)unit, hidden, gate);
    }
  }

  void run() const {
    std::vector<float> pooled((size_t)(N * C)), hidden((size_t)(N * Cm));
    // x read twice and y written once (memory-bound), plus both matrices' multiply-adds.
    const double work = 32.0 * double(N * C * HW) + 2.0 * double(N * C * Cm) * 2.0;
    parallel_run(threads_for(work, N * C / (blocked ? 16 : 1)), [&] { phases(pooled.data(), hidden.data()); });
  }
};

#define PYCNN_SE_BLOCK_ISA(isa)                                                                                     \
  void se_block__##isa(int64_t N, int64_t C, int64_t Cm, int64_t HW, bool blocked, const float* x, const float* w1, \
                       const float* b1, Activation a1, const float* w2, const float* b2, Activation a2, float* y) { \
    SeBlock<simd::isa>{N, C, Cm, HW, blocked, x, w1, b1, w2, b2, a1, a2, y}.run();                                  \
  }

}  // namespace pycnn
