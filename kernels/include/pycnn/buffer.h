// 64-byte aligned scratch buffers for packed panels and padded images. Allocation failure throws
// std::bad_alloc, which pybind11 turns into MemoryError.
#pragma once
#include <cstddef>
#include <cstdlib>
#include <atomic>
#include <new>
#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace pycnn {

template <class T>
class AlignedBuffer {
 public:
  AlignedBuffer() = default;
  explicit AlignedBuffer(size_t n) { resize(n); }
  ~AlignedBuffer() { std::free(p_); }
  AlignedBuffer(const AlignedBuffer&) = delete;
  AlignedBuffer& operator=(const AlignedBuffer&) = delete;
  AlignedBuffer(AlignedBuffer&& o) noexcept : p_(o.p_), n_(o.n_) {
    o.p_ = nullptr;
    o.n_ = 0;
  }
  // Grows (never shrinks); contents are not preserved.
  void resize(size_t n) {
    if (n <= n_) return;
    std::free(p_);
    p_ = nullptr;
    n_ = 0;
    // Large buffers (packed weights, padded images) are 2 MiB aligned and asked to be backed by
    // transparent huge pages: the SGEMM streams through them and 4 KiB pages cost TLB misses.
    const size_t align = n * sizeof(T) >= (4u << 20) ? (2u << 20) : 64;
    size_t bytes = ((n * sizeof(T) + align - 1) / align) * align;
    p_ = static_cast<T*>(std::aligned_alloc(align, bytes ? bytes : align));
    if (!p_) throw std::bad_alloc();
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    if (align > 64) madvise(p_, bytes, MADV_HUGEPAGE);
#endif
    n_ = n;
  }
  T* data() { return p_; }
  const T* data() const { return p_; }
  size_t size() const { return n_; }

 private:
  T* p_ = nullptr;
  size_t n_ = 0;
};

// Per-thread scratch that survives between calls, so a kernel run does not mmap, page-fault and
// unmap its workspace every time (seen costing 14% of a Winograd F2 call). Each slot is one
// buffer per thread (OpenMP workers and Python's calling threads alike); a kernel must not hold
// the same slot twice at once. Slots only grow; they are freed when the thread exits.
enum WorkspaceSlot : int {
  kSlotGemmB = 0,    // SGEMM packed B tile (per OpenMP thread)
  kSlotGemmC = 1,    // SGEMM staged C tile (per OpenMP thread)
  kSlotConvIn = 2,   // direct: padded input; Winograd: transformed input V
  kSlotConvOut = 3,  // Winograd: GEMM output M
  kSlotPackedA = 4,  // a per-call SGEMM's packed A (the calling thread's)
  kSlotGemmA = 5,    // a per-call SGEMM's A block, packed just before use (per OpenMP thread)
  kSlotCount = 6
};

// Cap on one workspace request in bytes (pycnn.set_workspace_limit, PYCNN_WORKSPACE_LIMIT;
// default 2 GiB). A kernel whose scratch would exceed it throws WorkspaceLimitError, which the
// bindings turn into MemoryError, instead of letting the allocation swap or abort the process.
size_t workspace_limit();
void set_workspace_limit(size_t bytes);

struct WorkspaceLimitError : std::bad_alloc {
  const char* what() const noexcept override {
    return "pycnn: a kernel workspace would exceed the limit set by pycnn.set_workspace_limit() "
           "(PYCNN_WORKSPACE_LIMIT); raise the limit or use smaller batches";
  }
};

// Throws WorkspaceLimitError if n floats exceed the limit. Call it on the calling thread before a
// parallel region: C++ exceptions must not leave an OpenMP region (the process would abort).
inline void check_workspace(size_t n) {
  if (n > workspace_limit() / sizeof(float)) throw WorkspaceLimitError();
}

inline AlignedBuffer<float>& workspace_slot(WorkspaceSlot slot) {
  thread_local AlignedBuffer<float> slots[kSlotCount];
  return slots[slot];
}

// The slot's buffer grown to n floats; throws (use on the calling thread, outside OpenMP regions).
inline float* workspace(WorkspaceSlot slot, size_t n) {
  check_workspace(n);
  workspace_slot(slot).resize(n);
  return workspace_slot(slot).data();
}

// Inside an OpenMP region: nullptr instead of throwing. The region must then skip its work and
// the caller raise after the region (see ParallelFailure).
inline float* workspace_nothrow(WorkspaceSlot slot, size_t n) noexcept {
  if (n > workspace_limit() / sizeof(float)) return nullptr;
  try {
    workspace_slot(slot).resize(n);
  } catch (...) {
    return nullptr;
  }
  return workspace_slot(slot).data();
}

// Set by any thread of a region whose scratch could not be had; checked after the region.
struct ParallelFailure {
  std::atomic<bool> failed{false};
  void set() { failed.store(true, std::memory_order_relaxed); }
  void rethrow() const {
    if (failed.load()) throw std::bad_alloc();
  }
};

}  // namespace pycnn
