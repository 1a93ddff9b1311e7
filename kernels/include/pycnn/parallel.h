// OpenMP helpers: one place decides how many threads a kernel uses.
#pragma once
#include <algorithm>
#include <cstdint>
#include <omp.h>

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

}  // namespace pycnn
