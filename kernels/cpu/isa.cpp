// Run-time CPU feature detection and the process-wide ISA cap (see pycnn/isa.h); the ISA names
// live with the kernel tables (cpu_kernels.cpp).
#include "pycnn/isa.h"

#include <atomic>
#include <cstdlib>
#include <stdexcept>

namespace pycnn {

Isa cpu_best_isa() {
  // __builtin_cpu_supports also checks that the OS saves the wide registers (XGETBV).
  static const Isa best = [] {
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("fma"))
      return Isa::avx512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return Isa::avx2;
    return Isa::generic;
  }();
  return best;
}

static std::atomic<int> g_isa{-1};

Isa active_isa() {
  int v = g_isa.load(std::memory_order_relaxed);
  if (v >= 0) return static_cast<Isa>(v);
  Isa isa = cpu_best_isa();
  if (const char* env = std::getenv("PYCNN_ISA")) {
    try {
      Isa want = isa_from_name(env);
      if (static_cast<int>(want) < static_cast<int>(isa)) isa = want;
    } catch (const std::invalid_argument&) {
      // An unknown PYCNN_ISA is ignored here; pycnn/__init__.py reports it as a warning.
    }
  }
  g_isa.store(static_cast<int>(isa));
  return isa;
}

void set_isa(Isa isa) {
  if (static_cast<int>(isa) > static_cast<int>(cpu_best_isa()))
    throw std::invalid_argument(std::string("isa: this CPU cannot run '") + isa_name(isa) +
                                "' (best available: '" + isa_name(cpu_best_isa()) + "')");
  g_isa.store(static_cast<int>(isa));
}

}  // namespace pycnn
