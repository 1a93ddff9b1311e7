// The thread count every kernel uses (pycnn.set_num_threads). Defaults to OpenMP's, which
// honours OMP_NUM_THREADS.
#include "pycnn/parallel.h"

#include <atomic>
#include <cstdlib>

#include "pycnn/buffer.h"

namespace pycnn {

static std::atomic<int> g_threads{0};

int get_num_threads() {
  int n = g_threads.load(std::memory_order_relaxed);
  return n > 0 ? n : omp_get_max_threads();
}

void set_num_threads(int n) { g_threads.store(n > 0 ? n : 0); }

// 2 GiB unless set (pycnn/_config.py applies PYCNN_WORKSPACE_LIMIT through set_workspace_limit).
static std::atomic<size_t> g_ws_limit{(size_t)2 << 30};

size_t workspace_limit() { return g_ws_limit.load(std::memory_order_relaxed); }
void set_workspace_limit(size_t bytes) { g_ws_limit.store(bytes); }

}  // namespace pycnn
