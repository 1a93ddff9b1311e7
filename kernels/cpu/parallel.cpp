// The thread count every kernel uses (pycnn.set_num_threads). Defaults to OpenMP's, which
// honours OMP_NUM_THREADS.
#include "pycnn/parallel.h"

#include <atomic>

namespace pycnn {

static std::atomic<int> g_threads{0};

int get_num_threads() {
  int n = g_threads.load(std::memory_order_relaxed);
  return n > 0 ? n : omp_get_max_threads();
}

void set_num_threads(int n) { g_threads.store(n > 0 ? n : 0); }

}  // namespace pycnn
