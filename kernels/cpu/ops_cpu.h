// CPU entry points of the non-convolution ops. Layouts are NCHW float32, C-contiguous; shapes are
// validated by pycnn/ops.py.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "pycnn/shapes.h"

namespace pycnn {

// Pooling over N*C planes. Max treats padding as absent (never selected) and propagates NaN;
// avg divides by the window clipped to the padded input (count_include_pad) or to the image.
void max_pool2d(const PoolParams& p, const float* x, float* y);
void avg_pool2d(const PoolParams& p, const float* x, float* y, bool count_include_pad);
void global_avg_pool2d(int64_t planes, int64_t HW, const float* x, float* y);
// The same on channel-blocked x (blocks = N*C/16 runs of HW pixels of 16 channels): y[b*16 + c].
void global_avg_pool2d_blocked16(int64_t blocks, int64_t HW, const float* x, float* y);
// Max pooling on channel-blocked tensors: p.planes = N * C / 16, p.images = N; x (planes, H, W,
// 16), y (planes, Ho, Wo, 16) (pool2d_blocked.inl).
void max_pool2d_blocked16(const PoolParams& p, const float* x, float* y);
// Average pooling on channel-blocked tensors (the divisor as avg_pool2d's).
void avg_pool2d_blocked16(const PoolParams& p, const float* x, float* y, bool count_include_pad);
// x (N, C, HW) <-> y (N, C/16, HW, 16) (channel-blocked NCHW16c; 16 | C). reorder_blocked.inl.
void reorder_to_blocked16(int64_t N, int64_t C, int64_t HW, const float* x, float* y);
void reorder_from_blocked16(int64_t N, int64_t C, int64_t HW, const float* y, float* x);

// Cross-channel LRN, PyTorch semantics: y = x / (k + alpha/size * sum_{c' in window} x^2)^beta
// with the window [c - size/2, c + (size-1)/2] clipped to the channels.
void local_response_norm(int64_t N, int64_t C, int64_t HW, const float* x, float* y, int64_t size, float alpha,
                         float beta, float k);

// y = x W^T + b: x (N, In), w (Out, In), b (Out) or null.
void linear(int64_t N, int64_t In, int64_t Out, const float* x, const float* w, const float* b, float* y, bool relu);
// A linear's W of at least this many floats (32 MiB) streams from memory, past the L3: the GEMV
// prefetches it a pass ahead (linear_gemv.inl), and a bound linear keeps it rather than packing
// a second copy into panels (linear_uses_panels).
constexpr int64_t kLinearStreamedFloats = int64_t(8) << 20;
// A bound linear's weights (a Graph's step, one batch size): W^T in panels of output features
// (linear_gemv.inl's linear_pack), packed once for the active ISA, for the batches
// linear_uses_panels takes; linear_panels_run is linear() on them.
struct CpuKernels;
struct LinearPanels {
  const CpuKernels* kernels = nullptr;
  std::vector<float> wp;
};
bool linear_uses_panels(int64_t N, int64_t In, int64_t Out);
void linear_panels_prepare(int64_t In, int64_t Out, const float* w, LinearPanels& out);
void linear_panels_run(const LinearPanels& wp, int64_t N, int64_t In, int64_t Out, const float* x, const float* b,
                       float* y, bool relu);

// Squeeze-and-excitation: y = x * act2(w2 act1(w1 mean_hw(x) + b1) + b2) per (image, channel);
// x, y (N, C/16, HW, 16) when blocked (16 | C), else (N, C, HW); w1 (Cm, C), w2 (C, Cm); b1, b2 may be null.
void se_block(int64_t N, int64_t C, int64_t Cm, int64_t HW, bool blocked, const float* x, const float* w1,
              const float* b1, Activation a1, const float* w2, const float* b2, Activation a2, float* y);
void relu(int64_t n, const float* x, float* y);
void add(int64_t n, const float* a, const float* b, float* y, bool relu);
// Channel-blocked (N, Cb, HW, 16): y = x * scale[n * scale_n + c] + shift[c] (c = cb * 16 + lane);
// scale_n 0 for a batch norm, Cb * 16 for squeeze-and-excitation's gate (N*C scales); shift may
// be null. x_img: floats from one image of x to the next (0: dense, Cb * HW * 16).
void channel_affine_blocked16(int64_t N, int64_t Cb, int64_t HW, const float* x, const float* scale, int64_t scale_n,
                              const float* shift, float* y, bool do_relu, int64_t x_img = 0);
// Per-channel affine (inference batch norm after folding): y = x * scale[c] + shift[c].
void channel_affine(int64_t N, int64_t C, int64_t HW, const float* x, const float* scale, const float* shift, float* y,
                    bool relu);
// Softmax over the last axis of a (rows, cols) matrix.
void softmax_rows(int64_t rows, int64_t cols, const float* x, float* y);
void max_rows(int64_t rows, int64_t cols, const float* x, float* y);
// Element-wise activations (eltwise_unary.inl, per ISA): y = fn(x) over n floats, threaded here;
// a, b: clip's lo and hi, hardsigmoid's alpha and beta. x == y is allowed (in place).
enum class UnaryFn : int { clip = 0, sigmoid = 1, hardsigmoid = 2, hardswish = 3, silu = 4, erf = 5, gelu = 6 };
void unary(UnaryFn fn, int64_t n, const float* x, float* y, float a, float b);
void transpose_batched(int64_t batch, int64_t rows, int64_t cols, int64_t inner, const float* x, float* y);
void layer_norm_rows(int64_t rows, int64_t cols, const float* x, const float* w, const float* b, float eps, float* y);
// x, y (N, C, HW): each pixel normalized over its C channels, then y = . * w[c] + b[c].
void layer_norm_channels(int64_t N, int64_t C, int64_t HW, const float* x, const float* w, const float* b, float eps,
                         float* y);
// The same on channel-blocked x, y (N, Cb, HW, 16): C = 16 * Cb.
void layer_norm_channels_blocked16(int64_t N, int64_t Cb, int64_t HW, const float* x, const float* w, const float* b,
                                   float eps, float* y);
// Max of x[0, n) where a NaN anywhere gives NaN (torch.amax); -inf for n == 0.
float nan_max(const float* x, int64_t n);
void embedding_rows(int64_t n, const int64_t* ids, int64_t dim, const float* w, float* y);
// Concatenate along axis 1: inputs are (outer, sizes[i] * inner) blocks.
// A 64-bit hash of nbytes bytes (content_hash.cpp): changes whenever the bytes do, except with
// probability ~2^-64.
uint64_t content_hash(const void* data, size_t nbytes);

void concat(const std::vector<const float*>& xs, const std::vector<int64_t>& sizes, int64_t outer, int64_t inner,
            float* y);

}  // namespace pycnn
