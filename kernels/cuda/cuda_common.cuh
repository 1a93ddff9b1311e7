// What every pycnn .cu file includes: CUDA itself under nvcc, the CPU emulator (emu/cuda_emu.h)
// under the host compiler, and the few macros that differ between the two:
//   PYCNN_LAUNCH(kernel, grid, block, smem, stream, args...)  every launch (then CUDA_CHECK)
//   PYCNN_DYNAMIC_SHARED(T, name)                             the dynamic shared memory as T*
//   cp_async16 / cp_async4, cp_async_commit, cp_async_wait<N> asynchronous global->shared copies
#pragma once
#include <cstdint>
#include <stdexcept>
#include <string>

#if defined(__CUDACC__)
#include <cuda_runtime.h>
#define PYCNN_DEVICE_NAME "cuda"
#else
#include "emu/cuda_emu.h"
#define PYCNN_DEVICE_NAME "cuda_emu"
#endif

#define CUDA_CHECK(call)                                                                                 \
  do {                                                                                                   \
    cudaError_t err_ = (call);                                                                           \
    if (err_ != cudaSuccess)                                                                             \
      throw std::runtime_error(std::string("CUDA error in ") + #call + ": " + cudaGetErrorString(err_)); \
  } while (0)

#if defined(__CUDACC__)
#define PYCNN_LAUNCH(kernel, grid, block, smem, stream, ...)                                                         \
  do {                                                                                                               \
    kernel<<<(grid), (block), (smem), (cudaStream_t)(stream)>>>(__VA_ARGS__);                                        \
    cudaError_t err_ = cudaGetLastError();                                                                           \
    if (err_ != cudaSuccess)                                                                                         \
      throw std::runtime_error(std::string("CUDA error in launch of ") + #kernel + ": " + cudaGetErrorString(err_)); \
  } while (0)
#define PYCNN_DYNAMIC_SHARED(T, name)                                  \
  extern __shared__ __align__(16) unsigned char pycnn_dynamic_smem_[]; \
  T* name = reinterpret_cast<T*>(pycnn_dynamic_smem_)
#else
#define PYCNN_LAUNCH(kernel, grid, block, smem, stream, ...) \
  ::pycnn_emu::launch(#kernel, kernel, (grid), (block), (smem), (cudaStream_t)(stream), __VA_ARGS__)
#define PYCNN_DYNAMIC_SHARED(T, name) T* name = reinterpret_cast<T*>(::pycnn_emu::t_dynamic_shared)
#endif

namespace pycnn {
namespace cuda {

// 16 bytes global -> shared, zero-filled beyond src_bytes (0 or 16): the out-of-range part of a
// tile. Both addresses 16-byte aligned.
__device__ __forceinline__ void cp_async16(void* smem, const void* gmem, int src_bytes) {
#if defined(__CUDACC__)
  const unsigned s = (unsigned)__cvta_generic_to_shared(smem);
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(s), "l"(gmem), "r"(src_bytes));
#else
  ::pycnn_emu::cp_async(smem, gmem, 16, (size_t)src_bytes);
#endif
}

// 4 bytes global -> shared, zero-filled when src_bytes is 0 (padding of an implicit-GEMM tile).
__device__ __forceinline__ void cp_async4(void* smem, const void* gmem, int src_bytes) {
#if defined(__CUDACC__)
  const unsigned s = (unsigned)__cvta_generic_to_shared(smem);
  asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;\n" ::"r"(s), "l"(gmem), "r"(src_bytes));
#else
  ::pycnn_emu::cp_async(smem, gmem, 4, (size_t)src_bytes);
#endif
}

__device__ __forceinline__ void cp_async_commit() {
#if defined(__CUDACC__)
  asm volatile("cp.async.commit_group;\n" ::);
#else
  ::pycnn_emu::cp_async_commit();
#endif
}

// Waits until at most N committed groups of this thread are still in flight.
template <int N>
__device__ __forceinline__ void cp_async_wait() {
#if defined(__CUDACC__)
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
#else
  ::pycnn_emu::cp_async_wait(N);
#endif
}

inline int ceil_div(int64_t a, int64_t b) { return (int)((a + b - 1) / b); }

}  // namespace cuda
}  // namespace pycnn
