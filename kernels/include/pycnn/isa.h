// Run-time ISA selection. Kernels come in three builds (generic, avx2 = AVX2+FMA, avx512 =
// AVX-512F); the best one the CPU supports is used unless set_isa() caps it (pycnn/_config.py
// does for PYCNN_ISA; the tests do to run every path on one machine). The kernels of each ISA are
// in one table: kernels/cpu/cpu_kernels.h.
#pragma once
#include <cstdint>
#include <string>

namespace pycnn {

enum class Isa : int { generic = 0, avx2 = 1, avx512 = 2 };

Isa cpu_best_isa();                          // what this CPU (and OS) supports
Isa active_isa();                            // what kernels use now
void set_isa(Isa isa);                       // throws std::invalid_argument if the CPU cannot run it
const char* isa_name(Isa isa);               // cpu_kernels.cpp
Isa isa_from_name(const std::string& name);  // throws std::invalid_argument
bool cpu_is_amd();                           // AMD's cores: tuning choices measured per vendor (sgemm.h)
int64_t l2_cache_bytes();                    // one core's L2 (the OS's report in [256 KiB, 4 MiB]; 1 MiB when none)

}  // namespace pycnn
