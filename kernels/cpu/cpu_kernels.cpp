// The per-ISA kernel tables (see cpu_kernels.h): filled once, from the <name>__<isa> symbols each
// ISA build defines; the one place that maps an Isa to its kernels.
#include "cpu_kernels.h"

#include <stdexcept>
#include <string>
#include <type_traits>

namespace pycnn {

// Declarations of every ISA's builds: `FnType name__isa;` (a function of that signature).
#define PYCNN_DECLARE_GENERIC(fn, type) std::remove_pointer_t<type> fn##__generic;
#define PYCNN_DECLARE_AVX2(fn, type) std::remove_pointer_t<type> fn##__avx2;
#define PYCNN_DECLARE_AVX512(fn, type) std::remove_pointer_t<type> fn##__avx512;
PYCNN_CPU_KERNELS(PYCNN_DECLARE_GENERIC)
PYCNN_CPU_KERNELS(PYCNN_DECLARE_AVX2)
PYCNN_CPU_KERNELS(PYCNN_DECLARE_AVX512)

namespace {

#define PYCNN_FILL_generic(fn, type) t.fn = fn##__generic;
#define PYCNN_FILL_avx2(fn, type) t.fn = fn##__avx2;
#define PYCNN_FILL_avx512(fn, type) t.fn = fn##__avx512;
// make_<isa>(): the table of one ISA, every entry its <name>__<isa> symbol.
#define PYCNN_MAKE_TABLE(ISA)           \
  CpuKernels make_##ISA() {             \
    CpuKernels t{};                     \
    t.isa = Isa::ISA;                   \
    t.name = #ISA;                      \
    PYCNN_CPU_KERNELS(PYCNN_FILL_##ISA) \
    return t;                           \
  }
PYCNN_MAKE_TABLE(generic)
PYCNN_MAKE_TABLE(avx2)
PYCNN_MAKE_TABLE(avx512)

// Indexed by the Isa's value (generic, avx2, avx512).
const CpuKernels kTables[] = {make_generic(), make_avx2(), make_avx512()};
constexpr int kIsaCount = sizeof(kTables) / sizeof(kTables[0]);
static_assert(static_cast<int>(Isa::avx512) == 2, "kTables is indexed by Isa");

}  // namespace

const CpuKernels& cpu_kernels(Isa isa) {
  const int i = static_cast<int>(isa);
  if (i < 0 || i >= kIsaCount) throw std::invalid_argument("isa: no kernel table for ISA " + std::to_string(i));
  return kTables[i];
}

const CpuKernels& active_kernels() { return kTables[static_cast<int>(active_isa())]; }

const char* isa_name(Isa isa) { return cpu_kernels(isa).name; }

Isa isa_from_name(const std::string& name) {
  std::string names;
  for (const CpuKernels& t : kTables) {
    if (name == t.name) return t.isa;
    names += std::string(names.empty() ? "'" : ", '") + t.name + "'";
  }
  throw std::invalid_argument("isa: expected one of " + names + ", got '" + name + "'");
}

const SgemmVariant& sgemm_select(const CpuKernels& k, int MR, int nr, int mr) {
  const SgemmVariants vs = k.sgemm_variants();
  const SgemmVariant* best = nullptr;
  for (int i = 0; i < vs.count; ++i) {
    const SgemmVariant& v = vs.items[i];
    if (v.MR != MR || v.NR < nr || v.MRC < mr) continue;
    if (!best || v.NR < best->NR || (v.NR == best->NR && v.MRC < best->MRC)) best = &v;
  }
  if (!best)
    throw std::logic_error(std::string("sgemm: no ") + k.name + " micro-kernel for " + std::to_string(MR) +
                           "-row panels of " + std::to_string(nr) + " columns");
  return *best;
}

}  // namespace pycnn
