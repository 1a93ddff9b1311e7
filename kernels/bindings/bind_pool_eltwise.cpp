// Bindings: pooling, LRN, linear and the element-wise ops.
#include <algorithm>
#include <memory>
#include <vector>

#include "bindings_cpu.h"
#include "ops_cpu.h"

namespace pycnn {

namespace {

PoolParams pool_params(const farray& x, const farray& y, int64_t R, int64_t S, int64_t sh, int64_t sw, int64_t pt,
                       int64_t pl) {
  require_ndim(x, 4, "x");
  require_ndim(y, 4, "out");
  PYCNN_REQUIRE(y.shape(0) == x.shape(0) && y.shape(1) == x.shape(1), "out: expected (N, C, Ho, Wo)");
  PYCNN_REQUIRE(R >= 1 && S >= 1, "kernel_size: must be >= 1");
  PYCNN_REQUIRE(sh >= 1 && sw >= 1, "stride: must be >= 1");
  PYCNN_REQUIRE(pt >= 0 && pl >= 0, "padding: must be >= 0");
  return PoolParams{
      x.shape(0) * x.shape(1), x.shape(2), x.shape(3), R, S, sh, sw, pt, pl, y.shape(2), y.shape(3), x.shape(0)};
}

void same_size(const farray& a, const farray& b, const char* name) {
  PYCNN_REQUIRE(a.size() == b.size(), std::string(name) + ": size mismatch");
}

// A pooling call fixed to one input shape (a Graph's bound step): call(x) -> y.
struct BoundPool {
  PoolParams p;
  int64_t xshape[4], yshape[4];
  bool is_max, count_include_pad;
  bool blocked;  // x and y channel-blocked, (N, C/16, H, W, 16) (max only; pycnn/layout.py)
};

// A linear call fixed to one input shape: call(x) -> y; W and b are kept alive here.
struct BoundLinear {
  farray w;
  farray bias;  // keeps b alive (empty when there is none)
  const float* b;
  int64_t N, In, Out;
  bool relu;
  std::shared_ptr<LinearPanels> panels;  // W^T's panels where the batch runs them, else null
};

// call(x, out=None) -> y (BoundPool.__call__, and the plan runner's native call).
farray bound_pool_call(const BoundPool& bp, farray x, const py::object& out) {
  // Shapes as bound, or channel-blocked: (N, C/16, H, W, 16).
  const int nd = bp.blocked ? 5 : 4, cdiv = bp.blocked ? 16 : 1;
  const int64_t xs[5] = {bp.xshape[0], bp.xshape[1] / cdiv, bp.xshape[2], bp.xshape[3], 16};
  PYCNN_REQUIRE(same_shape(x, xs, nd), bp.blocked ? "x: not the channel-blocked shape this call was bound to"
                                                  : "x: not the shape this call was bound to");
  const int64_t ys[5] = {bp.yshape[0], bp.yshape[1] / cdiv, bp.yshape[2], bp.yshape[3], 16};
  farray y = out.is_none() ? farray(std::vector<int64_t>(ys, ys + nd)) : out_array(out);
  PYCNN_REQUIRE(same_shape(y, ys, nd), bp.blocked ? "out: not the channel-blocked output shape of this call"
                                                  : "out: not the output shape of this call");
  const float *x0 = x.data(), *y0 = y.data();
  PYCNN_REQUIRE(y0 + y.size() <= x0 || x0 + x.size() <= y0, "out: overlaps x");
  float* yp = y.mutable_data();
  {
    py::gil_scoped_release nogil;
    if (bp.blocked && bp.is_max)
      max_pool2d_blocked16(bp.p, x.data(), yp);
    else if (bp.blocked)
      avg_pool2d_blocked16(bp.p, x.data(), yp, bp.count_include_pad);
    else if (bp.is_max)
      max_pool2d(bp.p, x.data(), yp);
    else
      avg_pool2d(bp.p, x.data(), yp, bp.count_include_pad);
  }
  return y;
}

py::object bound_pool_native(const void* self, PyObject* const* a, size_t n) {
  PYCNN_REQUIRE(n == 1, "a bound pool takes one input");
  return bound_pool_call(*static_cast<const BoundPool*>(self), step_array(a[0], "x"), py::none());
}

// call(x) -> y (BoundLinear.__call__, and the plan runner's native call).
farray bound_linear_call(const BoundLinear& bl, farray x) {
  const int64_t shape[2] = {bl.N, bl.In};
  PYCNN_REQUIRE(same_shape(x, shape, 2), "x: not the shape this call was bound to");
  farray y({bl.N, bl.Out});
  float* yp = y.mutable_data();
  {
    py::gil_scoped_release nogil;
    if (bl.panels)
      linear_panels_run(*bl.panels, bl.N, bl.In, bl.Out, x.data(), bl.b, yp, bl.relu);
    else
      linear(bl.N, bl.In, bl.Out, x.data(), bl.w.data(), bl.b, yp, bl.relu);
  }
  return y;
}

py::object bound_linear_native(const void* self, PyObject* const* a, size_t n) {
  PYCNN_REQUIRE(n == 1, "a bound linear takes one input");
  return bound_linear_call(*static_cast<const BoundLinear*>(self), step_array(a[0], "x"));
}

}  // namespace

void bind_pool(py::module_& m) {
  m.def("max_pool2d", [](farray x, farray y, int64_t R, int64_t S, int64_t sh, int64_t sw, int64_t pt, int64_t pl) {
    const PoolParams p = pool_params(x, y, R, S, sh, sw, pt, pl);
    float* yp = wptr(y, "out");
    py::gil_scoped_release nogil;
    max_pool2d(p, x.data(), yp);
  });
  m.def("avg_pool2d", [](farray x, farray y, int64_t R, int64_t S, int64_t sh, int64_t sw, int64_t pt, int64_t pl,
                         bool count_include_pad) {
    const PoolParams p = pool_params(x, y, R, S, sh, sw, pt, pl);
    float* yp = wptr(y, "out");
    py::gil_scoped_release nogil;
    avg_pool2d(p, x.data(), yp, count_include_pad);
  });
  // Bound pooling (Graph steps): geometry checked once here, each call passes only x.
  m.def(
      "bind_pool2d",
      [](std::vector<int64_t> xs, std::vector<int64_t> ys, int64_t R, int64_t S, int64_t sh, int64_t sw, int64_t pt,
         int64_t pl, bool is_max, bool count_include_pad, bool blocked) {
        PYCNN_REQUIRE(xs.size() == 4 && ys.size() == 4 && ys[0] == xs[0] && ys[1] == xs[1],
                      "out: expected (N, C, Ho, Wo)");
        PYCNN_REQUIRE(!blocked || xs[1] % 16 == 0, "layout: channel-blocked pooling needs a multiple of 16 channels");
        PYCNN_REQUIRE(R >= 1 && S >= 1 && sh >= 1 && sw >= 1 && pt >= 0 && pl >= 0,
                      "kernel_size/stride/padding: invalid");
        for (int i = 0; i < 4; ++i) PYCNN_REQUIRE(xs[(size_t)i] >= 1 && ys[(size_t)i] >= 1, "x: empty shape");
        // Every window must start inside the padded input (what ops._pool_geometry guarantees).
        PYCNN_REQUIRE((ys[2] - 1) * sh < xs[2] + pt && (ys[3] - 1) * sw < xs[3] + pl, "out: too large for this input");
        BoundPool bp{
            PoolParams{xs[0] * xs[1] / (blocked ? 16 : 1), xs[2], xs[3], R, S, sh, sw, pt, pl, ys[2], ys[3], xs[0]},
            {xs[0], xs[1], xs[2], xs[3]},
            {ys[0], ys[1], ys[2], ys[3]},
            is_max,
            count_include_pad,
            blocked};
        return bp;
      },
      py::arg("xshape"), py::arg("yshape"), py::arg("R"), py::arg("S"), py::arg("stride_h"), py::arg("stride_w"),
      py::arg("pad_t"), py::arg("pad_l"), py::arg("is_max"), py::arg("count_include_pad"), py::arg("blocked") = false);
  // call(x, out=None) -> y; out: a C-contiguous float32 array of y's shape, written in place (a
  // Graph's chain passes its images of the chain's output).
  py::class_<BoundPool> bound_pool(m, "BoundPool");
  bound_pool.def("__call__", &bound_pool_call, py::arg("x"), py::arg("out") = py::none());
  register_native_step(bound_pool,
                       [](py::handle o) { return NativeStep{&bound_pool_native, o.cast<const BoundPool*>()}; });
  m.def("global_avg_pool2d", [](farray x, farray y) {
    require_ndim(x, 4, "x");
    PYCNN_REQUIRE(y.size() == x.shape(0) * x.shape(1), "out: expected N*C entries");
    float* yp = wptr(y, "out");
    py::gil_scoped_release nogil;
    global_avg_pool2d(x.shape(0) * x.shape(1), x.shape(2) * x.shape(3), x.data(), yp);
  });
  // x channel-blocked (N, C/16, H, W, 16) -> y (N*C entries): the mean of each channel.
  m.def("global_avg_pool2d_blocked16", [](farray x, farray y) {
    require_blocked16(x, "x");
    PYCNN_REQUIRE(y.size() == x.shape(0) * x.shape(1) * 16, "out: expected N*C entries");
    float* yp = wptr(y, "out");
    py::gil_scoped_release nogil;
    global_avg_pool2d_blocked16(x.shape(0) * x.shape(1), x.shape(2) * x.shape(3), x.data(), yp);
  });
  m.def("local_response_norm", [](farray x, farray y, int64_t size, float alpha, float beta, float k) {
    PYCNN_REQUIRE(x.ndim() >= 2, "x: expected at least 2 dimensions (N, C, ...)");
    PYCNN_REQUIRE(size >= 1, "size: must be >= 1");
    same_size(x, y, "out");
    const int64_t N = x.shape(0), C = x.shape(1), HW = C && N ? x.size() / (N * C) : 0;
    float* yp = wptr(y, "out");
    py::gil_scoped_release nogil;
    local_response_norm(N, C, HW, x.data(), yp, size, alpha, beta, k);
  });
}

void bind_eltwise(py::module_& m) {
  // Channel-blocked layout (pycnn/layout.py): NCHW (N, C, H, W) <-> NCHW16c (N, C/16, H, W, 16).
  // (N, C, H, W) are the NCHW sizes either way; `run` copies src into a new dst of dst_shape.
  auto reorder = [](const farray& src, int64_t N, int64_t C, int64_t H, int64_t W, std::vector<int64_t> dst_shape,
                    void (*run)(int64_t, int64_t, int64_t, const float*, float*)) {
    farray dst(dst_shape);
    const float* sp = src.data();
    float* dp = dst.mutable_data();
    py::gil_scoped_release nogil;
    run(N, C, H * W, sp, dp);
    return dst;
  };
  m.def(
      "to_blocked16",
      [reorder](farray x) {
        require_ndim(x, 4, "x");
        PYCNN_REQUIRE(x.shape(1) % 16 == 0,
                      "x: the channel count must be a multiple of 16, got " + std::to_string(x.shape(1)));
        const int64_t N = x.shape(0), C = x.shape(1), H = x.shape(2), W = x.shape(3);
        return reorder(x, N, C, H, W, {N, C / 16, H, W, 16}, reorder_to_blocked16);
      },
      py::arg("x"), "NCHW (N, C, H, W) -> channel-blocked (N, C/16, H, W, 16); 16 | C.");
  m.def(
      "from_blocked16",
      [reorder](farray y) {
        require_blocked16(y, "y");
        const int64_t N = y.shape(0), C = y.shape(1) * 16, H = y.shape(2), W = y.shape(3);
        return reorder(y, N, C, H, W, {N, C, H, W}, reorder_from_blocked16);
      },
      py::arg("y"), "channel-blocked (N, C/16, H, W, 16) -> NCHW (N, C, H, W).");
  m.def("linear", [](farray x, farray w, py::object b, farray y, bool relu) {
    require_ndim(x, 2, "x");
    require_ndim(w, 2, "weight");
    require_ndim(y, 2, "out");
    const int64_t N = x.shape(0), In = x.shape(1), Out = w.shape(0);
    PYCNN_REQUIRE(w.shape(1) == In, "weight: expected (out_features, in_features)");
    PYCNN_REQUIRE(y.shape(0) == N && y.shape(1) == Out, "out: expected (N, out_features)");
    farray bk = no_array();
    const float* bp = optional_vector(b, Out, bk, "bias: expected out_features entries");
    float* yp = wptr(y, "out");
    py::gil_scoped_release nogil;
    linear(N, In, Out, x.data(), w.data(), bp, yp, relu);
  });
  // Bound linear (Graph steps): y (N, Out) = x W^T + b for x of exactly (N, In). panels: run on
  // W^T packed in panels (True), on W as it is (False), or as linear_uses_panels says (None).
  m.def(
      "bind_linear",
      [](farray w, py::object b, int64_t N, bool relu, py::object panels) {
        require_ndim(w, 2, "weight");
        PYCNN_REQUIRE(N >= 1, "x: batch must be >= 1");
        BoundLinear bl{w, no_array(), nullptr, N, w.shape(1), w.shape(0), relu, nullptr};
        bl.b = optional_vector(b, bl.Out, bl.bias, "bias: expected out_features entries");
        const bool use = panels.is_none() ? linear_uses_panels(N, bl.In, bl.Out) : panels.cast<bool>();
        if (use) {
          bl.panels = std::make_shared<LinearPanels>();
          py::gil_scoped_release nogil;
          linear_panels_prepare(bl.In, bl.Out, w.data(), *bl.panels);
        }
        return bl;
      },
      py::arg("weight"), py::arg("bias"), py::arg("N"), py::arg("relu"), py::arg("panels") = py::none());
  m.def("linear_uses_panels", &linear_uses_panels, py::arg("N"), py::arg("In"), py::arg("Out"),
        "Whether a bound linear of batch N runs on W^T's panels (the rule bind_linear follows).");
  py::class_<BoundLinear> bound_linear(m, "BoundLinear");
  bound_linear.def("__call__", &bound_linear_call, py::arg("x"));
  register_native_step(bound_linear,
                       [](py::handle o) { return NativeStep{&bound_linear_native, o.cast<const BoundLinear*>()}; });
  m.def("relu", [](farray x, farray y) {
    same_size(x, y, "out");
    float* yp = wptr(y, "out");
    py::gil_scoped_release nogil;
    relu(x.size(), x.data(), yp);
  });
  m.def("add", [](farray a, farray b, farray y, bool relu) {
    same_size(a, b, "b");
    same_size(a, y, "out");
    float* yp = wptr(y, "out");
    py::gil_scoped_release nogil;
    add(a.size(), a.data(), b.data(), yp, relu);
  });
  m.def("channel_affine", [](farray x, farray scale, farray shift, farray y, bool relu) {
    PYCNN_REQUIRE(x.ndim() >= 2, "x: expected at least 2 dimensions (N, C, ...)");
    same_size(x, y, "out");
    const int64_t N = x.shape(0), C = x.shape(1), HW = C && N ? x.size() / (N * C) : 0;
    PYCNN_REQUIRE(scale.size() == C && shift.size() == C, "scale/shift: expected C entries");
    float* yp = wptr(y, "out");
    py::gil_scoped_release nogil;
    channel_affine(N, C, HW, x.data(), scale.data(), shift.data(), yp, relu);
  });
  // x, y channel-blocked (N, C/16, H, W, 16); scale, shift (C entries): a folded batch norm. x's
  // images may be further apart than an image (a channel slice of a Graph's concat at batch > 1).
  m.def("channel_affine_blocked16", [](py::array_t<float> xa, farray scale, farray shift, farray y, bool relu) {
    require_blocked16(xa, "x");
    const int64_t x_img = image_stride(xa, "x");
    PYCNN_REQUIRE(y.ndim() == 5 && std::equal(y.shape(), y.shape() + 5, xa.shape()), "out: expected x's shape");
    const int64_t Cb = xa.shape(1);
    PYCNN_REQUIRE(scale.size() == Cb * 16 && shift.size() == Cb * 16, "scale/shift: expected C entries");
    float* yp = wptr(y, "out");
    const float* xp = xa.data();
    py::gil_scoped_release nogil;
    channel_affine_blocked16(xa.shape(0), Cb, xa.shape(2) * xa.shape(3), xp, scale.data(), 0, shift.data(), yp, relu,
                             x_img);
  });
  // x, y channel-blocked (N, C/16, H, W, 16); scale (N*C entries): y = x * scale per channel.
  m.def("channel_scale_blocked16", [](farray x, farray scale, farray y) {
    require_blocked16(x, "x");
    same_size(x, y, "out");
    PYCNN_REQUIRE(scale.size() == x.shape(0) * x.shape(1) * 16, "scale: expected N*C entries");
    float* yp = wptr(y, "out");
    py::gil_scoped_release nogil;
    channel_affine_blocked16(x.shape(0), x.shape(1), x.shape(2) * x.shape(3), x.data(), scale.data(), x.shape(1) * 16,
                             nullptr, yp, false);
  });
  m.def("softmax_rows", [](farray x, farray y) {
    require_ndim(x, 2, "x");
    same_size(x, y, "out");
    float* yp = wptr(y, "out");
    py::gil_scoped_release nogil;
    softmax_rows(x.shape(0), x.shape(1), x.data(), yp);
  });
  // unary(fn, x, y, a, b): fn 0 clip(a, b), 1 sigmoid, 2 hardsigmoid(a, b), 3 hardswish, 4 silu,
  // 5 erf, 6 gelu; y may be x.
  m.def("unary", [](int fn, farray x, farray y, float a, float b) {
    PYCNN_REQUIRE(fn >= 0 && fn <= 6, "fn: expected 0..6, got " + std::to_string(fn));
    same_size(x, y, "out");
    float* yp = wptr(y, "out");
    py::gil_scoped_release nogil;
    unary(static_cast<UnaryFn>(fn), x.size(), x.data(), yp, a, b);
  });
  // y (batch, cols, rows, inner) = x (batch, rows, cols, inner), the middle two axes swapped.
  m.def("transpose_batched", [](farray x, int64_t batch, int64_t rows, int64_t cols, int64_t inner, farray y) {
    PYCNN_REQUIRE(batch >= 0 && rows >= 0 && cols >= 0 && inner >= 1 && x.size() == batch * rows * cols * inner,
                  "x: size mismatch");
    same_size(x, y, "out");
    float* yp = wptr(y, "out");
    py::gil_scoped_release nogil;
    transpose_batched(batch, rows, cols, inner, x.data(), yp);
  });
  m.def("layer_norm_rows", [](farray x, farray w, farray b, float eps, farray y) {
    require_ndim(x, 2, "x");
    same_size(x, y, "out");
    PYCNN_REQUIRE(w.size() == x.shape(1) && b.size() == x.shape(1), "weight/bias: expected one entry per column");
    PYCNN_REQUIRE(x.shape(1) > 0, "x: rows must not be empty");
    float* yp = wptr(y, "out");
    py::gil_scoped_release nogil;
    layer_norm_rows(x.shape(0), x.shape(1), x.data(), w.data(), b.data(), eps, yp);
  });
  // x, out (N, C, ...): each position normalized over the C channels (LayerNorm over axis 1).
  m.def("layer_norm_channels", [](farray x, farray w, farray b, float eps, farray y) {
    PYCNN_REQUIRE(x.ndim() >= 2, "x: expected (N, C, ...)");
    same_size(x, y, "out");
    const int64_t N = x.shape(0), C = x.shape(1), HW = C && N ? x.size() / (N * C) : 0;
    PYCNN_REQUIRE(C > 0, "x: no channels to normalize over");
    PYCNN_REQUIRE(w.size() == C && b.size() == C, "weight/bias: expected one entry per channel");
    PYCNN_REQUIRE(eps >= 0.0f, "eps: must be >= 0");
    float* yp = wptr(y, "out");
    py::gil_scoped_release nogil;
    layer_norm_channels(N, C, HW, x.data(), w.data(), b.data(), eps, yp);
  });
  // x, out channel-blocked (N, C/16, H, W, 16): LayerNorm over each pixel's C channels.
  m.def("layer_norm_channels_blocked16", [](farray x, farray w, farray b, float eps, farray y) {
    require_blocked16(x, "x");
    same_size(x, y, "out");
    const int64_t N = x.shape(0), Cb = x.shape(1), HW = x.shape(2) * x.shape(3);
    PYCNN_REQUIRE(Cb > 0, "x: no channels to normalize over");
    PYCNN_REQUIRE(w.size() == Cb * 16 && b.size() == Cb * 16, "weight/bias: expected one entry per channel");
    PYCNN_REQUIRE(eps >= 0.0f, "eps: must be >= 0");
    float* yp = wptr(y, "out");
    py::gil_scoped_release nogil;
    layer_norm_channels_blocked16(N, Cb, HW, x.data(), w.data(), b.data(), eps, yp);
  });
  m.def("max_rows", [](farray x, farray y) {
    require_ndim(x, 2, "x");
    PYCNN_REQUIRE(x.shape(1) > 0, "x: rows must not be empty");
    PYCNN_REQUIRE(y.size() == x.shape(0), "out: size mismatch");
    float* yp = wptr(y, "out");
    py::gil_scoped_release nogil;
    max_rows(x.shape(0), x.shape(1), x.data(), yp);
  });
  // Embedding lookup: y (n, dim) = rows ids (n int64) of w (vocab, dim); an id outside
  // [0, vocab) raises ValueError naming x with the range found.
  m.def("embedding", [](py::array_t<int64_t, py::array::c_style> ids, farray w, farray y) {
    require_ndim(w, 2, "weight");
    const int64_t n = ids.size(), V = w.shape(0), D = w.shape(1);
    PYCNN_REQUIRE(y.size() == n * D, "out: size mismatch");
    const int64_t* ip = ids.data();
    if (n > 0) {
      const auto mm = std::minmax_element(ip, ip + n);
      PYCNN_REQUIRE(*mm.first >= 0 && *mm.second < V, "x: token ids must lie in [0, " + std::to_string(V) + "), got [" +
                                                          std::to_string(*mm.first) + ", " +
                                                          std::to_string(*mm.second) + "]");
    }
    float* yp = wptr(y, "out");
    py::gil_scoped_release nogil;
    embedding_rows(n, ip, D, w.data(), yp);
  });
  m.def("concat", [](std::vector<farray> xs, farray y, int64_t outer, int64_t inner) {
    std::vector<const float*> ptrs;
    std::vector<int64_t> sizes;
    int64_t total = 0;
    for (auto& a : xs) {
      PYCNN_REQUIRE(outer > 0 && inner > 0 ? a.size() % (outer * inner) == 0 : a.size() == 0, "xs: size mismatch");
      const int64_t s = (outer > 0 && inner > 0) ? a.size() / (outer * inner) : 0;
      ptrs.push_back(a.data());
      sizes.push_back(s);
      total += s;
    }
    PYCNN_REQUIRE(y.size() == outer * total * inner, "out: size mismatch");
    float* yp = wptr(y, "out");
    py::gil_scoped_release nogil;
    concat(ptrs, sizes, outer, inner, yp);
  });
}

}  // namespace pycnn
