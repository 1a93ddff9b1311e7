// The CUDA emulator's scheduler and runtime (cuda_emu.h): blocks over OpenMP threads, a block's
// threads as fibers (emu_fiber.h), barriers, warp exchanges, cp.async, streams and events.
#include <omp.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "cuda_emu.h"
#include "emu_fiber.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#define PYCNN_EMU_ASAN 1
#endif

struct CUstream_st {
  int id;
};
struct CUevent_st {
  std::chrono::steady_clock::time_point t;
  bool recorded = false;
};

namespace pycnn_emu {

thread_local dim3 t_threadIdx, t_blockIdx, t_blockDim, t_gridDim;
thread_local unsigned char* t_dynamic_shared = nullptr;

namespace {

constexpr size_t kStack = 256 * 1024;  // per emulated thread; a guard page below it
constexpr size_t kDefaultDynamicShared = 48 * 1024, kMaxDynamicShared = 227 * 1024;  // sm_90's limits
enum State : uint8_t { kRun, kAtBarrier, kAtWarp, kDone };

struct Copy {
  void* dst;
  const void* src;
  size_t bytes, src_bytes;
};

struct Fiber {
  void* sp = nullptr;
  unsigned char* stack = nullptr;
  void* asan_fake = nullptr;  // AddressSanitizer's fake stack of this fiber while it is switched out
  dim3 tid;
  int lane = 0, warp = 0;
  State st = kDone;
  const char* site = nullptr;             // the __syncthreads() it waits at
  unsigned mask = 0;                      // the mask of the warp exchange it waits at
  std::vector<Copy> open;                 // cp.async copies not yet committed
  std::vector<std::vector<Copy>> groups;  // committed groups, oldest first
};

struct Warp {
  alignas(16) unsigned char deposit[32][16];
  alignas(16) unsigned char released[32][16];  // what the last released exchange read
};

struct Block {
  std::vector<Fiber> fibers;
  std::vector<Warp> warps;
  std::vector<unsigned char*> stacks;
  std::vector<unsigned char> dynamic_shared;
  std::vector<int> order;
  void* sched_sp = nullptr;
  const void* sched_stack = nullptr;  // the scheduler's (OS thread's) stack, told to AddressSanitizer
  size_t sched_stack_size = 0;
  void* sched_fake = nullptr;
  Fiber* cur = nullptr;
  BlockBody body{};
  std::exception_ptr error;
  ~Block() {
    for (unsigned char* s : stacks) stack_free(s, kStack);
  }
};

thread_local Block t_block;
std::atomic<int> g_order{3};
std::atomic<uint64_t> g_seed{0x5EED};
std::mutex g_attr_mutex;
std::unordered_map<const void*, size_t> g_max_dynamic;
thread_local cudaError_t t_last_error = cudaSuccess;

// The three switches, with AddressSanitizer told which stack runs next (a sanitizer build runs
// the CUDA kernel tests on the emulator: tests/test_cuda_emu.py under `make sanitize`).
void switch_to_fiber(Block& b, Fiber& f) {
#if defined(PYCNN_EMU_ASAN)
  __sanitizer_start_switch_fiber(&b.sched_fake, f.stack, kStack);
#endif
  pycnn_emu_switch(&b.sched_sp, f.sp);
#if defined(PYCNN_EMU_ASAN)
  __sanitizer_finish_switch_fiber(b.sched_fake, nullptr, nullptr);
#endif
}

void switch_to_scheduler(Block& b, Fiber& f) {
#if defined(PYCNN_EMU_ASAN)
  __sanitizer_start_switch_fiber(&f.asan_fake, b.sched_stack, b.sched_stack_size);
#endif
  pycnn_emu_switch(&f.sp, b.sched_sp);
#if defined(PYCNN_EMU_ASAN)
  __sanitizer_finish_switch_fiber(f.asan_fake, nullptr, nullptr);
#endif
}

[[noreturn]] void exit_to_scheduler(Block& b, Fiber& f) {
#if defined(PYCNN_EMU_ASAN)
  __sanitizer_start_switch_fiber(nullptr, b.sched_stack, b.sched_stack_size);  // this fiber's stack is done
#endif
  pycnn_emu_switch(&f.sp, b.sched_sp);
  std::abort();  // a finished fiber is never resumed
}

uint64_t splitmix(uint64_t& s) {
  uint64_t z = (s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

std::string thread_name(const dim3& t) {
  return "thread (" + std::to_string(t.x) + "," + std::to_string(t.y) + "," + std::to_string(t.z) + ")";
}

void run_copies(std::vector<Copy>& g) {
  for (const Copy& c : g) {
    std::memcpy(c.dst, c.src, c.src_bytes);
    std::memset(static_cast<unsigned char*>(c.dst) + c.src_bytes, 0, c.bytes - c.src_bytes);
  }
  g.clear();
}

void fiber_main(void* arg) {
  Fiber* f = static_cast<Fiber*>(arg);
  Block& b = t_block;
#if defined(PYCNN_EMU_ASAN)
  __sanitizer_finish_switch_fiber(nullptr, &b.sched_stack, &b.sched_stack_size);
#endif
  try {
    b.body.run(b.body.ctx);
    for (auto& g : f->groups) run_copies(g);  // copies never waited for still land
    run_copies(f->open);
  } catch (...) {
    if (!b.error) b.error = std::current_exception();
  }
  f->st = kDone;
  exit_to_scheduler(b, *f);
}

// Releases the lanes of each warp whose exchange every lane of its mask has reached.
bool release_warps(Block& b, int nthreads) {
  bool any = false;
  for (size_t w = 0; w < b.warps.size(); ++w) {
    const int first = (int)w * 32, lanes = std::min(32, nthreads - first);
    bool snap = false;
    for (int l = 0; l < lanes; ++l) {
      Fiber& f = b.fibers[first + l];
      if (f.st != kAtWarp) continue;
      bool ready = true;
      for (int m = 0; m < 32 && ready; ++m) {
        if (!(f.mask >> m & 1u)) continue;
        if (m >= lanes) fail("a warp exchange's mask names lane " + std::to_string(m) + ", which this block lacks");
        const Fiber& o = b.fibers[first + m];
        if (o.st == kDone)
          fail("warp exchange: lane " + std::to_string(m) + " of its mask exited before reaching it (" +
               thread_name(f.tid) + " waits)");
        if (o.st == kAtWarp && o.mask != f.mask) fail("warp exchange: lanes of one warp passed different masks");
        ready = o.st == kAtWarp;
      }
      if (!ready) continue;
      if (!snap) std::memcpy(b.warps[w].released, b.warps[w].deposit, sizeof b.warps[w].deposit);
      snap = true;
      for (int m = 0; m < 32; ++m)
        if (f.mask >> m & 1u) b.fibers[first + m].st = kRun;
      any = true;
    }
  }
  return any;
}

void make_order(Block& b, int n, int mode, uint64_t& rng) {
  b.order.resize(n);
  for (int i = 0; i < n; ++i) b.order[i] = i;
  if (mode == 1) {
    std::reverse(b.order.begin(), b.order.end());
  } else if (mode == 2) {
    for (int i = n - 1; i > 0; --i) std::swap(b.order[i], b.order[splitmix(rng) % (uint64_t)(i + 1)]);
  }
}

void run_block(Block& b, dim3 block, int64_t linear_block) {
  const int n = (int)(block.x * block.y * block.z);
  while ((int)b.stacks.size() < n) b.stacks.push_back(stack_alloc(kStack));
  b.fibers.resize(n);
  b.warps.resize((n + 31) / 32);
  b.error = nullptr;
  for (int i = 0; i < n; ++i) {
    Fiber& f = b.fibers[i];
    f.tid = dim3(i % block.x, (i / block.x) % block.y, i / (block.x * block.y));
    f.lane = i % 32;
    f.warp = i / 32;
    f.st = kRun;
    f.open.clear();
    f.groups.clear();
    f.stack = b.stacks[i];
#if defined(PYCNN_EMU_ASAN)
    __asan_unpoison_memory_region(f.stack, kStack);  // frames of an earlier fiber that never returned
#endif
    f.sp = fiber_prepare(f.stack, kStack, fiber_main, &f);
  }
  const int setting = g_order.load(std::memory_order_relaxed);
  uint64_t rng = g_seed.load(std::memory_order_relaxed) ^ (uint64_t)linear_block * 0x9E3779B97F4A7C15ull;
  for (int pass = 0;; ++pass) {
    make_order(b, n, setting == 3 ? pass % 3 : setting, rng);
    for (int i : b.order) {
      Fiber& f = b.fibers[i];
      if (f.st != kRun) continue;
      b.cur = &f;
      t_threadIdx = f.tid;
      switch_to_fiber(b, f);
      if (b.error) std::rethrow_exception(b.error);
    }
    b.cur = nullptr;
    if (release_warps(b, n)) continue;
    int done = 0, at_barrier = 0;
    const Fiber* waiting = nullptr;
    for (const Fiber& f : b.fibers) {
      if (f.st == kDone) ++done;
      if (f.st == kAtBarrier) {
        ++at_barrier;
        if (!waiting) waiting = &f;
        if (std::strcmp(f.site, waiting->site) != 0)
          fail("__syncthreads() divergence: " + thread_name(waiting->tid) + " waits at " + waiting->site + ", " +
               thread_name(f.tid) + " at " + f.site);
      }
    }
    if (done == n) return;
    if (at_barrier == n) {
      for (Fiber& f : b.fibers) f.st = kRun;
      continue;
    }
    if (waiting) {
      for (const Fiber& f : b.fibers)
        if (f.st == kDone)
          fail("__syncthreads() not reached by every thread of the block: " + thread_name(f.tid) + " exited while " +
               thread_name(waiting->tid) + " waits at " + waiting->site);
    }
    for (const Fiber& f : b.fibers)
      if (f.st == kAtWarp)
        fail("deadlock: " + thread_name(f.tid) + " waits at a warp exchange that lanes of its mask never reach");
    fail("the block's threads are stuck");  // unreachable by construction; kept as a guard
  }
}

}  // namespace

void fail(const std::string& what) { throw std::runtime_error("CUDA emulator: " + what); }

int lane_id() { return t_block.cur->lane; }

void syncthreads(const char* site) {
  Block& b = t_block;
  Fiber* f = b.cur;
  f->st = kAtBarrier;
  f->site = site;
  switch_to_scheduler(b, *f);
}

const unsigned char* warp_exchange(unsigned mask, const void* value, size_t bytes) {
  Block& b = t_block;
  Fiber* f = b.cur;
  if (!(mask >> f->lane & 1u)) fail("a warp exchange's mask leaves out the calling lane " + std::to_string(f->lane));
  Warp& w = b.warps[f->warp];
  std::memcpy(w.deposit[f->lane], value, bytes);
  f->st = kAtWarp;
  f->mask = mask;
  switch_to_scheduler(b, *f);
  return &b.warps[f->warp].released[0][0];
}

void syncwarp(unsigned mask) {
  const char none = 0;
  warp_exchange(mask, &none, 1);
}

void cp_async(void* dst, const void* src, size_t bytes, size_t src_bytes) {
  if (src_bytes > bytes) fail("cp.async: source size larger than the copy");
  t_block.cur->open.push_back(Copy{dst, src, bytes, src_bytes});
}

void cp_async_commit() {
  Fiber* f = t_block.cur;
  f->groups.emplace_back(std::move(f->open));
  f->open.clear();
}

void cp_async_wait(int pending) {
  Fiber* f = t_block.cur;
  while ((int)f->groups.size() > pending) {
    run_copies(f->groups.front());
    f->groups.erase(f->groups.begin());
  }
}

void set_schedule(int order, uint64_t seed) {
  if (order < 0 || order > 3) throw std::invalid_argument("order: 0 forward, 1 reverse, 2 shuffle, 3 all in turn");
  g_order = order;
  g_seed = seed;
}
int schedule_order() { return g_order.load(); }

void set_max_dynamic_shared(const void* kernel, int bytes) {
  std::lock_guard<std::mutex> lock(g_attr_mutex);
  g_max_dynamic[kernel] = (size_t)bytes;
}

size_t max_dynamic_shared(const void* kernel) {
  std::lock_guard<std::mutex> lock(g_attr_mutex);
  auto it = g_max_dynamic.find(kernel);
  return it == g_max_dynamic.end() ? kDefaultDynamicShared : it->second;
}

void run_grid(const char* name, const void* kernel, dim3 grid, dim3 block, size_t smem, cudaStream_t stream,
              BlockBody body) {
  const std::string where = std::string("CUDA error in launch of ") + name + ": ";
  const uint64_t nt = (uint64_t)block.x * block.y * block.z;
  if (nt == 0 || nt > 1024 || block.z > 64 || grid.x == 0 || grid.y == 0 || grid.z == 0 || grid.y > 65535 ||
      grid.z > 65535 || grid.x > 0x7fffffffu)
    throw std::runtime_error(where + "invalid configuration argument (grid " + std::to_string(grid.x) + "x" +
                             std::to_string(grid.y) + "x" + std::to_string(grid.z) + ", block " +
                             std::to_string(block.x) + "x" + std::to_string(block.y) + "x" + std::to_string(block.z) +
                             ")");
  if (smem > std::min(max_dynamic_shared(kernel), kMaxDynamicShared))
    throw std::runtime_error(where + "invalid argument (" + std::to_string(smem) +
                             " bytes of dynamic shared memory; above 48 KiB needs cudaFuncSetAttribute)");
  const int64_t nblocks = (int64_t)grid.x * grid.y * grid.z;
  std::exception_ptr error;
  std::mutex error_mutex;
  std::atomic<bool> failed{false};
  const int nthreads = omp_in_parallel() ? 1 : (int)std::min<int64_t>(omp_get_max_threads(), nblocks);
#pragma omp parallel for num_threads(nthreads) schedule(dynamic, 1)
  for (int64_t i = 0; i < nblocks; ++i) {
    if (failed.load(std::memory_order_relaxed)) continue;
    try {
      Block& b = t_block;
      b.body = body;
      b.dynamic_shared.assign(smem + 16, 0xFF);  // NaN bytes: a read before any write shows
      t_dynamic_shared = b.dynamic_shared.data();
      t_blockIdx = dim3((unsigned)(i % grid.x), (unsigned)(i / grid.x % grid.y), (unsigned)(i / grid.x / grid.y));
      t_blockDim = block;
      t_gridDim = grid;
      run_block(b, block, i);
    } catch (...) {
      std::lock_guard<std::mutex> lock(error_mutex);
      if (!error) error = std::current_exception();
      failed = true;
    }
  }
  if (error) {
    try {
      std::rethrow_exception(error);
    } catch (const std::exception& e) {
      throw std::runtime_error(where + e.what());
    }
  }
}

}  // namespace pycnn_emu

// ---- Runtime API ---------------------------------------------------------------------------------
using pycnn_emu::t_last_error;

const char* cudaGetErrorString(cudaError_t e) {
  switch (e) {
    case cudaSuccess:
      return "no error";
    case cudaErrorInvalidValue:
      return "invalid argument";
    case cudaErrorMemoryAllocation:
      return "out of memory";
    case cudaErrorInvalidConfiguration:
      return "invalid configuration argument";
    default:
      return "unspecified launch failure";
  }
}
cudaError_t cudaGetLastError() {
  cudaError_t e = t_last_error;
  t_last_error = cudaSuccess;
  return e;
}
cudaError_t cudaPeekAtLastError() { return t_last_error; }
cudaError_t cudaGetDeviceCount(int* n) {
  *n = 1;
  return cudaSuccess;
}
cudaError_t cudaRuntimeGetVersion(int* v) {
  *v = 0;  // the emulator
  return cudaSuccess;
}
cudaError_t cudaMalloc(void** p, size_t bytes) {
  *p = std::aligned_alloc(256, (bytes + 255) / 256 * 256 + 256);
  return *p ? cudaSuccess : cudaErrorMemoryAllocation;
}
cudaError_t cudaFree(void* p) {
  std::free(p);
  return cudaSuccess;
}
cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind) {
  if (bytes) std::memmove(dst, src, bytes);
  return cudaSuccess;
}
cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind k, cudaStream_t) {
  return cudaMemcpy(dst, src, bytes, k);
}
cudaError_t cudaMemset(void* p, int value, size_t bytes) {
  if (bytes) std::memset(p, value, bytes);
  return cudaSuccess;
}
cudaError_t cudaMemsetAsync(void* p, int value, size_t bytes, cudaStream_t) { return cudaMemset(p, value, bytes); }
cudaError_t cudaStreamCreate(cudaStream_t* s) {
  static std::atomic<int> next{1};
  *s = new CUstream_st{next++};
  return cudaSuccess;
}
cudaError_t cudaStreamDestroy(cudaStream_t s) {
  delete s;
  return cudaSuccess;
}
cudaError_t cudaStreamSynchronize(cudaStream_t) { return cudaSuccess; }  // work ran at launch
cudaError_t cudaDeviceSynchronize() { return cudaSuccess; }
cudaError_t cudaEventCreate(cudaEvent_t* e) {
  *e = new CUevent_st();
  return cudaSuccess;
}
cudaError_t cudaEventDestroy(cudaEvent_t e) {
  delete e;
  return cudaSuccess;
}
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t) {
  e->t = std::chrono::steady_clock::now();
  e->recorded = true;
  return cudaSuccess;
}
cudaError_t cudaEventSynchronize(cudaEvent_t) { return cudaSuccess; }
cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t a, cudaEvent_t b) {
  if (!a->recorded || !b->recorded) return cudaErrorInvalidValue;
  *ms = std::chrono::duration<float, std::milli>(b->t - a->t).count();
  return cudaSuccess;
}
cudaError_t cudaStreamWaitEvent(cudaStream_t, cudaEvent_t, unsigned) { return cudaSuccess; }
