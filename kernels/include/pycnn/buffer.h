// 64-byte aligned scratch buffers for packed panels and padded images. Allocation failure throws
// std::bad_alloc, which pybind11 turns into MemoryError.
#pragma once
#include <cstddef>
#include <cstdlib>
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
  AlignedBuffer(AlignedBuffer&& o) noexcept : p_(o.p_), n_(o.n_) { o.p_ = nullptr; o.n_ = 0; }
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
  kSlotCount = 4
};

inline float* workspace(WorkspaceSlot slot, size_t n) {
  thread_local AlignedBuffer<float> slots[kSlotCount];
  slots[slot].resize(n);
  return slots[slot].data();
}

}  // namespace pycnn
