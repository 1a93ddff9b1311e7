// The FMA peak loop for the avx512 build (fma_peak.inl).
#include "fma_peak.inl"

namespace pycnn {

double fma_peak__avx512(int64_t iters, float* sink) { return fma_peak_detail::run(iters, sink); }

}  // namespace pycnn
