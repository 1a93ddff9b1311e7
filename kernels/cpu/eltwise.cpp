// Element-wise and small ops: relu, add (+relu), per-channel affine (folded batch norm),
// softmax over rows, channel concat. All are memory bound: one pass, OpenMP over large arrays,
// written so the compiler vectorizes the inner loops. ReLU keeps NaN (x < 0 is false for NaN).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "ops_cpu.h"
#include "pycnn/parallel.h"

namespace pycnn {

namespace {
inline float relu1(float v) { return v < 0.0f ? 0.0f : v; }
inline int nt_for_bytes(int64_t n) { return threads_for(double(n) * 0.5, n / 4096 + 1); }
}  // namespace

void relu(int64_t n, const float* x, float* y) {
#pragma omp parallel for num_threads(nt_for_bytes(n)) schedule(static)
  for (int64_t i = 0; i < n; ++i) y[i] = relu1(x[i]);
}

void add(int64_t n, const float* a, const float* b, float* y, bool do_relu) {
  if (do_relu) {
#pragma omp parallel for num_threads(nt_for_bytes(n)) schedule(static)
    for (int64_t i = 0; i < n; ++i) y[i] = relu1(a[i] + b[i]);
  } else {
#pragma omp parallel for num_threads(nt_for_bytes(n)) schedule(static)
    for (int64_t i = 0; i < n; ++i) y[i] = a[i] + b[i];
  }
}

void channel_affine(int64_t N, int64_t C, int64_t HW, const float* x, const float* scale,
                    const float* shift, float* y, bool do_relu) {
#pragma omp parallel for num_threads(nt_for_bytes(N * C * HW)) schedule(static)
  for (int64_t nc = 0; nc < N * C; ++nc) {
    const float sc = scale[nc % C], sh = shift[nc % C];
    const float* xp = x + nc * HW;
    float* yp = y + nc * HW;
    if (do_relu)
      for (int64_t i = 0; i < HW; ++i) yp[i] = relu1(xp[i] * sc + sh);
    else
      for (int64_t i = 0; i < HW; ++i) yp[i] = xp[i] * sc + sh;
  }
}

// Max of xr[0, n) where a NaN anywhere gives NaN (torch.amax); -inf for an empty row.
static float nan_max(const float* xr, int64_t n) {
  float m = -std::numeric_limits<float>::infinity();
  bool nan = false;
  for (int64_t i = 0; i < n; ++i) {
    nan |= xr[i] != xr[i];
    m = std::max(m, xr[i]);
  }
  return nan ? std::numeric_limits<float>::quiet_NaN() : m;
}

// y[r] = max of row r (cols > 0). Kim's CNN max over time: numpy's reduction along a 48-float
// axis cost ~10 us per call for 100 rows.
void max_rows(int64_t rows, int64_t cols, const float* x, float* y) {
#pragma omp parallel for num_threads(threads_for(double(rows) * cols * 4, rows)) schedule(static)
  for (int64_t r = 0; r < rows; ++r) y[r] = nan_max(x + r * cols, cols);
}

void softmax_rows(int64_t rows, int64_t cols, const float* x, float* y) {
#pragma omp parallel for num_threads(threads_for(double(rows) * cols * 20, rows)) schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * cols;
    float* yr = y + r * cols;
    // Max with NaN propagation: a NaN input makes the whole row NaN, as in PyTorch.
    float m = nan_max(xr, cols);
    if (std::isnan(m)) {
      std::fill(yr, yr + cols, std::numeric_limits<float>::quiet_NaN());
      continue;
    }
    if (std::isinf(m) && m < 0) m = 0.0f;  // all -inf: exp(-inf) = 0, sum 0, 0/0 = NaN as torch
    double sum = 0.0;
    for (int64_t i = 0; i < cols; ++i) {
      yr[i] = std::exp(xr[i] - m);
      sum += yr[i];
    }
    const float inv = (float)(1.0 / sum);
    for (int64_t i = 0; i < cols; ++i) yr[i] *= inv;
  }
}

void concat(const std::vector<const float*>& xs, const std::vector<int64_t>& sizes, int64_t outer,
            int64_t inner, float* y) {
  int64_t total = 0;
  for (int64_t s : sizes) total += s;
  std::vector<int64_t> offs(sizes.size());
  for (size_t i = 0, o = 0; i < sizes.size(); ++i) {
    offs[i] = (int64_t)o;
    o += (size_t)sizes[i];
  }
  const int64_t items = outer * (int64_t)xs.size();
#pragma omp parallel for num_threads(nt_for_bytes(outer * total * inner)) schedule(static)
  for (int64_t t = 0; t < items; ++t) {
    const int64_t o = t / (int64_t)xs.size(), i = t % (int64_t)xs.size();
    const int64_t n = sizes[(size_t)i] * inner;
    if (n) std::memcpy(y + (o * total + offs[(size_t)i]) * inner, xs[(size_t)i] + o * n, n * sizeof(float));
  }
}

}  // namespace pycnn
