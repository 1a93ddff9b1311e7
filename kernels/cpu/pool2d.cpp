// max_pool2d, avg_pool2d and global average pooling on NCHW planes.
//
// Both window pools work one output row at a time: first a vertical pass reduces the window's
// input rows into a row buffer (contiguous, vectorized by the compiler), then a horizontal pass
// reduces each output's columns from that buffer. Each input row is read once per output row
// that covers it instead of once per window column. Threads split (plane, output row) pairs.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "ops_cpu.h"
#include "pycnn/parallel.h"

namespace pycnn {

namespace {

// NaN-propagating max: a NaN anywhere in the window wins, as in PyTorch.
inline float nanmax(float m, float v) { return (v > m || v != v) ? v : m; }

template <class RowOp>
void for_each_row(const PoolParams& p, RowOp op) {
  const int64_t rows = p.planes * p.Ho;
  const int nt = threads_for(double(p.planes) * p.H * p.W * 4, rows);
#pragma omp parallel num_threads(nt)
  {
    std::vector<float> buf((size_t)p.W);
#pragma omp for schedule(static)
    for (int64_t t = 0; t < rows; ++t) op(t / p.Ho, t % p.Ho, buf.data());
  }
}

}  // namespace

void max_pool2d(const PoolParams& p, const float* x, float* y) {
  for_each_row(p, [&](int64_t pl, int64_t oh, float* buf) {
    const float* xp = x + pl * p.H * p.W;
    float* yr = y + (pl * p.Ho + oh) * p.Wo;
    const int64_t h0 = oh * p.stride_h - p.pad_t;
    const int64_t hs = std::max<int64_t>(h0, 0), he = std::min<int64_t>(h0 + p.R, p.H);
    if (he <= hs) {  // window entirely in the padding (ops.py forbids it; stay memory-safe)
      std::fill(yr, yr + p.Wo, -std::numeric_limits<float>::infinity());
      return;
    }
    const float* r0 = xp + hs * p.W;
    std::copy(r0, r0 + p.W, buf);
    for (int64_t ih = hs + 1; ih < he; ++ih) {
      const float* r = xp + ih * p.W;
      for (int64_t w = 0; w < p.W; ++w) buf[w] = nanmax(buf[w], r[w]);
    }
    for (int64_t ow = 0; ow < p.Wo; ++ow) {
      const int64_t w0 = ow * p.stride_w - p.pad_l;
      const int64_t ws = std::max<int64_t>(w0, 0), we = std::min<int64_t>(w0 + p.S, p.W);
      float m = -std::numeric_limits<float>::infinity();
      for (int64_t w = ws; w < we; ++w) m = nanmax(m, buf[w]);
      yr[ow] = m;
    }
  });
}

void avg_pool2d(const PoolParams& p, const float* x, float* y, bool count_include_pad) {
  // The padded extent on the bottom/right that PyTorch counts: H + pad_t (symmetric padding).
  const int64_t Hpad = p.H + p.pad_t, Wpad = p.W + p.pad_l;
  for_each_row(p, [&](int64_t pl, int64_t oh, float* buf) {
    const float* xp = x + pl * p.H * p.W;
    float* yr = y + (pl * p.Ho + oh) * p.Wo;
    const int64_t h0 = oh * p.stride_h - p.pad_t;
    const int64_t hpe = std::min<int64_t>(h0 + p.R, Hpad);
    const int64_t hs = std::max<int64_t>(h0, 0), he = std::min<int64_t>(h0 + p.R, p.H);
    std::fill(buf, buf + p.W, 0.0f);
    for (int64_t ih = hs; ih < he; ++ih) {
      const float* r = xp + ih * p.W;
      for (int64_t w = 0; w < p.W; ++w) buf[w] += r[w];
    }
    for (int64_t ow = 0; ow < p.Wo; ++ow) {
      const int64_t w0 = ow * p.stride_w - p.pad_l;
      const int64_t wpe = std::min<int64_t>(w0 + p.S, Wpad);
      const int64_t ws = std::max<int64_t>(w0, 0), we = std::min<int64_t>(w0 + p.S, p.W);
      float s = 0.0f;
      for (int64_t w = ws; w < we; ++w) s += buf[w];
      const int64_t count = count_include_pad ? (hpe - h0) * (wpe - w0) : (he - hs) * (we - ws);
      yr[ow] = count > 0 ? s / (float)count : 0.0f;
    }
  });
}

void global_avg_pool2d(int64_t planes, int64_t HW, const float* x, float* y) {
  const int nt = threads_for(double(planes) * HW * 2, planes);
#pragma omp parallel for num_threads(nt) schedule(static)
  for (int64_t pl = 0; pl < planes; ++pl) {
    const float* xp = x + pl * HW;
    float part[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int64_t i = 0;
    for (; i + 8 <= HW; i += 8)
      for (int j = 0; j < 8; ++j) part[j] += xp[i + j];
    float s = 0.0f;
    for (; i < HW; ++i) s += xp[i];
    for (int j = 0; j < 8; ++j) s += part[j];
    y[pl] = s / (float)HW;
  }
}

}  // namespace pycnn
