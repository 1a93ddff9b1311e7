// Kernels that check the execution model itself: the CPU emulator's tests run them under every
// schedule (tests/test_cuda_emu.py), and a GPU, when present, confirms the same results.
//
// Kernel versions:
//   selftest_reverse_kernel:   a block reverses its slice through __shared__ memory, with or
//                              without the __syncthreads() between the write and the read (without
//                              it the result depends on the threads' order: the emulator must show it).
//   selftest_block_shared_kernel: every block writes its index into one __shared__ int, then all
//                              threads read it back (shared memory is per block).
//   selftest_warp_kernel:      per warp: __shfl_xor_sync sum, __shfl_sync broadcast of lane 3,
//                              __shfl_down_sync / __shfl_up_sync by 1, __ballot_sync of odd lanes,
//                              a half-warp __shfl_xor_sync with width 16.
//   selftest_dynamic_shared_kernel: dynamic shared memory, written and read back reversed.
//   selftest_cp_async_kernel:  cp.async copies (16 and 4 bytes, with zero-fill) waited on with
//                              wait_group 1 then 0.
//   selftest_atomic_kernel:    every thread of the grid atomicAdds 1 (int) and 0.5 (float).
//   "streams" (host side): cudaMalloc, cudaMemcpyAsync and selftest_reverse_kernel on a created
//                              stream, bracketed by two events; the elapsed time must be >= 0.
//   selftest_divergent_kernel: threads below `split` wait at one __syncthreads(), the others at
//                              another or exit (emulator only: on a GPU that is undefined behaviour).
#include "cuda_common.cuh"

