// Host-side entry points of the CUDA kernels (kernels/cuda/*.cu), the same for the GPU build
// (pycnn._C_cuda) and the CPU emulator build (pycnn._C_cuda_emu). Pointers are device pointers
// (host pointers in the emulator); `stream` is a cudaStream_t passed as void* so this header
// needs no CUDA include. Tensors are NCHW float32, contiguous. Errors are thrown as
// std::runtime_error (CUDA errors, with the call) or std::invalid_argument (bad parameters).
#pragma once
#include <cstdint>

namespace pycnn {
namespace cuda {

const char* device_name();  // "cuda" or "cuda_emu"
int device_count();
int runtime_version();

// ---- Element-wise (eltwise.cu) ----
void relu(const float* x, float* y, int64_t n, void* stream);
void add(const float* a, const float* b, float* y, int64_t n, bool relu, void* stream);
// y[n, c, :] = act(y[n, c, :] + bias[c] (+ residual[n, c, :])), in place; bias and residual optional.
void bias_act(float* y, const float* bias, const float* residual, int64_t N, int64_t C, int64_t HW, bool relu,
              void* stream);
// y[n, c, :] = act(x[n, c, :] * scale[c] + shift[c]): batch norm with its statistics folded.
void channel_affine(const float* x, const float* scale, const float* shift, float* y, int64_t N, int64_t C, int64_t HW,
                    bool relu, void* stream);
// ONNX's element-wise functions, y = f(x) over n floats (x == y allowed); NaN in, NaN out. Codes:
// the CPU's UnaryFn (0 clip to [a, b], 1 sigmoid, 2 hardsigmoid clip(a x + b, 0, 1), 3 hardswish,
// 4 silu, 5 erf, 6 gelu) and 7 sqrt, 8 exp, 9 neg, 10 tanh, 11 abs, 12 reciprocal.
constexpr int kUnaryLast = 12;  // the last code above
void unary(int fn, const float* x, float* y, int64_t n, float a, float b, void* stream);
// y = a (fn) b with NumPy broadcasting over up to kBcastDims dimensions: shape is y's, each
// operand's strides are in elements (0 along a broadcast dimension). fn: 0 add, 1 sub, 2 mul,
// 3 div, 4 pow.
constexpr int kBcastDims = 6;
struct Bcast {
  int nd;
  int64_t shape[kBcastDims], sa[kBcastDims], sb[kBcastDims];
};
void binary(int fn, const float* a, const float* b, float* y, const Bcast& g, void* stream);

// ---- SGEMM (sgemm.cu) ----
enum BiasMode { kBiasNone = 0, kBiasPerRow = 1, kBiasPerCol = 2 };
struct GemmEpilogue {
  const float* bias = nullptr;
  int bias_mode = kBiasNone;
  const float* residual = nullptr;  // (M, N) with leading dimension ldr, batch stride residual_batch_stride
  int64_t ldr = 0, residual_batch_stride = 0;
  bool relu = false;
};
// C[z] = act(A[z] B[z] + bias + R[z]) for z < batch; A (M, K) lda, B (K, N) ldb or, trans_b,
// (N, K) ldb; C (M, N) ldc; s* are the batch strides in elements. version: 1 naive, 2 tiled.
void sgemm(int version, int M, int N, int K, const float* A, int64_t lda, int64_t sA, const float* B, int64_t ldb,
           int64_t sB, bool trans_b, float* C, int64_t ldc, int64_t sC, int batch, const GemmEpilogue& ep,
           void* stream);

// ---- Convolution (conv2d_*.cu) ----
struct ConvGeom {
  int N, C, H, W, K, R, S, Ho, Wo;
  int sh, sw, ph, pw, dh, dw, groups;
};
// Workspace (floats) the im2col path needs for a batch chunk of `chunk` images.
int64_t conv2d_im2col_workspace(const ConvGeom& g, int chunk);
// y = act(conv(x, w) + bias (+ residual)); residual has y's shape. work: conv2d_im2col_workspace floats.
void conv2d_im2col(const ConvGeom& g, const float* x, const float* w, const float* bias, const float* residual,
                   float* y, bool relu, float* work, int chunk, void* stream);
void conv2d_implicit_gemm(const ConvGeom& g, const float* x, const float* w, const float* bias, const float* residual,
                          float* y, bool relu, void* stream);
void conv2d_direct(const ConvGeom& g, const float* x, const float* w, const float* bias, const float* residual,
                   float* y, bool relu, void* stream);
// Winograd F(m x m, 3 x 3), m = 2 or 4; stride 1, dilation 1, groups 1.
int winograd_alpha(int m);
// U: alpha*alpha*K*C floats, [a][b][k][c].
void winograd_filter_transform(int m, const float* w, int K, int C, float* U, void* stream);
int64_t winograd_workspace(int m, const ConvGeom& g);  // floats: V and M
void conv2d_winograd(int m, const ConvGeom& g, const float* x, const float* U, const float* bias, const float* residual,
                     float* y, bool relu, float* work, void* stream);

// ---- Pooling and the other layers (pool2d.cu, layers.cu) ----
struct PoolGeom {
  int N, C, H, W, Ho, Wo, kh, kw, sh, sw, ph, pw;
};
void max_pool2d(const PoolGeom& g, const float* x, float* y, void* stream);
void avg_pool2d(const PoolGeom& g, const float* x, float* y, bool count_include_pad, void* stream);
void global_avg_pool2d(const float* x, float* y, int64_t NC, int64_t HW, void* stream);
void lrn(const float* x, float* y, int N, int C, int64_t HW, int size, float alpha, float beta, float k, void* stream);
void softmax(const float* x, float* y, int64_t rows, int64_t cols, void* stream);
// LayerNorm over the channels of x (N, C, P): each (n, p)'s C values normalized (mean, biased
// variance), then * w[c] + b[c] (ConvNeXt's LayerNorm).
void channel_norm(const float* x, const float* w, const float* b, float* y, int64_t N, int64_t C, int64_t P, float eps,
                  void* stream);
// y[n, c_off + c, :] = x[n, c, :] for c < Cx: one input of a concatenation along channels.
void concat_copy(const float* x, float* y, int64_t N, int64_t Cx, int64_t HW, int64_t Cy, int64_t c_off, void* stream);

// Execution-model checks (emu_selftest.cu): "reverse", "reverse_nosync", "block_shared", "warp",
// "dynamic_shared", "cp_async", "atomic", and in the emulator "divergent", "divergent_exit".
void selftest(const char* name, void* a, void* b, int blocks, int threads, int arg, void* stream);

}  // namespace cuda
}  // namespace pycnn
