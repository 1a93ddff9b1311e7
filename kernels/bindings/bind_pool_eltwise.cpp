// Bindings: pooling, LRN, linear and the element-wise ops.
#include <algorithm>
#include <vector>

#include "bindings_cpu.h"
#include "ops_cpu.h"

namespace pycnn {

namespace {

PoolParams pool_params(const farray& x, const farray& y, int64_t R, int64_t S, int64_t sh, int64_t sw,
                       int64_t pt, int64_t pl) {
  require_ndim(x, 4, "x");
  require_ndim(y, 4, "out");
  require(y.shape(0) == x.shape(0) && y.shape(1) == x.shape(1), "out: expected (N, C, Ho, Wo)");
  require(R >= 1 && S >= 1, "kernel_size: must be >= 1");
  require(sh >= 1 && sw >= 1, "stride: must be >= 1");
  require(pt >= 0 && pl >= 0, "padding: must be >= 0");
  return PoolParams{x.shape(0) * x.shape(1), x.shape(2), x.shape(3), R, S, sh, sw, pt, pl, y.shape(2), y.shape(3)};
}

void same_size(const farray& a, const farray& b, const char* name) {
  require(a.size() == b.size(), std::string(name) + ": size mismatch");
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
  m.def("global_avg_pool2d", [](farray x, farray y) {
    require_ndim(x, 4, "x");
    require(y.size() == x.shape(0) * x.shape(1), "out: expected N*C entries");
    float* yp = wptr(y, "out");
    py::gil_scoped_release nogil;
    global_avg_pool2d(x.shape(0) * x.shape(1), x.shape(2) * x.shape(3), x.data(), yp);
  });
  m.def("local_response_norm", [](farray x, farray y, int64_t size, float alpha, float beta, float k) {
    require(x.ndim() >= 2, "x: expected at least 2 dimensions (N, C, ...)");
    require(size >= 1, "size: must be >= 1");
    same_size(x, y, "out");
    const int64_t N = x.shape(0), C = x.shape(1), HW = C && N ? x.size() / (N * C) : 0;
    float* yp = wptr(y, "out");
    py::gil_scoped_release nogil;
    local_response_norm(N, C, HW, x.data(), yp, size, alpha, beta, k);
  });
}

void bind_eltwise(py::module_& m) {
  m.def("linear", [](farray x, farray w, py::object b, farray y, bool relu) {
    require_ndim(x, 2, "x");
    require_ndim(w, 2, "weight");
    require_ndim(y, 2, "out");
    const int64_t N = x.shape(0), In = x.shape(1), Out = w.shape(0);
    require(w.shape(1) == In, "weight: expected (out_features, in_features)");
    require(y.shape(0) == N && y.shape(1) == Out, "out: expected (N, out_features)");
    farray bk;
    const float* bp = nullptr;
    if (!b.is_none()) {
      bk = b.cast<farray>();
      require(bk.ndim() == 1 && bk.shape(0) == Out, "bias: expected out_features entries");
      bp = bk.data();
    }
    float* yp = wptr(y, "out");
    py::gil_scoped_release nogil;
    linear(N, In, Out, x.data(), w.data(), bp, yp, relu);
  });
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
    require(x.ndim() >= 2, "x: expected at least 2 dimensions (N, C, ...)");
    same_size(x, y, "out");
    const int64_t N = x.shape(0), C = x.shape(1), HW = C && N ? x.size() / (N * C) : 0;
    require(scale.size() == C && shift.size() == C, "scale/shift: expected C entries");
    float* yp = wptr(y, "out");
    py::gil_scoped_release nogil;
    channel_affine(N, C, HW, x.data(), scale.data(), shift.data(), yp, relu);
  });
  m.def("softmax_rows", [](farray x, farray y) {
    require_ndim(x, 2, "x");
    same_size(x, y, "out");
    float* yp = wptr(y, "out");
    py::gil_scoped_release nogil;
    softmax_rows(x.shape(0), x.shape(1), x.data(), yp);
  });
  m.def("max_rows", [](farray x, farray y) {
    require_ndim(x, 2, "x");
    require(x.shape(1) > 0, "x: rows must not be empty");
    require(y.size() == x.shape(0), "out: size mismatch");
    float* yp = wptr(y, "out");
    py::gil_scoped_release nogil;
    max_rows(x.shape(0), x.shape(1), x.data(), yp);
  });
  // Embedding lookup: y (n, dim) = rows ids (n int64) of w (vocab, dim); an id outside
  // [0, vocab) raises ValueError naming x with the range found.
  m.def("embedding", [](py::array_t<int64_t, py::array::c_style> ids, farray w, farray y) {
    require_ndim(w, 2, "weight");
    const int64_t n = ids.size(), V = w.shape(0), D = w.shape(1);
    require(y.size() == n * D, "out: size mismatch");
    const int64_t* ip = ids.data();
    if (n > 0) {
      const auto mm = std::minmax_element(ip, ip + n);
      require(*mm.first >= 0 && *mm.second < V, "x: token ids must lie in [0, " + std::to_string(V) + "), got [" +
                                                     std::to_string(*mm.first) + ", " + std::to_string(*mm.second) + "]");
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
      require(outer > 0 && inner > 0 ? a.size() % (outer * inner) == 0 : a.size() == 0, "xs: size mismatch");
      const int64_t s = (outer > 0 && inner > 0) ? a.size() / (outer * inner) : 0;
      ptrs.push_back(a.data());
      sizes.push_back(s);
      total += s;
    }
    require(y.size() == outer * total * inner, "out: size mismatch");
    float* yp = wptr(y, "out");
    py::gil_scoped_release nogil;
    concat(ptrs, sizes, outer, inner, yp);
  });
}

}  // namespace pycnn
