// OpenMP helpers: one place decides how many threads a kernel uses.
#pragma once
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <memory>
#include <omp.h>
#include <stdexcept>
#include <vector>

namespace pycnn {

int get_num_threads();
void set_num_threads(int n);

// Threads worth using for `work` units of roughly `cost` flops each: tiny problems run on one
// thread because waking the OpenMP team costs a few microseconds.
inline int threads_for(double total_flops, int64_t items) {
  int nt = get_num_threads();
  if (total_flops < 1.0e6) nt = 1;
  return (int)std::max<int64_t>(1, std::min<int64_t>(nt, items));
}

// body() on an OpenMP team of nt threads, or on the caller alone when nt == 1: libgomp makes a
// futex system call per team, even a team of one, a sizeable part of a small step. Without a team
// the body's omp for loops run serially on the caller, omp_get_thread_num() is 0 and
// omp_get_num_threads() 1, and its barriers are no-ops, as in a team of one.
template <class F>
inline void parallel_run(int nt, F&& body) {
  if (nt <= 1) {
    body();
    return;
  }
#pragma omp parallel num_threads(nt)
  body();
}

// Split [0, n) evenly into `parts`; returns the [begin, end) of part `i`.
inline void split_range(int64_t n, int parts, int i, int64_t& begin, int64_t& end) {
  int64_t q = n / parts, r = n % parts;
  begin = i * q + std::min<int64_t>(i, r);
  end = begin + q + (i < r ? 1 : 0);
}

// Units [begin[t], begin[t + 1]) per thread t, run front to back by their owner; a thread whose
// own range is done takes units from the back of the range with the most left. Why: each thread
// starting on its own contiguous range keeps the locality the split was made for (a layer's
// bands on the core that wrote its input), and stealing the tail keeps a static split from
// waiting on a thread whose core is busy elsewhere (a shared machine; a descheduled vCPU), where
// a niced busy loop beside MobileNet made its 2-thread run 1.8x slower with static splits and
// onnxruntime's (which shares work out dynamically) 1.2x. A team smaller than the split steals
// the missing threads' ranges, so every unit runs. Units are counted in 32 bits (owner's front,
// back) and updated with one compare-and-swap per unit: for units of microseconds, not
// per-element loops.
class StealingRanges {
 public:
  explicit StealingRanges(const std::vector<int64_t>& begin) : n_(begin.empty() ? 0 : (int)begin.size() - 1) {
    if (n_ && !fits(begin.back() - begin.front())) throw std::length_error("work: 2^32 or more units to share out");
    slots_.reset(new Slot[(size_t)std::max(1, n_)]);
    for (int t = 0; t < n_; ++t) {
      const uint64_t f = (uint64_t)(begin[(size_t)t] - begin[0]), b = (uint64_t)(begin[(size_t)t + 1] - begin[0]);
      slots_[(size_t)t].v.store(f << 32 | b, std::memory_order_relaxed);
    }
    base_ = n_ ? begin[0] : 0;
  }
  // Even ranges of [0, units) over nt threads (split_range's).
  static std::vector<int64_t> even(int64_t units, int nt) {
    std::vector<int64_t> begin((size_t)nt + 1, units);
    for (int t = 0; t < nt; ++t) {
      int64_t end;
      split_range(units, nt, t, begin[(size_t)t], end);
    }
    return begin;
  }
  // Whether ranges of this many units can be stolen from (32-bit counters).
  static bool fits(int64_t units) { return units >= 0 && units < (int64_t(1) << 32); }

  // The next unit for thread t (its own front, else a stolen back); false when none is left.
  bool next(int t, int64_t& unit) {
    if (t < n_ && take(slots_[(size_t)t].v, true, unit)) return true;
    for (;;) {
      int victim = -1;
      uint64_t most = 0;
      for (int v = 0; v < n_; ++v) {
        const uint64_t s = slots_[(size_t)v].v.load(std::memory_order_relaxed), f = s >> 32, b = s & 0xffffffffu;
        if (b > f && b - f > most) most = b - f, victim = v;
      }
      if (victim < 0) return false;
      if (take(slots_[(size_t)victim].v, false, unit)) return true;
    }
  }

 private:
  struct alignas(64) Slot {
    std::atomic<uint64_t> v{0};
  };
  // One unit off the front (the owner) or the back (a thief) of a range; false if it is empty.
  bool take(std::atomic<uint64_t>& a, bool front, int64_t& unit) {
    uint64_t s = a.load(std::memory_order_relaxed);
    for (;;) {
      const uint64_t f = s >> 32, b = s & 0xffffffffu;
      if (f >= b) return false;
      const uint64_t next = front ? (f + 1) << 32 | b : f << 32 | (b - 1);
      if (a.compare_exchange_weak(s, next, std::memory_order_acq_rel, std::memory_order_relaxed)) {
        unit = base_ + (int64_t)(front ? f : b - 1);
        return true;
      }
    }
  }
  int n_;
  int64_t base_ = 0;
  std::unique_ptr<Slot[]> slots_;
};

}  // namespace pycnn
