// A CPU emulator of the CUDA execution model, so pycnn's .cu sources compile as plain C++ into
// pycnn._C_cuda_emu and are tested on every build, GPU or not (as Triton's interpreter mode,
// numba's CUDA simulator and HIP-CPU let kernels run on a CPU).
//
// Model. A launch runs its blocks one by one, spread over OpenMP threads; the threads of a block
// run as fibers on one OS thread (emu_fiber.cpp switches them by hand: no system call per
// switch), so __syncthreads() is a real barrier and a fiber runs until it reaches one. __shared__
// is `static thread_local`: one copy per OS thread, hence per running block. Warp shuffles and
// votes are warp barriers that exchange values. The order in which a block's fibers run changes
// from pass to pass (forward, reverse, seeded shuffle: set_schedule), so a missing barrier gives
// a wrong result instead of passing by luck; threads that do not all reach the same barrier
// raise. Device memory is host memory; streams and events run in order on the host.
//
// What it does not model does not compile: `extern __shared__` (use PYCNN_DYNAMIC_SHARED),
// <<<...>>> (use PYCNN_LAUNCH), textures, tensor-core (wmma/mma) intrinsics, cooperative groups,
// clusters, and every intrinsic not declared here.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>

// ---- Qualifiers -------------------------------------------------------------------------------
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline __attribute__((always_inline))
#define __launch_bounds__(...)
#define __shared__ static thread_local  // per OS thread = per running block; `extern` will not compile
#define __constant__ static
#define __align__(n) __attribute__((aligned(n)))
#define __restrict__ __restrict

// ---- Vector types -----------------------------------------------------------------------------
struct dim3 {
  unsigned x = 1, y = 1, z = 1;
  constexpr dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};
struct alignas(8) float2 {
  float x, y;
};
struct alignas(16) float4 {
  float x, y, z, w;
};
struct alignas(8) int2 {
  int x, y;
};
struct alignas(16) int4 {
  int x, y, z, w;
};
inline float2 make_float2(float x, float y) { return {x, y}; }
inline float4 make_float4(float x, float y, float z, float w) { return {x, y, z, w}; }
inline int4 make_int4(int x, int y, int z, int w) { return {x, y, z, w}; }

// ---- Runtime API subset (host memory, in-order streams) -----------------------------------------
enum cudaError_t {
  cudaSuccess = 0,
  cudaErrorInvalidValue = 1,
  cudaErrorMemoryAllocation = 2,
  cudaErrorInvalidConfiguration = 9,
  cudaErrorLaunchFailure = 719,
};
enum cudaMemcpyKind {
  cudaMemcpyHostToHost = 0,
  cudaMemcpyHostToDevice = 1,
  cudaMemcpyDeviceToHost = 2,
  cudaMemcpyDeviceToDevice = 3,
  cudaMemcpyDefault = 4
};
enum cudaFuncAttribute { cudaFuncAttributeMaxDynamicSharedMemorySize = 8 };
struct CUstream_st;
struct CUevent_st;
typedef CUstream_st* cudaStream_t;
typedef CUevent_st* cudaEvent_t;

const char* cudaGetErrorString(cudaError_t e);
cudaError_t cudaGetLastError();
cudaError_t cudaPeekAtLastError();
cudaError_t cudaGetDeviceCount(int* n);
cudaError_t cudaRuntimeGetVersion(int* v);
cudaError_t cudaMalloc(void** p, size_t bytes);
template <class T>
cudaError_t cudaMalloc(T** p, size_t bytes) {
  return cudaMalloc(reinterpret_cast<void**>(p), bytes);
}
cudaError_t cudaFree(void* p);
cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind);
cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind, cudaStream_t s = nullptr);
cudaError_t cudaMemset(void* p, int value, size_t bytes);
cudaError_t cudaMemsetAsync(void* p, int value, size_t bytes, cudaStream_t s = nullptr);
cudaError_t cudaStreamCreate(cudaStream_t* s);
cudaError_t cudaStreamDestroy(cudaStream_t s);
cudaError_t cudaStreamSynchronize(cudaStream_t s);
cudaError_t cudaDeviceSynchronize();
cudaError_t cudaEventCreate(cudaEvent_t* e);
cudaError_t cudaEventDestroy(cudaEvent_t e);
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t s = nullptr);
cudaError_t cudaEventSynchronize(cudaEvent_t e);
cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t end);
cudaError_t cudaStreamWaitEvent(cudaStream_t s, cudaEvent_t e, unsigned flags = 0);
template <class F>
cudaError_t cudaFuncSetAttribute(F* kernel, cudaFuncAttribute attr, int value);

