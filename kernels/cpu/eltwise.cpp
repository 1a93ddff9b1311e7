// Element-wise and small ops: relu, add (+relu), per-channel affine (folded batch norm),
// softmax over rows, channel concat. All are memory bound: one pass, OpenMP over large arrays,
// written so the compiler vectorizes the inner loops. ReLU keeps NaN (x < 0 is false for NaN).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "cpu_kernels.h"
#include "ops_cpu.h"
#include "pycnn/parallel.h"

namespace pycnn {

namespace {
inline float relu1(float v) { return v < 0.0f ? 0.0f : v; }
// A second thread from 62.5 Ki elements (threads_for's 1e6 over 16): each core brings its own L2
// and share of the bandwidth, 1.5-1.9x from 100 Ki (bench/eltwise_threads.py); at 25 Ki a
// second thread lost or tied (docs/performance.md, Element-wise).
inline int nt_for_bytes(int64_t n) { return threads_for(double(n) * 16, n / 4096 + 1); }
}  // namespace

void relu(int64_t n, const float* x, float* y) {
  parallel_run(nt_for_bytes(n), [&] {
#pragma omp for schedule(static)
    for (int64_t i = 0; i < n; ++i) y[i] = relu1(x[i]);
  });
}

void add(int64_t n, const float* a, const float* b, float* y, bool do_relu) {
  if (do_relu) {
    parallel_run(nt_for_bytes(n), [&] {
#pragma omp for schedule(static)
      for (int64_t i = 0; i < n; ++i) y[i] = relu1(a[i] + b[i]);
    });
  } else {
    parallel_run(nt_for_bytes(n), [&] {
#pragma omp for schedule(static)
      for (int64_t i = 0; i < n; ++i) y[i] = a[i] + b[i];
    });
  }
}

void channel_affine(int64_t N, int64_t C, int64_t HW, const float* x, const float* scale, const float* shift, float* y,
                    bool do_relu) {
  parallel_run(nt_for_bytes(N * C * HW), [&] {
#pragma omp for schedule(static)
    for (int64_t nc = 0; nc < N * C; ++nc) {
      const float sc = scale[nc % C], sh = shift[nc % C];
      const float* xp = x + nc * HW;
      float* yp = y + nc * HW;
      if (do_relu)
        for (int64_t i = 0; i < HW; ++i) yp[i] = relu1(xp[i] * sc + sh);
      else
        for (int64_t i = 0; i < HW; ++i) yp[i] = xp[i] * sc + sh;
    }
  });
}

// x, y channel-blocked (N, Cb, HW, 16), c = cb * 16 + lane: y = x * scale[n * scale_n + c] + shift[c]
// (then ReLU). scale_n 0: one scale per channel (a batch norm); Cb * 16: one per image and channel
// (squeeze-and-excitation's gate). shift may be null (0).
void channel_affine_blocked16(int64_t N, int64_t Cb, int64_t HW, const float* x, const float* scale, int64_t scale_n,
                              const float* shift, float* y, bool do_relu, int64_t x_img) {
  if (x_img == 0) x_img = Cb * HW * 16;
  parallel_run(nt_for_bytes(N * Cb * HW * 16), [&] {
#pragma omp for schedule(static)
    for (int64_t b = 0; b < N * Cb; ++b) {
      const int64_t n = b / Cb, c0 = b % Cb * 16;
      float sc[16], sh[16];
      for (int c = 0; c < 16; ++c) {
        sc[c] = scale[n * scale_n + c0 + c];
        sh[c] = shift ? shift[c0 + c] : 0.0f;
      }
      const float* xp = x + n * x_img + (b % Cb) * HW * 16;
      float* yp = y + b * HW * 16;
      if (do_relu)
        for (int64_t i = 0; i < HW; ++i)
          for (int c = 0; c < 16; ++c) yp[i * 16 + c] = relu1(xp[i * 16 + c] * sc[c] + sh[c]);
      else
        for (int64_t i = 0; i < HW; ++i)
          for (int c = 0; c < 16; ++c) yp[i * 16 + c] = xp[i * 16 + c] * sc[c] + sh[c];
    }
  });
}

// Max of xr[0, n) where a NaN anywhere gives NaN (torch.amax); -inf for an empty row.
// SSE2 (the baseline of this file's build): the scalar loop was not vectorized (a float max
// reduction with NaN checks), Kim's max over time at batch 8 (800 rows of 48) took 35 us.
float nan_max(const float* xr, int64_t n) {
  float m = -std::numeric_limits<float>::infinity();
  bool nan = false;
  int64_t i = 0;
#if defined(__SSE2__)
  if (n >= 8) {
    __m128 m0 = _mm_set1_ps(m), m1 = m0, bad = _mm_setzero_ps();
    for (; i + 8 <= n; i += 8) {
      const __m128 a = _mm_loadu_ps(xr + i), b = _mm_loadu_ps(xr + i + 4);
      m0 = _mm_max_ps(m0, a);
      m1 = _mm_max_ps(m1, b);
      bad = _mm_or_ps(bad, _mm_or_ps(_mm_cmpunord_ps(a, a), _mm_cmpunord_ps(b, b)));
    }
    alignas(16) float t[4];
    _mm_store_ps(t, _mm_max_ps(m0, m1));
    m = std::max(std::max(t[0], t[1]), std::max(t[2], t[3]));
    nan = _mm_movemask_ps(bad) != 0;
  }
#endif
  for (; i < n; ++i) {
    nan |= xr[i] != xr[i];
    m = std::max(m, xr[i]);
  }
  return nan ? std::numeric_limits<float>::quiet_NaN() : m;
}

// y[r] = max of row r (cols > 0). Kim's CNN max over time: numpy's reduction along a 48-float
// axis cost ~10 us per call for 100 rows.
void max_rows(int64_t rows, int64_t cols, const float* x, float* y) {
  parallel_run(threads_for(double(rows) * cols * 4, rows), [&] {
#pragma omp for schedule(static)
    for (int64_t r = 0; r < rows; ++r) y[r] = nan_max(x + r * cols, cols);
  });
}

void softmax_rows(int64_t rows, int64_t cols, const float* x, float* y) {
  parallel_run(threads_for(double(rows) * cols * 20, rows), [&] {
#pragma omp for schedule(static)
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
  });
}

void concat(const std::vector<const float*>& xs, const std::vector<int64_t>& sizes, int64_t outer, int64_t inner,
            float* y) {
  int64_t total = 0;
  for (int64_t s : sizes) total += s;
  std::vector<int64_t> offs(sizes.size());
  for (size_t i = 0, o = 0; i < sizes.size(); ++i) {
    offs[i] = (int64_t)o;
    o += (size_t)sizes[i];
  }
  const int64_t items = outer * (int64_t)xs.size();
  parallel_run(nt_for_bytes(outer * total * inner), [&] {
#pragma omp for schedule(static)
    for (int64_t t = 0; t < items; ++t) {
      const int64_t o = t / (int64_t)xs.size(), i = t % (int64_t)xs.size();
      const int64_t n = sizes[(size_t)i] * inner;
      if (n) std::memcpy(y + (o * total + offs[(size_t)i]) * inner, xs[(size_t)i] + o * n, n * sizeof(float));
    }
  });
}

// y[i] = w[ids[i]] (rows of dim floats), ids already checked to lie in [0, vocab). Two threads
// from ~64 KiB: the rows are random lines of a table that is usually in memory, not cache
// (Kim's CNN at batch 8: np.take 65 us for 400 rows of 300 floats, onnxruntime 27 us).
void embedding_rows(int64_t n, const int64_t* ids, int64_t dim, const float* w, float* y) {
  parallel_run(threads_for(double(n) * dim * 64, n), [&] {
#pragma omp for schedule(static)
    for (int64_t i = 0; i < n; ++i) std::memcpy(y + i * dim, w + ids[i] * dim, (size_t)dim * sizeof(float));
  });
}

// Chunks of 16 Ki floats (64 KiB: in L2 while a thread works through it) over the threads.
void unary(UnaryFn fn, int64_t n, const float* x, float* y, float a, float b) {
  const UnaryChunkFn chunk = active_kernels().unary_chunk;
  constexpr int64_t kChunk = 16384;
  const int64_t chunks = (n + kChunk - 1) / kChunk;
  parallel_run(threads_for(double(n) * 8, chunks), [&] {
#pragma omp for schedule(static)
    for (int64_t c = 0; c < chunks; ++c) {
      const int64_t i = c * kChunk;
      chunk(static_cast<int>(fn), std::min(kChunk, n - i), x + i, y + i, a, b);
    }
  });
}

// y[b] = x[b]^T for `batch` (rows x cols) matrices whose elements are runs of `inner` floats: a
// transpose that moves one group of axes past another (NCHW <-> NHWC with inner 1; ShuffleNet's
// channel shuffle (N, g, C/g, H*W) -> (N, C/g, g, H*W) with inner H*W). inner 1: 32x32 tiles, so
// the reads of a tile's rows and the writes of its columns stay within 32 cache lines each;
// longer runs are copied whole.
void transpose_batched(int64_t batch, int64_t rows, int64_t cols, int64_t inner, const float* x, float* y) {
  const int64_t n = batch * rows * cols * inner;
  if (inner > 1) {
    const int64_t items = batch * rows * cols;
    parallel_run(nt_for_bytes(n), [&] {
#pragma omp for schedule(static)
      for (int64_t t = 0; t < items; ++t) {
        const int64_t b = t / (rows * cols), j = (t / rows) % cols, i = t % rows;  // y's order
        std::memcpy(y + t * inner, x + ((b * rows + i) * cols + j) * inner, (size_t)inner * sizeof(float));
      }
    });
    return;
  }
  constexpr int64_t T = 32;
  const int64_t tr = (rows + T - 1) / T, tc = (cols + T - 1) / T, tiles = batch * tr * tc;
  parallel_run(nt_for_bytes(n), [&] {
#pragma omp for schedule(static)
    for (int64_t t = 0; t < tiles; ++t) {
      const int64_t b = t / (tr * tc), i0 = (t / tc) % tr * T, j0 = t % tc * T;
      const float* xb = x + b * rows * cols;
      float* yb = y + b * rows * cols;
      const int64_t i1 = std::min(rows, i0 + T), j1 = std::min(cols, j0 + T);
      for (int64_t j = j0; j < j1; ++j)
        for (int64_t i = i0; i < i1; ++i) yb[j * rows + i] = xb[i * cols + j];
    }
  });
}

// y[r] = (x[r] - mean) / sqrt(var + eps) * w + b over each row of cols (LayerNormalization over
// the trailing axes: ConvNeXt's channels). Mean and biased variance in eight float lanes each
// (vectorizable without -ffast-math), combined in double; NaN/Inf in a row make the row NaN.
void layer_norm_rows(int64_t rows, int64_t cols, const float* x, const float* w, const float* b, float eps, float* y) {
  parallel_run(threads_for(double(rows) * cols * 6, rows), [&] {
#pragma omp for schedule(static)
    for (int64_t r = 0; r < rows; ++r) {
      const float* xr = x + r * cols;
      float* yr = y + r * cols;
      float s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
      int64_t i = 0;
      for (; i + 8 <= cols; i += 8)
        for (int l = 0; l < 8; ++l) s[l] += xr[i + l];
      double sum = 0.0;
      for (int l = 0; l < 8; ++l) sum += s[l];
      for (; i < cols; ++i) sum += xr[i];
      const float mean = (float)(sum / (double)cols);
      float q[8] = {0, 0, 0, 0, 0, 0, 0, 0};
      for (i = 0; i + 8 <= cols; i += 8)
        for (int l = 0; l < 8; ++l) {
          const float d = xr[i + l] - mean;
          q[l] += d * d;
        }
      double var = 0.0;
      for (int l = 0; l < 8; ++l) var += q[l];
      for (; i < cols; ++i) var += double(xr[i] - mean) * double(xr[i] - mean);
      const float inv = (float)(1.0 / std::sqrt(var / (double)cols + (double)eps));
      for (i = 0; i < cols; ++i) yr[i] = (xr[i] - mean) * inv * w[i] + b[i];
    }
  });
}

// x, y (N, C, HW): each pixel's C channels normalized (ConvNeXt's LayerNorm over channels on
// NCHW). Why tiles of pixels: the channels of a pixel are HW apart, so the sums run over a tile
// of P contiguous pixels at once (vectors along the pixels), three passes over a tile of C x P
// floats that stays in L2 (<= 64 KiB) instead of three over the tensor.
void layer_norm_channels(int64_t N, int64_t C, int64_t HW, const float* x, const float* w, const float* b, float eps,
                         float* y) {
  constexpr int64_t kMaxP = 256;
  const int64_t P = std::max<int64_t>(8, std::min<int64_t>(kMaxP, (16384 / std::max<int64_t>(C, 1)) / 8 * 8));
  const int64_t tiles = (HW + P - 1) / P, items = N * tiles;
  const float invC = 1.0f / (float)C;
  parallel_run(threads_for(double(N) * C * HW * 8, items), [&] {
#pragma omp for schedule(static)
    for (int64_t it = 0; it < items; ++it) {
      const int64_t n = it / tiles, p0 = it % tiles * P, m = std::min(P, HW - p0);
      const float* xs = x + n * C * HW + p0;
      float* ys = y + n * C * HW + p0;
      float mean[kMaxP], inv[kMaxP];
      for (int64_t j = 0; j < m; ++j) mean[j] = 0.0f;
      for (int64_t c = 0; c < C; ++c)
        for (int64_t j = 0; j < m; ++j) mean[j] += xs[c * HW + j];
      for (int64_t j = 0; j < m; ++j) {
        mean[j] *= invC;
        inv[j] = 0.0f;
      }
      for (int64_t c = 0; c < C; ++c)
        for (int64_t j = 0; j < m; ++j) {
          const float d = xs[c * HW + j] - mean[j];
          inv[j] += d * d;
        }
      for (int64_t j = 0; j < m; ++j) inv[j] = 1.0f / std::sqrt(inv[j] * invC + eps);
      for (int64_t c = 0; c < C; ++c) {
        const float wc = w[c], bc = b[c];
        for (int64_t j = 0; j < m; ++j) ys[c * HW + j] = (xs[c * HW + j] - mean[j]) * inv[j] * wc + bc;
      }
    }
  });
}

// The same on channel-blocked x, y (N, Cb, HW, 16) (pycnn/layout.py), C = 16 * Cb: per tile of
// P pixels each block's P x 16 floats are one contiguous run; sums per pixel are 16 lanes wide,
// reduced across the lanes once per pixel.
void layer_norm_channels_blocked16(int64_t N, int64_t Cb, int64_t HW, const float* x, const float* w, const float* b,
                                   float eps, float* y) {
  constexpr int64_t P = 16;
  const int64_t tiles = (HW + P - 1) / P, items = N * tiles;
  const float invC = 1.0f / (float)(Cb * 16);
  parallel_run(threads_for(double(N) * Cb * 16 * HW * 8, items), [&] {
#pragma omp for schedule(static)
    for (int64_t it = 0; it < items; ++it) {
      const int64_t n = it / tiles, p0 = it % tiles * P, m = std::min(P, HW - p0);
      const float* xs = x + (n * Cb * HW + p0) * 16;
      float* ys = y + (n * Cb * HW + p0) * 16;
      float acc[P][16], mean[P], inv[P];
      for (int64_t j = 0; j < m; ++j)
        for (int l = 0; l < 16; ++l) acc[j][l] = 0.0f;
      for (int64_t cb = 0; cb < Cb; ++cb)
        for (int64_t j = 0; j < m; ++j)
          for (int l = 0; l < 16; ++l) acc[j][l] += xs[(cb * HW + j) * 16 + l];
      for (int64_t j = 0; j < m; ++j) {
        float s = 0.0f;
        for (int l = 0; l < 16; ++l) s += acc[j][l];
        mean[j] = s * invC;
        for (int l = 0; l < 16; ++l) acc[j][l] = 0.0f;
      }
      for (int64_t cb = 0; cb < Cb; ++cb)
        for (int64_t j = 0; j < m; ++j)
          for (int l = 0; l < 16; ++l) {
            const float d = xs[(cb * HW + j) * 16 + l] - mean[j];
            acc[j][l] += d * d;
          }
      for (int64_t j = 0; j < m; ++j) {
        float s = 0.0f;
        for (int l = 0; l < 16; ++l) s += acc[j][l];
        inv[j] = 1.0f / std::sqrt(s * invC + eps);
      }
      for (int64_t cb = 0; cb < Cb; ++cb)
        for (int64_t j = 0; j < m; ++j)
          for (int l = 0; l < 16; ++l) {
            const int64_t o = (cb * HW + j) * 16 + l;
            ys[o] = (xs[o] - mean[j]) * inv[j] * w[cb * 16 + l] + b[cb * 16 + l];
          }
    }
  });
}

}  // namespace pycnn
