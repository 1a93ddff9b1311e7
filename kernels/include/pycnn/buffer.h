// 64-byte aligned scratch buffers for packed panels and padded images. Allocation failure throws
// std::bad_alloc, which pybind11 turns into MemoryError.
#pragma once
#include <cstddef>
#include <cstdlib>
#include <new>

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
    size_t bytes = ((n * sizeof(T) + 63) / 64) * 64;
    p_ = static_cast<T*>(std::aligned_alloc(64, bytes ? bytes : 64));
    if (!p_) throw std::bad_alloc();
    n_ = n;
  }
  T* data() { return p_; }
  const T* data() const { return p_; }
  size_t size() const { return n_; }

 private:
  T* p_ = nullptr;
  size_t n_ = 0;
};

}  // namespace pycnn