namespace pycnn_emu {

// ---- Per-fiber state the kernels read ----------------------------------------------------------
extern thread_local dim3 t_threadIdx, t_blockIdx, t_blockDim, t_gridDim;
extern thread_local unsigned char* t_dynamic_shared;

// Barriers and warp exchanges (emu_runtime.cpp). `site` tells barriers apart, so threads waiting
// at two different __syncthreads() are reported as divergent.
void syncthreads(const char* site);
void syncwarp(unsigned mask);
// Every lane of the warp in `mask` deposits `bytes` of `value`; returns a pointer to the 32 slots.
const unsigned char* warp_exchange(unsigned mask, const void* value, size_t bytes);
int lane_id();
[[noreturn]] void fail(const std::string& what);  // a kernel-side error: the launch raises it

// cp.async as a plain copy done at the wait (per thread: commit groups, wait_group N).
void cp_async(void* dst, const void* src, size_t bytes, size_t src_bytes);
void cp_async_commit();
void cp_async_wait(int pending);

// Scheduling of a block's fibers: 0 forward, 1 reverse, 2 seeded shuffle, 3 the three in turn.
void set_schedule(int order, uint64_t seed);
int schedule_order();

// Launch configuration checks and the per-kernel dynamic shared memory limit.
void set_max_dynamic_shared(const void* kernel, int bytes);
size_t max_dynamic_shared(const void* kernel);

struct BlockBody {
  void* ctx;
  void (*run)(void*);
};
void run_grid(const char* name, const void* kernel, dim3 grid, dim3 block, size_t smem, cudaStream_t stream,
              BlockBody body);

template <class... P, class... A>
void launch(const char* name, void (*kernel)(P...), dim3 grid, dim3 block, size_t smem, cudaStream_t stream,
            A&&... args) {
  static_assert(sizeof...(P) == sizeof...(A), "PYCNN_LAUNCH: argument count differs from the kernel's");
  std::tuple<std::decay_t<P>...> params(std::forward<A>(args)...);  // converted once, as CUDA copies them
  struct Ctx {
    void (*k)(P...);
    std::tuple<std::decay_t<P>...>* params;
  } ctx{kernel, &params};
  run_grid(name, reinterpret_cast<const void*>(kernel), grid, block, smem, stream,
           BlockBody{&ctx, [](void* c) {
                       Ctx* x = static_cast<Ctx*>(c);
                       std::apply(x->k, *x->params);  // each thread gets its own copies of the parameters
                     }});
}

template <class T>
T shfl(unsigned mask, T v, int lane_of(int lane, int arg, int width), int arg, int width) {
  static_assert(std::is_trivially_copyable<T>::value && sizeof(T) <= 16, "shuffle of a type CUDA cannot shuffle");
  if (width <= 0 || width > 32 || (width & (width - 1))) fail("__shfl_*_sync: width must be a power of two <= 32");
  const unsigned char* slots = warp_exchange(mask, &v, sizeof(T));
  const int me = lane_id();
  const int src = lane_of(me, arg, width);
  if (!(mask >> src & 1u)) fail("__shfl_*_sync: source lane " + std::to_string(src) + " is not in the mask");
  T out;
  std::memcpy(&out, slots + 16 * src, sizeof(T));
  return out;
}
inline int lane_idx(int lane, int src, int width) { return (lane & ~(width - 1)) + (src & (width - 1)); }
inline int lane_down(int lane, int d, int width) { return (lane & (width - 1)) + d < width ? lane + d : lane; }
inline int lane_up(int lane, int d, int width) { return (lane & (width - 1)) >= d ? lane - d : lane; }
inline int lane_xor(int lane, int m, int width) {
  const int s = lane ^ m;
  return (s & ~(width - 1)) == (lane & ~(width - 1)) ? s : lane;
}

template <class T>
T atomic_add(T* p, T v) {
  if constexpr (std::is_integral<T>::value) {
    return __atomic_fetch_add(p, v, __ATOMIC_RELAXED);
  } else {
    T old;
    __atomic_load(p, &old, __ATOMIC_RELAXED);
    T want;
    do {
      want = old + v;
    } while (!__atomic_compare_exchange(p, &old, &want, true, __ATOMIC_RELAXED, __ATOMIC_RELAXED));
    return old;
  }
}
template <class T>
T atomic_max(T* p, T v) {
  T old = __atomic_load_n(p, __ATOMIC_RELAXED);
  while (old < v && !__atomic_compare_exchange_n(p, &old, v, true, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
  }
  return old;
}

}  // namespace pycnn_emu

// ---- Built-in variables ------------------------------------------------------------------------
#define threadIdx (::pycnn_emu::t_threadIdx)
#define blockIdx (::pycnn_emu::t_blockIdx)
#define blockDim (::pycnn_emu::t_blockDim)
#define gridDim (::pycnn_emu::t_gridDim)
constexpr int warpSize = 32;

// ---- Synchronisation, shuffles, votes ----------------------------------------------------------
#define PYCNN_EMU_STR2(x) #x
#define PYCNN_EMU_STR(x) PYCNN_EMU_STR2(x)
#define __syncthreads() ::pycnn_emu::syncthreads(__FILE__ ":" PYCNN_EMU_STR(__LINE__))
inline void __syncwarp(unsigned mask = 0xffffffffu) { ::pycnn_emu::syncwarp(mask); }
inline void __threadfence() { __atomic_thread_fence(__ATOMIC_SEQ_CST); }
inline void __threadfence_block() { __atomic_thread_fence(__ATOMIC_SEQ_CST); }

template <class T>
T __shfl_sync(unsigned mask, T v, int src, int width = 32) {
  return ::pycnn_emu::shfl(mask, v, ::pycnn_emu::lane_idx, src, width);
}
template <class T>
T __shfl_down_sync(unsigned mask, T v, unsigned delta, int width = 32) {
  return ::pycnn_emu::shfl(mask, v, ::pycnn_emu::lane_down, (int)delta, width);
}
template <class T>
T __shfl_up_sync(unsigned mask, T v, unsigned delta, int width = 32) {
  return ::pycnn_emu::shfl(mask, v, ::pycnn_emu::lane_up, (int)delta, width);
}
template <class T>
T __shfl_xor_sync(unsigned mask, T v, int lane_mask, int width = 32) {
  return ::pycnn_emu::shfl(mask, v, ::pycnn_emu::lane_xor, lane_mask, width);
}
inline unsigned __ballot_sync(unsigned mask, int pred) {
  const int p = pred != 0;
  const unsigned char* s = ::pycnn_emu::warp_exchange(mask, &p, sizeof p);
  unsigned out = 0;
  for (int l = 0; l < 32; ++l)
    if (mask >> l & 1u) {
      int v;
      std::memcpy(&v, s + 16 * l, sizeof v);
      out |= (unsigned)v << l;
    }
  return out;
}
inline int __any_sync(unsigned mask, int pred) { return __ballot_sync(mask, pred) != 0; }
inline int __all_sync(unsigned mask, int pred) { return __ballot_sync(mask, pred) == mask; }

// ---- Loads, atomics, math ----------------------------------------------------------------------
template <class T>
inline T __ldg(const T* p) {
  return *p;
}
template <class T>
inline T atomicAdd(T* p, T v) {
  return ::pycnn_emu::atomic_add(p, v);
}
inline int atomicMax(int* p, int v) { return ::pycnn_emu::atomic_max(p, v); }
inline unsigned atomicMax(unsigned* p, unsigned v) { return ::pycnn_emu::atomic_max(p, v); }
inline int atomicCAS(int* p, int cmp, int v) {
  __atomic_compare_exchange_n(p, &cmp, v, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
  return cmp;
}
inline int atomicExch(int* p, int v) { return __atomic_exchange_n(p, v, __ATOMIC_SEQ_CST); }
inline float __expf(float x) { return std::exp(x); }
inline float __fdividef(float a, float b) { return a / b; }
inline float rsqrtf(float x) { return 1.0f / std::sqrt(x); }
inline float __int_as_float(int v) {
  float f;
  std::memcpy(&f, &v, 4);
  return f;
}
inline int __float_as_int(float f) {
  int v;
  std::memcpy(&v, &f, 4);
  return v;
}

template <class F>
cudaError_t cudaFuncSetAttribute(F* kernel, cudaFuncAttribute attr, int value) {
  if (attr != cudaFuncAttributeMaxDynamicSharedMemorySize || value < 0) return cudaErrorInvalidValue;
  ::pycnn_emu::set_max_dynamic_shared(reinterpret_cast<const void*>(kernel), value);
  return cudaSuccess;
}
