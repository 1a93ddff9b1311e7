// conv2d_direct: run-time choice of the ISA build (conv2d_direct__<isa>.cpp). The weights are
// reordered for one ISA's register block when prepared; the run uses that same ISA's kernel.
#include "conv2d.h"
#include "pycnn/isa.h"

namespace pycnn {

#define PYCNN_DIRECT_DECL(isa)                                                                \
  void conv2d_direct_prepare_##isa(const ConvParams&, const float*, AlignedBuffer<float>&);    \
  void conv2d_direct_##isa(const ConvParams&, const float*, const float*, const float*, float*, \
                           Activation);
PYCNN_DIRECT_DECL(avx512)
PYCNN_DIRECT_DECL(avx2)
PYCNN_DIRECT_DECL(generic)

#define PYCNN_DIRECT_OC_DECL(isa)                                                               \
  void conv2d_direct_oc_prepare_##isa(const ConvParams&, const float*, AlignedBuffer<float>&);   \
  void conv2d_direct_oc_##isa(const ConvParams&, const float*, const float*, const float*, float*, \
                              Activation);
PYCNN_DIRECT_OC_DECL(avx512)
PYCNN_DIRECT_OC_DECL(avx2)
PYCNN_DIRECT_OC_DECL(generic)

void conv2d_direct_prepare(const ConvParams& p, const float* w, DirectWeights& out) {
  count_weight_transform();
  out.isa = active_isa();
  out.K = p.K;
  out.Cg = p.Cg();
  out.R = p.R;
  out.S = p.S;
  out.groups = p.groups;
  switch (out.isa) {
    case Isa::avx512: return conv2d_direct_prepare_avx512(p, w, out.data);
    case Isa::avx2: return conv2d_direct_prepare_avx2(p, w, out.data);
    default: return conv2d_direct_prepare_generic(p, w, out.data);
  }
}

void conv2d_direct(const ConvParams& p, const float* x, const DirectWeights& w, const float* bias,
                   float* y, Activation act) {
  switch (w.isa) {
    case Isa::avx512: return conv2d_direct_avx512(p, x, w.data.data(), bias, y, act);
    case Isa::avx2: return conv2d_direct_avx2(p, x, w.data.data(), bias, y, act);
    default: return conv2d_direct_generic(p, x, w.data.data(), bias, y, act);
  }
}

void conv2d_direct_oc_prepare(const ConvParams& p, const float* w, DirectWeights& out) {
  count_weight_transform();
  out.isa = active_isa();
  out.K = p.K;
  out.Cg = p.Cg();
  out.R = p.R;
  out.S = p.S;
  out.groups = p.groups;
  switch (out.isa) {
    case Isa::avx512: return conv2d_direct_oc_prepare_avx512(p, w, out.data);
    case Isa::avx2: return conv2d_direct_oc_prepare_avx2(p, w, out.data);
    default: return conv2d_direct_oc_prepare_generic(p, w, out.data);
  }
}

void conv2d_direct_oc(const ConvParams& p, const float* x, const DirectWeights& w, const float* bias,
                      float* y, Activation act) {
  switch (w.isa) {
    case Isa::avx512: return conv2d_direct_oc_avx512(p, x, w.data.data(), bias, y, act);
    case Isa::avx2: return conv2d_direct_oc_avx2(p, x, w.data.data(), bias, y, act);
    default: return conv2d_direct_oc_generic(p, x, w.data.data(), bias, y, act);
  }
}

}  // namespace pycnn
