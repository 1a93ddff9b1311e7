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

// Split [0, n) evenly into `parts`; returns the [begin, end) of part `i`.
inline void split_range(int64_t n, int parts, int i, int64_t& begin, int64_t& end) {
  int64_t q = n / parts, r = n % parts;
  begin = i * q + std::min<int64_t>(i, r);
  end = begin + q + (i < r ? 1 : 0);
}

}  // namespace pycnn
