// conv2d_direct: run-time choice of the ISA build (conv2d_direct__<isa>.cpp).
#include "conv2d.h"
#include "pycnn/isa.h"

namespace pycnn {

void conv2d_direct_avx512(const ConvParams&, const float*, const float*, const float*, float*, Activation);
void conv2d_direct_avx2(const ConvParams&, const float*, const float*, const float*, float*, Activation);
void conv2d_direct_generic(const ConvParams&, const float*, const float*, const float*, float*, Activation);

void conv2d_direct(const ConvParams& p, const float* x, const float* w, const float* bias, float* y,
                   Activation act) {
  switch (active_isa()) {
    case Isa::avx512: return conv2d_direct_avx512(p, x, w, bias, y, act);
    case Isa::avx2: return conv2d_direct_avx2(p, x, w, bias, y, act);
    default: return conv2d_direct_generic(p, x, w, bias, y, act);
  }
}

}  // namespace pycnn
