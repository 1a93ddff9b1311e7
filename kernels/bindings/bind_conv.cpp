// Bindings: conv2d (direct, im2col) and prepared im2col weights.
#include <algorithm>
#include <limits>
#include <vector>
#include <memory>
#include <tuple>

#include "bindings_cpu.h"
#include "conv2d.h"
#include "conv2d_algos.h"
#include "ops_cpu.h"

namespace pycnn {

namespace {

// Checks that the arrays agree with each other and with the parameters, so that no call can
// read or write outside them; ops.py has already produced friendlier errors for user input.
ConvParams conv_params(const farray& x, const farray& w, const farray& y, int64_t sh, int64_t sw, int64_t pt,
                       int64_t pl, int64_t dh, int64_t dw, int64_t groups) {
  require_ndim(x, 4, "x");
  require_ndim(w, 4, "weight");
  require_ndim(y, 4, "out");
  PYCNN_REQUIRE(groups >= 1, "groups: must be >= 1");
  PYCNN_REQUIRE(sh >= 1 && sw >= 1, "stride: must be >= 1");
  PYCNN_REQUIRE(dh >= 1 && dw >= 1, "dilation: must be >= 1");
  PYCNN_REQUIRE(pt >= 0 && pl >= 0, "padding: must be >= 0");
  ConvParams p{x.shape(0), x.shape(1), x.shape(2), x.shape(3), w.shape(0), w.shape(2), w.shape(3), sh,
               sw,         pt,         pl,         dh,         dw,         groups,     y.shape(2), y.shape(3)};
  PYCNN_REQUIRE(p.C % groups == 0 && p.K % groups == 0, "groups: must divide the channel counts");
  PYCNN_REQUIRE(w.shape(1) * groups == p.C, "weight: shape[1] * groups must equal x's channels");
  PYCNN_REQUIRE(y.shape(0) == p.N && y.shape(1) == p.K, "out: expected (N, K, Ho, Wo)");
  PYCNN_REQUIRE(p.R >= 1 && p.S >= 1, "weight: kernel size must be >= 1");
  return p;
}

// Weights prepared for one algorithm (conv2d_algos.h), with the shape they were prepared for.
struct PreparedWeights {
  ConvParams p;  // K, C, R, S, groups are meaningful
  const ConvAlgorithm* algo = nullptr;
  std::unique_ptr<ConvWeights> w;
};

constexpr float kInf = std::numeric_limits<float>::infinity();

// The epilogue: ReLU (relu), then ONNX's Clip / ReLU6 [clip_lo, clip_hi] (unbounded by default):
// min(max(v, max(0, lo)), hi) is relu followed by the clip; then post_fn (a UnaryFn code of
// _C.unary with its a, b; -1: none).
Activation epilogue_activation(bool relu, float clip_lo, float clip_hi, int post_fn, float post_a, float post_b) {
  PYCNN_REQUIRE(!(clip_lo != clip_lo) && !(clip_hi != clip_hi), "clip_lo, clip_hi: must not be NaN");
  PYCNN_REQUIRE(clip_lo <= clip_hi, "clip_lo: must be <= clip_hi");
  PYCNN_REQUIRE(post_fn >= -1 && post_fn <= static_cast<int>(UnaryFn::gelu), "post_fn: expected -1 or a _C.unary code");
  Activation act = Activation::clamp(relu && clip_lo < 0.0f ? 0.0f : clip_lo, clip_hi);
  act.fn = post_fn;
  act.a = post_a;
  act.b = post_b;
  return act;
}

// The 16 numbers pycnn/registry.py's geometry() describes a convolution by, as ConvParams.
ConvParams geometry_params(const std::vector<int64_t>& g) {
  PYCNN_REQUIRE(g.size() == 16, "geometry: expected (N, C, H, W, K, R, S, sh, sw, pt, pl, dh, dw, groups, Ho, Wo)");
  return ConvParams{g[0], g[1], g[2],  g[3],  g[4],  g[5],  g[6],  g[7],
                    g[8], g[9], g[10], g[11], g[12], g[13], g[14], g[15]};
}

// The algorithm's refusal of p as a ValueError naming it.
void require_runs(const ConvAlgorithm& a, const ConvParams& p) {
  const std::string why = a.refuse(p);
  PYCNN_REQUIRE(why.empty(), std::string("algo: '") + a.name + "' " + why);
}

// One prepared convolution on x into y (shapes checked against the prepared weights; bias
// already checked against K), residual None or y's shape, added before the activation.
void run_prepared(const PreparedWeights& pw, farray& x, const float* b, farray& y, int64_t sh, int64_t sw, int64_t pt,
                  int64_t pl, int64_t dh, int64_t dw, Activation act, const py::object& residual) {
  require_ndim(x, 4, "x");
  require_ndim(y, 4, "out");
  const ConvParams& q = pw.p;
  PYCNN_REQUIRE(x.shape(1) == q.C, "x: channels do not match the prepared weights");
  PYCNN_REQUIRE(y.shape(0) == x.shape(0) && y.shape(1) == q.K, "out: expected (N, K, Ho, Wo)");
  ConvParams p{x.shape(0), x.shape(1), x.shape(2), x.shape(3), q.K, q.R,      q.S,        sh,
               sw,         pt,         pl,         dh,         dw,  q.groups, y.shape(2), y.shape(3)};
  float* yp = wptr(y, "out");
  const float* xp = x.data();
  farray rkeep = no_array();
  const float* rp = nullptr;
  if (!residual.is_none()) {
    rkeep = residual.cast<farray>();
    PYCNN_REQUIRE(rkeep.ndim() == 4 && rkeep.shape(0) == y.shape(0) && rkeep.shape(1) == y.shape(1) &&
                      rkeep.shape(2) == y.shape(2) && rkeep.shape(3) == y.shape(3),
                  "residual: expected the output's shape (N, K, Ho, Wo)");
    rp = rkeep.data();
  }
  require_runs(*pw.algo, p);
  py::gil_scoped_release nogil;
  pw.algo->run(*pw.w, p, xp, b, yp, act, rp, 0);
}

struct BoundConv {
  std::shared_ptr<PreparedWeights> pw;
  farray bias;  // keeps b alive (empty when there is none)
  const float* b;
  int64_t xshape[4];
  int64_t sh, sw, pt, pl, dh, dw, Ho, Wo;
  Activation act;  // the epilogue's clamp (ReLU, ReLU6 / Clip)
  // 0: the call returns y (N, K, Ho, Wo). 1 or 2: it returns the max of each output map, (N, K)
  // or (N, K, 1, 1): a Graph's conv followed by a max over H and W (Kim's max over time), so the
  // maps never reach Python (one step instead of two).
  int max_map = 0;
  // kDirectOcXBlocked | kDirectOcYBlocked: x and/or y are NCHW16c, (N, C/16, H, W, 16). direct_oc
  // takes a blocked y for any conv and a blocked x for 1x1 unpadded ones, and a residual in
  // either layout (told apart by its rank); Winograd takes a blocked y without a residual;
  // depthwise_c16 any of them. A Graph keeps ResNet's residual stream in that layout
  // (pycnn/layout.py). | kDirectOcMeanY (direct_oc): the call returns (N, K, 1, 1), each output
  // map's mean, its maps never written (pycnn/graph/fuse_mean.py).
  int layout = 0;
};

// Shape of a tensor of `c` channels in NCHW or, blocked, NCHW16c (no allocation: checked per call).
struct Shape {
  int64_t d[5];
  int nd;
};
Shape layout_shape(int64_t n, int64_t c, int64_t h, int64_t w, bool blocked) {
  if (blocked) return {{n, c / 16, h, w, 16}, 5};
  return {{n, c, h, w, 0}, 4};
}
bool has_shape(const farray& a, const Shape& shape) { return same_shape(a, shape.d, shape.nd); }
farray new_array(const Shape& shape) { return farray(std::vector<py::ssize_t>(shape.d, shape.d + shape.nd)); }
std::string shape_str(const Shape& shape) {
  std::string r = "(";
  for (int i = 0; i < shape.nd; ++i) r += (i ? ", " : "") + std::to_string(shape.d[i]);
  return r + ")";
}

// The geometry of a bound call.
ConvParams bound_params(const BoundConv& bc) {
  const ConvParams& q = bc.pw->p;
  return ConvParams{bc.xshape[0], bc.xshape[1], bc.xshape[2], bc.xshape[3], q.K,   q.R,      q.S,   bc.sh,
                    bc.sw,        bc.pt,        bc.pl,        bc.dh,        bc.dw, q.groups, bc.Ho, bc.Wo};
}

// A caller's `out` for a bound call with layout bits: C-contiguous, or with only its images
// further apart than an image (a channel slice of a wider array: a Graph's concat output at batch
// > 1). y_img: the floats from one image to the next when strided, else 0.
farray out_array_images(const py::object& out, int64_t& y_img) {
  PYCNN_REQUIRE(py::isinstance<py::array>(out), "out: expected a NumPy array");
  const auto a = py::reinterpret_borrow<py::array>(out);
  PYCNN_REQUIRE(a.dtype().is(py::dtype::of<float>()), "out: expected a float32 array");
  y_img = (a.flags() & py::array::c_style) ? 0 : image_stride(a, "out");
  return py::reinterpret_borrow<farray>(a);
}

// Whether the bound call writes an `out` whose images are strided (kYImageStrided).
bool strided_out_ok(const BoundConv& bc) {
  return (bc.layout & kDirectOcYBlocked) &&
         bc.pw->algo->layout_ok(bound_params(bc), (bc.layout & ~kDirectOcResBlocked) | kYImageStrided);
}

// A bound call with channel-blocked tensors (direct_oc, Winograd or depthwise).
farray call_blocked(const BoundConv& bc, farray x, const py::object& residual, const py::object& out) {
  ConvParams p = bound_params(bc);
  const int64_t N = p.N, K = p.K;
  const bool xb = bc.layout & kDirectOcXBlocked, yb = bc.layout & kDirectOcYBlocked;
  const bool mean = bc.layout & kDirectOcMeanY;  // y (N, K, 1, 1): the maps' means
  const Shape xs = layout_shape(N, p.C, p.H, p.W, xb);
  const Shape ys = mean ? Shape{{N, K, 1, 1, 0}, 4} : layout_shape(N, K, p.Ho, p.Wo, yb);
  PYCNN_REQUIRE(has_shape(x, xs), "x: expected shape " + shape_str(xs) + (xb ? " (channel-blocked)" : ""));
  int64_t y_img = 0;
  farray y = out.is_none() ? new_array(ys) : out_array_images(out, y_img);
  PYCNN_REQUIRE(has_shape(y, ys), "out: expected shape " + shape_str(ys));
  int layout = bc.layout & ~kDirectOcResBlocked;
  if (y_img) {
    PYCNN_REQUIRE(strided_out_ok(bc) && residual.is_none(),
                  "out: images further apart than an image need a channel-blocked y from direct_oc or Winograd, "
                  "and no residual");
    p.y_img = y_img;
    layout |= kYImageStrided;
  }
  farray rkeep = no_array();
  const float* rp = nullptr;
  if (!residual.is_none()) {
    rkeep = residual.cast<farray>();
    const Shape rn = layout_shape(N, K, p.Ho, p.Wo, false), rb = layout_shape(N, K, p.Ho, p.Wo, true);
    const bool is_b = K % 16 == 0 && has_shape(rkeep, rb);
    PYCNN_REQUIRE(is_b || has_shape(rkeep, rn), "residual: expected the output's shape " + shape_str(rn) +
                                                    (K % 16 == 0 ? " or blocked " + shape_str(rb) : ""));
    if (is_b) layout |= kDirectOcResBlocked;
    rp = rkeep.data();
  }
  float* yp = wptr(y, "out");
  const float* xp = x.data();
  py::gil_scoped_release nogil;
  bc.pw->algo->run(*bc.pw->w, p, xp, bc.b, yp, bc.act, rp, layout);
  return y;
}

// A bank of whole-row convolutions, each reduced by the max over its map, bound to one input
// shape (conv2d_rows_bank_max; a Graph's prepared.ConvBankMax for Kim's three convs, max over
// time and concat).
struct BoundRowsBank {
  std::vector<std::shared_ptr<PreparedWeights>> pws;  // keep the packed weights alive
  std::vector<farray> biases;
  std::vector<RowsBankConv> convs;
  int64_t xshape[4];
  int64_t sh, K;  // K: the filters of all the convs
  int max_map;
};

// A conv's epilogue as the fused calls take it: (relu, clip_lo, clip_hi, post_fn, post_a, post_b).
using FusedEpilogue = std::tuple<bool, float, float, int, float, float>;
Activation epilogue_of(const FusedEpilogue& e) {
  return epilogue_activation(std::get<0>(e), std::get<1>(e), std::get<2>(e), std::get<3>(e), std::get<4>(e),
                             std::get<5>(e));
}

// call(x, residual=None, out=None) -> y (BoundConv.__call__, and the plan runner's native call).
farray bound_conv_call(const BoundConv& bc, farray x, const py::object& residual, const py::object& out) {
  if (bc.layout) return call_blocked(bc, x, residual, out);
  PYCNN_REQUIRE(same_shape(x, bc.xshape, 4), "x: not the shape this call was bound to");
  const int64_t N = bc.xshape[0], K = bc.pw->p.K;
  farray y = !out.is_none()    ? out_array(out)
             : bc.max_map == 0 ? farray({N, K, bc.Ho, bc.Wo})
             : bc.max_map == 1 ? farray({N, K})
                               : farray({N, K, int64_t(1), int64_t(1)});
  if (bc.max_map == 0) {
    PYCNN_REQUIRE(y.ndim() == 4 && y.shape(0) == N && y.shape(2) == bc.Ho && y.shape(3) == bc.Wo,
                  "out: expected (N, K, Ho, Wo)");
    run_prepared(*bc.pw, x, bc.b, y, bc.sh, bc.sw, bc.pt, bc.pl, bc.dh, bc.dw, bc.act, residual);
    return y;
  }
  PYCNN_REQUIRE(residual.is_none(), "residual: not supported with max_map");
  PYCNN_REQUIRE(y.ndim() == (bc.max_map == 1 ? 2 : 4) && y.shape(0) == N && y.shape(1) == K &&
                    (bc.max_map == 1 || (y.shape(2) == 1 && y.shape(3) == 1)),
                bc.max_map == 1 ? "out: expected (N, K)" : "out: expected (N, K, 1, 1)");
  farray maps({N, K, bc.Ho, bc.Wo});
  run_prepared(*bc.pw, x, bc.b, maps, bc.sh, bc.sw, bc.pt, bc.pl, bc.dh, bc.dw, bc.act, residual);
  float* yp = y.mutable_data();
  const float* mp = maps.data();
  {
    py::gil_scoped_release nogil;
    max_rows(N * K, bc.Ho * bc.Wo, mp, yp);  // NaN propagates
  }
  return y;
}

py::object bound_conv_native(const void* self, PyObject* const* a, size_t n) {
  PYCNN_REQUIRE(n == 1 || n == 2, "a bound conv takes x and an optional residual");
  const py::object residual = n == 2 ? py::reinterpret_borrow<py::object>(a[1]) : py::none();
  return bound_conv_call(*static_cast<const BoundConv*>(self), step_array(a[0], "x"), residual, py::none());
}

}  // namespace

void bind_conv(py::module_& m) {
  // Squeeze-and-excitation as one call (a Graph's pool -> 1x1 -> 1x1 -> x * gate, pycnn/graph/fuse_se.py):
  // y = x * act2(w2 act1(w1 mean_hw(x) + b1) + b2), one gate per (image, channel). x, y (N, C, H, W),
  // or (N, C/16, H, W, 16) when blocked; w1 (Cm, C), w2 (C, Cm); epilogues as conv2d_pw_dw_blocked16's.
  m.def(
      "se_block",
      [](farray x, farray w1, py::object b1, const FusedEpilogue& e1, farray w2, py::object b2, const FusedEpilogue& e2,
         bool blocked, const py::object& yo) {
        farray y = out_array(yo, "y");  // written in place, never through a converted copy
        if (blocked) {
          require_blocked16(x, "x");
        } else {
          require_ndim(x, 4, "x");
        }
        PYCNN_REQUIRE(y.ndim() == x.ndim() && std::equal(x.shape(), x.shape() + x.ndim(), y.shape()),
                      "y: expected x's shape");
        const int64_t N = x.shape(0), C = blocked ? x.shape(1) * 16 : x.shape(1), HW = x.shape(2) * x.shape(3);
        PYCNN_REQUIRE(N > 0 && C > 0 && HW > 0, "x: empty");
        PYCNN_REQUIRE(w1.ndim() == 2 && w1.shape(1) == C && w1.shape(0) > 0,
                      "w1: expected (Cm, " + std::to_string(C) + ")");
        const int64_t Cm = w1.shape(0);
        PYCNN_REQUIRE(w2.ndim() == 2 && w2.shape(0) == C && w2.shape(1) == Cm,
                      "w2: expected (" + std::to_string(C) + ", " + std::to_string(Cm) + ")");
        farray k1, k2;
        const float* b1p = optional_vector(b1, Cm, k1, "b1: expected Cm entries");
        const float* b2p = optional_vector(b2, C, k2, "b2: expected C entries");
        const Activation a1 = epilogue_of(e1), a2 = epilogue_of(e2);
        float* yp = wptr(y, "y");
        const float *xp = x.data(), *w1p = w1.data(), *w2p = w2.data();
        py::gil_scoped_release nogil;
        se_block(N, C, Cm, HW, blocked, xp, w1p, b1p, a1, w2p, b2p, a2, yp);
      },
      py::arg("x"), py::arg("w1"), py::arg("b1"), py::arg("e1"), py::arg("w2"), py::arg("b2"), py::arg("e2"),
      py::arg("blocked"), py::arg("y"));

  // A 1x1 conv and the depthwise conv reading its output, fused (kernels/cpu/conv2d_pw_dw_c16.inl):
  // x (N, Cin/16, H, W, 16), wpw (K/16, Cin, 16), wdw (K/16, R*S, 16), y (N, K/16, Ho, Wo, 16);
  // epilogues (relu, clip_lo, clip_hi, post_fn, post_a, post_b) as a conv's.
  m.def(
      "conv2d_pw_dw_blocked16",
      [](farray x, farray wpw, py::object bpw, const FusedEpilogue& e1, farray wdw, py::object bdw,
         const FusedEpilogue& e2, int64_t R, int64_t S, int64_t sh, int64_t sw, int64_t pt, int64_t pl,
         const py::object& yo) {
        farray y = out_array(yo, "y");  // written in place, never through a converted copy
        require_blocked16(x, "x");
        require_blocked16(y, "y");
        const int64_t N = x.shape(0), cin = x.shape(1) * 16, H = x.shape(2), W = x.shape(3);
        PYCNN_REQUIRE(wpw.ndim() == 3 && wpw.shape(1) == cin && wpw.shape(2) == 16,
                      "wpw: expected (K/16, " + std::to_string(cin) + ", 16)");
        const int64_t Kb = wpw.shape(0), K = Kb * 16, Ho = y.shape(2), Wo = y.shape(3);
        PYCNN_REQUIRE(Kb > 0 && cin > 0, "wpw: no channels");
        PYCNN_REQUIRE(R >= 1 && S >= 1 && sh >= 1 && sw >= 1 && pt >= 0 && pl >= 0 && pt < R && pl < S,
                      "R, S, stride, padding: out of range");
        PYCNN_REQUIRE(wdw.ndim() == 3 && wdw.shape(0) == Kb && wdw.shape(1) == R * S && wdw.shape(2) == 16,
                      "wdw: expected (K/16, R*S, 16)");
        PYCNN_REQUIRE(y.shape(0) == N && y.shape(1) == Kb && Ho == (H + 2 * pt - R) / sh + 1 &&
                          Wo == (W + 2 * pl - S) / sw + 1 && H + 2 * pt >= R && W + 2 * pl >= S,
                      "y: expected (N, K/16, Ho, Wo, 16) of the depthwise conv's output");
        farray kb1, kb2;
        const float* b1 = optional_vector(bpw, K, kb1, "bpw: expected K entries");
        const float* b2 = optional_vector(bdw, K, kb2, "bdw: expected K entries");
        const Activation a1 = epilogue_of(e1), a2 = epilogue_of(e2);
        const ConvParams dw{N, K, H, W, K, R, S, sh, sw, pt, pl, 1, 1, K, Ho, Wo};
        float* yp = wptr(y, "y");
        py::gil_scoped_release nogil;
        conv2d_pw_dw_c16(dw, cin, x.data(), wpw.data(), b1, a1, wdw.data(), b2, a2, yp);
      },
      py::arg("x"), py::arg("wpw"), py::arg("bpw"), py::arg("epilogue_pw"), py::arg("wdw"), py::arg("bdw"),
      py::arg("epilogue_dw"), py::arg("R"), py::arg("S"), py::arg("stride_h"), py::arg("stride_w"), py::arg("pad_t"),
      py::arg("pad_l"), py::arg("y"));
  m.def(
      "conv2d",
      [](farray x, farray w, py::object bias, farray y, int64_t sh, int64_t sw, int64_t pt, int64_t pl, int64_t dh,
         int64_t dw, int64_t groups, const std::string& algo, bool relu) {
        const ConvParams p = conv_params(x, w, y, sh, sw, pt, pl, dh, dw, groups);
        farray bkeep = no_array();
        const float* b = optional_vector(bias, p.K, bkeep, "bias: expected K entries");
        float* yp = wptr(y, "out");
        const Activation act = relu ? Activation::relu() : Activation::none();
        const ConvAlgorithm& a = conv_algorithm(algo);
        require_runs(a, p);
        py::gil_scoped_release nogil;
        a.run(*a.prepare(p, w.data()), p, x.data(), b, yp, act, nullptr, 0);
      },
      py::arg("x"), py::arg("weight"), py::arg("bias"), py::arg("out"), py::arg("stride_h"), py::arg("stride_w"),
      py::arg("pad_t"), py::arg("pad_l"), py::arg("dil_h"), py::arg("dil_w"), py::arg("groups"), py::arg("algo"),
      py::arg("relu"));

  // Weights transformed once for one algorithm (pycnn.prepare_conv). The shape the weights were
  // prepared for is kept and every run is checked against it.
  py::class_<PreparedWeights, std::shared_ptr<PreparedWeights>>(m, "PreparedWeights")
      .def(py::init([](farray w, int64_t groups, const std::string& algo) {
             require_ndim(w, 4, "weight");
             PYCNN_REQUIRE(groups >= 1 && w.shape(0) % groups == 0, "groups: must divide weight.shape[0]");
             PYCNN_REQUIRE(w.shape(0) >= 1 && w.shape(1) >= 1 && w.shape(2) >= 1 && w.shape(3) >= 1,
                           "weight: every dimension must be >= 1");
             ConvParams p{1, w.shape(1) * groups, 1, 1, w.shape(0), w.shape(2), w.shape(3), 1, 1, 0, 0, 1, 1, groups, 1,
                          1};
             auto out = std::make_shared<PreparedWeights>();
             out->p = p;
             out->algo = &conv_algorithm(algo);
             // The kernel's own shape, at stride 1 and dilation 1 (the call checks the rest).
             ConvParams probe = p;
             probe.H = probe.Ho = p.R;
             probe.W = probe.Wo = p.S;
             require_runs(*out->algo, probe);
             const float* wp = w.data();
             py::gil_scoped_release nogil;
             out->w = out->algo->prepare(p, wp);
             return out;
           }),
           py::arg("weight"), py::arg("groups"), py::arg("algo"))
      .def_property_readonly("algo", [](const PreparedWeights& pw) { return std::string(pw.algo->name); })
      .def(
          "run",
          [](const PreparedWeights& pw, farray x, py::object bias, farray y, int64_t sh, int64_t sw, int64_t pt,
             int64_t pl, int64_t dh, int64_t dw, bool relu, py::object residual, float clip_lo, float clip_hi,
             int post_fn, float post_a, float post_b) {
            PYCNN_REQUIRE(sh >= 1 && sw >= 1 && dh >= 1 && dw >= 1 && pt >= 0 && pl >= 0,
                          "stride/dilation/padding: invalid");
            farray bkeep = no_array();
            const float* b = optional_vector(bias, pw.p.K, bkeep, "bias: expected K entries");
            run_prepared(pw, x, b, y, sh, sw, pt, pl, dh, dw,
                         epilogue_activation(relu, clip_lo, clip_hi, post_fn, post_a, post_b), residual);
          },
          py::arg("x"), py::arg("bias"), py::arg("out"), py::arg("stride_h"), py::arg("stride_w"), py::arg("pad_t"),
          py::arg("pad_l"), py::arg("dil_h"), py::arg("dil_w"), py::arg("relu"), py::arg("residual") = py::none(),
          py::arg("clip_lo") = -kInf, py::arg("clip_hi") = kInf, py::arg("post_fn") = -1, py::arg("post_a") = 0.0f,
          py::arg("post_b") = 0.0f)
      // A call fixed to one input shape (a Graph's bound step): geometry, bias and activation are
      // checked once here; each call passes only x (and optionally out, residual) and gets y.
      .def(
          "bind",
          [](std::shared_ptr<PreparedWeights> pw, py::object bias, std::vector<int64_t> xshape, int64_t sh, int64_t sw,
             int64_t pt, int64_t pl, int64_t dh, int64_t dw, int64_t Ho, int64_t Wo, bool relu, int max_map, int layout,
             float clip_lo, float clip_hi, int post_fn, float post_a, float post_b) {
            PYCNN_REQUIRE(max_map >= 0 && max_map <= 2, "max_map: expected 0, 1 or 2");
            PYCNN_REQUIRE(layout >= 0 && (layout & ~kDirectOcMeanY) <= 7,
                          "layout: expected 0 .. 7 (kDirectOc*Blocked bits), optionally | 16 (kDirectOcMeanY)");
            PYCNN_REQUIRE(xshape.size() == 4 && xshape[1] == pw->p.C, "x: channels do not match the prepared weights");
            PYCNN_REQUIRE(sh >= 1 && sw >= 1 && dh >= 1 && dw >= 1 && pt >= 0 && pl >= 0 && Ho >= 1 && Wo >= 1,
                          "stride/dilation/padding: invalid");
            BoundConv bc{pw,
                         no_array(),
                         nullptr,
                         {xshape[0], xshape[1], xshape[2], xshape[3]},
                         sh,
                         sw,
                         pt,
                         pl,
                         dh,
                         dw,
                         Ho,
                         Wo,
                         epilogue_activation(relu, clip_lo, clip_hi, post_fn, post_a, post_b),
                         max_map,
                         layout};
            if (layout) {
              const ConvParams q = bound_params(bc);
              // (the residual bit only routes calls to call_blocked, which reads the residual's
              // layout from its rank)
              PYCNN_REQUIRE(
                  pw->algo->layout_ok(q, layout) && max_map == 0,
                  "layout: channel-blocked tensors need direct_oc (groups 1; a blocked x only with 16 | C), "
                  "Winograd (groups 1, a blocked y only) or depthwise (groups == C == K), 16 | K for a blocked "
                  "y, and no max_map; the maps' means (16) direct_oc with groups 1 and no blocked y");
              require_runs(*pw->algo, q);
            }
            bc.b = optional_vector(bias, pw->p.K, bc.bias, "bias: expected K entries");
            return bc;
          },
          py::arg("bias"), py::arg("xshape"), py::arg("stride_h"), py::arg("stride_w"), py::arg("pad_t"),
          py::arg("pad_l"), py::arg("dil_h"), py::arg("dil_w"), py::arg("Ho"), py::arg("Wo"), py::arg("relu"),
          py::arg("max_map") = 0, py::arg("layout") = 0, py::arg("clip_lo") = -kInf, py::arg("clip_hi") = kInf,
          py::arg("post_fn") = -1, py::arg("post_a") = 0.0f, py::arg("post_b") = 0.0f);

  py::class_<BoundConv> bound_conv(m, "BoundConv");
  bound_conv
      .def("__call__", &bound_conv_call, py::arg("x"), py::arg("residual") = py::none(), py::arg("out") = py::none())
      .def_property_readonly("writes_out", [](const BoundConv&) { return true; })
      // out may be a channel slice of a wider array at any batch (its images strided)
      .def_property_readonly("writes_strided_out", [](const BoundConv& bc) { return strided_out_ok(bc); })
      .def_property_readonly("layout", [](const BoundConv& bc) { return bc.layout; });
  register_native_step(bound_conv,
                       [](py::handle o) { return NativeStep{&bound_conv_native, o.cast<const BoundConv*>()}; });

  m.def(
      "bind_rows_bank_max",
      [](std::vector<std::shared_ptr<PreparedWeights>> pws, std::vector<py::object> biases, std::vector<bool> relus,
         std::vector<int64_t> xshape, int64_t stride_h, int max_map) {
        PYCNN_REQUIRE(!pws.empty() && biases.size() == pws.size() && relus.size() == pws.size(),
                      "weights: expected one or more prepared weights, with as many biases and relu flags");
        PYCNN_REQUIRE(xshape.size() == 4 && xshape[0] >= 1 && xshape[1] == 1 && xshape[2] >= 1 && xshape[3] >= 1,
                      "xshape: expected (N, 1, H, W) with N, H, W >= 1");
        PYCNN_REQUIRE(stride_h >= 1, "stride_h: must be >= 1");
        PYCNN_REQUIRE(max_map == 1 || max_map == 2, "max_map: expected 1 or 2");
        BoundRowsBank bb{pws, {}, {}, {xshape[0], xshape[1], xshape[2], xshape[3]}, stride_h, 0, max_map};
        bb.biases.resize(pws.size());
        for (size_t j = 0; j < pws.size(); ++j) {
          const PreparedWeights& pw = *pws[j];
          const ConvParams& q = pw.p;
          const auto* im2col = dynamic_cast<const Im2colWeights*>(pw.w.get());
          PYCNN_REQUIRE(im2col != nullptr && q.groups == 1 && q.C == 1,
                        "weights: expected im2col weights of one input channel, groups 1");
          PYCNN_REQUIRE(q.S == xshape[3] && q.R <= xshape[2],
                        "weights: each kernel must be R x W with R <= H (W = xshape[3]: windows span whole rows)");
          const PackedA& A = im2col->groups[0];
          const PackedA& A0 = static_cast<const Im2colWeights&>(*pws[0]->w).groups[0];
          PYCNN_REQUIRE(A.kernels == A0.kernels && A.MR == A0.MR,
                        "weights: all convs must be packed for one ISA with one panel height (same filter count)");
          bb.convs.push_back(
              {&A, optional_vector(biases[j], q.K, bb.biases[j], "bias: expected K entries"), q.R, (bool)relus[j]});
          bb.K += q.K;
        }
        return bb;
      },
      py::arg("weights"), py::arg("biases"), py::arg("relus"), py::arg("xshape"), py::arg("stride_h"),
      py::arg("max_map") = 1);

  py::class_<BoundRowsBank>(m, "BoundRowsBank")
      .def(
          "__call__",
          [](const BoundRowsBank& bb, farray x, py::object out) {
            PYCNN_REQUIRE(same_shape(x, bb.xshape, 4), "x: not the shape this call was bound to");
            const int64_t N = bb.xshape[0];
            const Shape ys = bb.max_map == 1 ? Shape{{N, bb.K, 0, 0, 0}, 2} : Shape{{N, bb.K, 1, 1, 0}, 4};
            farray y = out.is_none() ? new_array(ys) : out_array(out);
            PYCNN_REQUIRE(has_shape(y, ys), "out: expected shape " + shape_str(ys));
            float* yp = wptr(y, "out");
            const float* xp = x.data();
            py::gil_scoped_release nogil;
            conv2d_rows_bank_max(N, bb.xshape[2], bb.xshape[3], bb.sh, xp, bb.convs, yp, bb.K);
            return y;
          },
          py::arg("x"), py::arg("out") = py::none())
      .def_property_readonly("writes_out", [](const BoundRowsBank&) { return true; });

  // The algorithms with C++ prepared weights (conv2d_algos.cpp), for pycnn/registry.py:
  // [(name, summary, rel_error_bound, rel_error_bound_other)].
  m.def("conv_algorithms", [] {
    std::vector<py::tuple> out;
    for (const ConvAlgorithm& a : conv_algorithms())
      out.push_back(py::make_tuple(a.name, a.summary, a.rel_error_bound, a.rel_error_bound_other));
    return out;
  });
  // Why `algo` cannot run this geometry ("" when it can), and whether it takes these layout bits.
  m.def(
      "conv_algorithm_refusal",
      [](const std::string& algo, std::vector<int64_t> g) {
        const ConvParams p = geometry_params(g);
        return conv_algorithm(algo).refuse(p);
      },
      py::arg("algo"), py::arg("geometry"));
  m.def(
      "conv_algorithm_layout_ok",
      [](const std::string& algo, std::vector<int64_t> g, int layout) {
        const ConvParams p = geometry_params(g);
        return conv_algorithm(algo).layout_ok(p, layout);
      },
      py::arg("algo"), py::arg("geometry"), py::arg("layout"));

  // How a Winograd call of this geometry and these weights runs (tests, bench): a dict of
  // conv2d_winograd_plan's fields. w (K, Cg, R, S) is transformed here, for the active ISA.
  m.def(
      "winograd_plan",
      [](std::vector<int64_t> g, farray w, int m, bool y_blocked) {
        const ConvParams p = geometry_params(g);
        require_ndim(w, 4, "w");
        PYCNN_REQUIRE(p.groups >= 1 && p.K % p.groups == 0 && p.C % p.groups == 0 && w.shape(0) == p.K &&
                          w.shape(1) == p.C / p.groups && w.shape(2) == p.R && w.shape(3) == p.S,
                      "w: expected (K, C / groups, R, S) of the geometry");
        WinogradWeights U;
        conv2d_winograd_prepare(p, w.data(), m, U);
        const WinogradPlanInfo i = conv2d_winograd_plan(p, U, y_blocked);
        py::dict d;
        d["blocks"] = i.blocks;
        d["threads"] = i.threads;
        d["panel"] = i.panel;
        d["blocks_per_thread"] = i.blocks_per_thread;
        d["channels_per_pass"] = i.channels_per_pass;
        d["tiles_per_block"] = i.tiles_per_block;
        return d;
      },
      py::arg("geometry"), py::arg("w"), py::arg("m"), py::arg("y_blocked") = false);

  m.def("weight_transform_count", &weight_transform_count,
        "How many weight transforms (packings) this process has done; for tests.");

  // The Winograd transforms on their own (tests compare them with the explicit matrices).
  // m with the kernel (R, S): the tiles with_winograd_tile has (ValueError naming them otherwise).
  m.def("winograd_filter_transform", [](farray w, int m) {
    require_ndim(w, 4, "weight");
    const int64_t a2 = winograd_alpha_product(m, w.shape(2), w.shape(3));
    farray U({a2, (int64_t)w.shape(0), (int64_t)w.shape(1)});
    winograd_filter_transform(m, w.shape(2), w.shape(3), w.shape(0), w.shape(1), w.data(), U.mutable_data());
    return U;
  });
  m.def(
      "winograd_input_transform",
      [](farray x, int m, int64_t pt, int64_t pl, int64_t Ho, int64_t Wo, int64_t R, int64_t S) {
        require_ndim(x, 4, "x");
        const int64_t a2 = winograd_alpha_product(m, R, S);
        PYCNN_REQUIRE(pt >= 0 && pl >= 0 && Ho >= 1 && Wo >= 1, "padding/output size: invalid");
        const int64_t T = winograd_tile_count(m, R, S, x.shape(0), Ho, Wo);
        ConvParams p{x.shape(0), x.shape(1), x.shape(2), x.shape(3), 1, R, S, 1, 1, pt, pl, 1, 1, 1, Ho, Wo};
        farray V({a2, (int64_t)x.shape(1), T});
        winograd_input_transform(p, m, x.data(), V.mutable_data());
        return V;
      },
      py::arg("x"), py::arg("m"), py::arg("pad_t"), py::arg("pad_l"), py::arg("Ho"), py::arg("Wo"), py::arg("R") = 3,
      py::arg("S") = 3);
  m.def(
      "winograd_output_transform",
      [](farray M, int m, int64_t N, int64_t Ho, int64_t Wo, int64_t R, int64_t S) {
        require_ndim(M, 3, "M");
        const int64_t a2 = winograd_alpha_product(m, R, S);
        const int64_t T = winograd_tile_count(m, R, S, N, Ho, Wo);
        PYCNN_REQUIRE(M.shape(0) == a2 && M.shape(2) == T, "M: expected (alpha_h * alpha_w, K, N*tiles)");
        ConvParams p{N, 1, Ho, Wo, M.shape(1), R, S, 1, 1, 0, 0, 1, 1, 1, Ho, Wo};
        farray y({N, (int64_t)M.shape(1), Ho, Wo});
        winograd_output_transform(p, m, M.data(), y.mutable_data());
        return y;
      },
      py::arg("M"), py::arg("m"), py::arg("N"), py::arg("Ho"), py::arg("Wo"), py::arg("R") = 3, py::arg("S") = 3);
}

}  // namespace pycnn