namespace pycnn {
namespace cuda {

__global__ void selftest_reverse_kernel(const float* __restrict__ x, float* __restrict__ y, bool sync) {
  __shared__ float buf[1024];
  const int t = threadIdx.x, n = blockDim.x;
  const int64_t base = (int64_t)blockIdx.x * n;
  buf[t] = x[base + t];
  if (sync) __syncthreads();
  y[base + t] = buf[n - 1 - t];
}

__global__ void selftest_block_shared_kernel(int* out) {
  __shared__ int owner;
  if (threadIdx.x == 0) owner = (int)blockIdx.x;
  __syncthreads();
  out[blockIdx.x * blockDim.x + threadIdx.x] = owner;
  __syncthreads();  // nobody leaves before everyone read: the next block's write must not be seen
}

// out[warp][0..7] per lane: sum, broadcast, down, up, ballot, half-warp sum, lane id, 0.
__global__ void selftest_warp_kernel(const float* __restrict__ x, float* __restrict__ out) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x, lane = threadIdx.x % 32;
  const float v = x[i];
  float s = v;
  for (int o = 16; o > 0; o /= 2) s += __shfl_xor_sync(0xffffffffu, s, o);
  const float b = __shfl_sync(0xffffffffu, v, 3);
  const float d = __shfl_down_sync(0xffffffffu, v, 1);
  const float u = __shfl_up_sync(0xffffffffu, v, 1);
  const unsigned ballot = __ballot_sync(0xffffffffu, lane % 2);
  float h = v;
  for (int o = 8; o > 0; o /= 2) h += __shfl_xor_sync(0xffffffffu, h, o, 16);
  float* o = out + (int64_t)i * 8;
  o[0] = s, o[1] = b, o[2] = d, o[3] = u, o[4] = (float)ballot, o[5] = h, o[6] = (float)lane, o[7] = 0.0f;
}

__global__ void selftest_dynamic_shared_kernel(const float* __restrict__ x, float* __restrict__ y) {
  PYCNN_DYNAMIC_SHARED(float, buf);
  const int t = threadIdx.x, n = blockDim.x;
  buf[t] = x[blockIdx.x * n + t];
  __syncthreads();
  y[blockIdx.x * n + t] = buf[n - 1 - t];
}

// y: 8 floats per thread: 4 copied by one 16-byte cp.async, 4 by 4-byte ones of which the odd
// ones are zero-filled.
__global__ void selftest_cp_async_kernel(const float* __restrict__ x, float* __restrict__ y) {
  __shared__ __align__(16) float buf[256 * 8];
  const int t = threadIdx.x;
  cp_async16(&buf[t * 8], x + t * 8, 16);
  cp_async_commit();
  for (int j = 0; j < 4; ++j) cp_async4(&buf[t * 8 + 4 + j], x + t * 8 + 4 + j, j % 2 ? 0 : 4);
  cp_async_commit();
  cp_async_wait<1>();  // the first group has landed
  const float first = buf[t * 8];
  cp_async_wait<0>();
  __syncthreads();
  const int src = (t + 1) % blockDim.x;  // read a neighbour's copies: needs the barrier
  for (int j = 0; j < 8; ++j) y[t * 8 + j] = buf[src * 8 + j];
  if (first != x[t * 8]) y[t * 8] = -1.0f;
}

__global__ void selftest_atomic_kernel(int* count, float* sum) {
  atomicAdd(count, 1);
  atomicAdd(sum, 0.5f);
}

#if !defined(__CUDACC__)
__global__ void selftest_divergent_kernel(float* y, int split, bool exit_instead) {
  const int t = threadIdx.x;
  if (t < split) {
    __syncthreads();
    y[t] = 1.0f;
  } else {
    if (exit_instead) return;
    __syncthreads();
    y[t] = 2.0f;
  }
}
#endif

void selftest(const char* name, void* a, void* b, int blocks, int threads, int arg, void* stream) {
  const std::string n = name;
  if (n == "reverse" || n == "reverse_nosync") {
    PYCNN_LAUNCH(selftest_reverse_kernel, blocks, threads, 0, stream, (const float*)a, (float*)b, n == "reverse");
  } else if (n == "block_shared") {
    PYCNN_LAUNCH(selftest_block_shared_kernel, blocks, threads, 0, stream, (int*)a);
  } else if (n == "warp") {
    PYCNN_LAUNCH(selftest_warp_kernel, blocks, threads, 0, stream, (const float*)a, (float*)b);
  } else if (n == "dynamic_shared") {
    PYCNN_LAUNCH(selftest_dynamic_shared_kernel, blocks, threads, (size_t)arg, stream, (const float*)a, (float*)b);
  } else if (n == "cp_async") {
    PYCNN_LAUNCH(selftest_cp_async_kernel, blocks, threads, 0, stream, (const float*)a, (float*)b);
  } else if (n == "streams") {
    // a: threads floats in, b: threads floats out (host memory); blocks must be 1.
    const size_t bytes = sizeof(float) * (size_t)threads;
    float *dx = nullptr, *dy = nullptr;
    cudaStream_t st;
    cudaEvent_t e0, e1;
    CUDA_CHECK(cudaStreamCreate(&st));
    CUDA_CHECK(cudaEventCreate(&e0));
    CUDA_CHECK(cudaEventCreate(&e1));
    CUDA_CHECK(cudaMalloc(&dx, bytes));
    CUDA_CHECK(cudaMalloc(&dy, bytes));
    CUDA_CHECK(cudaMemsetAsync(dy, 0, bytes, st));
    CUDA_CHECK(cudaEventRecord(e0, st));
    CUDA_CHECK(cudaMemcpyAsync(dx, a, bytes, cudaMemcpyHostToDevice, st));
    PYCNN_LAUNCH(selftest_reverse_kernel, 1, threads, 0, st, dx, dy, true);
    CUDA_CHECK(cudaMemcpyAsync(b, dy, bytes, cudaMemcpyDeviceToHost, st));
    CUDA_CHECK(cudaEventRecord(e1, st));
    CUDA_CHECK(cudaEventSynchronize(e1));
    float ms = -1.0f;
    CUDA_CHECK(cudaEventElapsedTime(&ms, e0, e1));
    CUDA_CHECK(cudaStreamSynchronize(st));
    CUDA_CHECK(cudaFree(dx));
    CUDA_CHECK(cudaFree(dy));
    CUDA_CHECK(cudaEventDestroy(e0));
    CUDA_CHECK(cudaEventDestroy(e1));
    CUDA_CHECK(cudaStreamDestroy(st));
    if (!(ms >= 0.0f)) throw std::runtime_error("selftest streams: negative elapsed time between events");
  } else if (n == "atomic") {
    PYCNN_LAUNCH(selftest_atomic_kernel, blocks, threads, 0, stream, (int*)a, (float*)b);
#if !defined(__CUDACC__)
  } else if (n == "divergent" || n == "divergent_exit") {
    PYCNN_LAUNCH(selftest_divergent_kernel, blocks, threads, 0, stream, (float*)a, arg, n == "divergent_exit");
#endif
  } else {
    throw std::invalid_argument("selftest: no kernel named " + n);
  }
}

}  // namespace cuda
}  // namespace pycnn
