// Run-time CPU feature detection and the process-wide ISA cap (see pycnn/isa.h); the ISA names
// live with the kernel tables (cpu_kernels.cpp).
#include "pycnn/isa.h"

#include <algorithm>
#include <atomic>
#include <stdexcept>

#include <unistd.h>

namespace pycnn {

Isa cpu_best_isa() {
  // __builtin_cpu_supports also checks that the OS saves the wide registers (XGETBV).
  static const Isa best = [] {
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl") &&
        __builtin_cpu_supports("fma"))
      return Isa::avx512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return Isa::avx2;
    return Isa::generic;
  }();
  return best;
}

bool cpu_is_amd() {
  static const bool amd = [] {
    __builtin_cpu_init();
    return __builtin_cpu_is("amd") != 0;
  }();
  return amd;
}

int64_t l2_cache_bytes() {
  static const int64_t bytes = [] {
    const long v = sysconf(_SC_LEVEL2_CACHE_SIZE);  // glibc reads it from cpuid on x86
    // Kept to the L2 sizes of today's cores (512 KiB on Zen 3 .. 2 MiB on this Xeon, room to 4 MiB):
    // a hypervisor that reports its L3 as the L2 would otherwise make one weight group of it.
    return v > 0 ? std::clamp<int64_t>(v, int64_t(256) << 10, int64_t(4) << 20) : int64_t(1) << 20;
  }();
  return bytes;
}

static std::atomic<int> g_isa{-1};

Isa active_isa() {
  int v = g_isa.load(std::memory_order_relaxed);
  if (v >= 0) return static_cast<Isa>(v);
  // The best path unless capped by set_isa (pycnn/_config.py applies PYCNN_ISA that way).
  const Isa isa = cpu_best_isa();
  g_isa.store(static_cast<int>(isa));
  return isa;
}

void set_isa(Isa isa) {
  if (static_cast<int>(isa) > static_cast<int>(cpu_best_isa()))
    throw std::invalid_argument(std::string("isa: this CPU cannot run '") + isa_name(isa) + "' (best available: '" +
                                isa_name(cpu_best_isa()) + "')");
  g_isa.store(static_cast<int>(isa));
}

}  // namespace pycnn
