// Helpers shared by the CPU binding files: array aliases and guards.
#pragma once
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <stdexcept>
#include <string>

namespace pycnn {

namespace py = pybind11;
// Arrays reaching the kernels are float32 and C-contiguous; pybind11 refuses (TypeError) anything
// else instead of converting silently, since ops.py already converted by its documented rule.
using farray = py::array_t<float, py::array::c_style>;

// A failed check raises ValueError(msg). msg is evaluated only when the check fails: bound calls
// run their checks on every step, and a message built eagerly is a std::string allocated per check.
#define PYCNN_REQUIRE(ok, msg)                                \
  do {                                                        \
    if (!(ok)) throw std::invalid_argument(std::string(msg)); \
  } while (0)

inline void require_ndim(const farray& a, int nd, const char* name) {
  PYCNN_REQUIRE(a.ndim() == nd, std::string(name) + ": expected " + std::to_string(nd) + " dimensions, got " +
                                    std::to_string(a.ndim()));
}
// a is channel-blocked (pycnn/layout.py): (N, C/16, H, W, 16).
inline void require_blocked16(const py::array& a, const char* name) {
  if (a.ndim() == 5 && a.shape(4) == 16) return;
  std::string got = "(";
  for (int i = 0; i < a.ndim(); ++i) got += (i ? ", " : "") + std::to_string(a.shape(i));
  throw std::invalid_argument(std::string(name) + ": expected a channel-blocked (N, C/16, H, W, 16) array, got shape " +
                              got + (a.ndim() == 1 ? ",)" : ")"));
}
// Floats from one image (index of axis 0) of `a` to the next: the image size when a is
// C-contiguous, more when only its images are apart (a channel slice of a wider array: a Graph's
// concat at batch > 1); anything else is an error naming `name`.
inline int64_t image_stride(const py::array& a, const char* name) {
  bool ok = a.ndim() >= 1;
  int64_t image = (int64_t)sizeof(float);
  for (py::ssize_t i = a.ndim() - 1; ok && i >= 1; --i) {
    ok = a.strides(i) == image || a.shape(i) == 1;
    image *= a.shape(i);
  }
  if (ok && (a.shape(0) <= 1 || (a.strides(0) % (py::ssize_t)sizeof(float) == 0 && a.strides(0) >= image)))
    return a.shape(0) <= 1 ? image / (int64_t)sizeof(float) : a.strides(0) / (int64_t)sizeof(float);
  throw std::invalid_argument(std::string(name) +
                              ": expected a C-contiguous array, or one whose images alone are further apart");
}
// A farray holding nothing, to be assigned later: farray's default constructor makes a 0-size
// NumPy array, an allocation on every bound call that declares one.
inline farray no_array() { return py::reinterpret_steal<farray>(py::handle()); }
inline float* wptr(farray& a, const char* name) {
  PYCNN_REQUIRE(a.writeable(), std::string(name) + ": array is read-only");
  return a.mutable_data();
}
// A caller's `out` array, written in place (never through a converted copy).
inline farray out_array(const py::object& out, const char* name = "out") {
  PYCNN_REQUIRE(py::isinstance<py::array>(out), std::string(name) + ": expected a NumPy array");
  const auto a = py::reinterpret_borrow<py::array>(out);
  PYCNN_REQUIRE(a.dtype().is(py::dtype::of<float>()) && (a.flags() & py::array::c_style),
                std::string(name) + ": expected a C-contiguous float32 array");
  PYCNN_REQUIRE(a.writeable(), std::string(name) + ": array is read-only");
  return py::reinterpret_borrow<farray>(a);
}
// An optional 1-D vector of n floats (a bias): null for None; keep holds the array alive.
inline const float* optional_vector(const py::object& v, int64_t n, farray& keep, const char* msg) {
  if (v.is_none()) return nullptr;
  keep = v.cast<farray>();
  PYCNN_REQUIRE(keep.ndim() == 1 && keep.shape(0) == n, msg);
  return keep.data();
}
// x has exactly nd dimensions of these sizes (a bound call's input).
inline bool same_shape(const farray& x, const int64_t* shape, int nd) {
  if (x.ndim() != nd) return false;
  for (int i = 0; i < nd; ++i)
    if (x.shape(i) != shape[i]) return false;
  return true;
}

// A bound Graph step's C++ call, for the plan runner (bind_plan_runner.cpp): the step's inputs
// as its Python __call__ takes them positionally, its result returned. self is the step's C++
// object (kept alive by the runner's reference to the Python one).
struct NativeStep {
  py::object (*call)(const void* self, PyObject* const* args, size_t nargs) = nullptr;
  const void* self = nullptr;
};
// Each binding file registers its bound-step classes: resolve(obj) gives obj's NativeStep.
void register_native_step(const py::handle& type, NativeStep (*resolve)(py::handle obj));
// obj's NativeStep, or one with a null call when obj's type is not registered.
NativeStep native_step(py::handle obj);
// An argument of a native step as the bound call's farray parameter takes it (pybind11's
// conversion: a float32 C-contiguous array as it is, anything else converted or refused).
farray step_array(PyObject* a, const char* name);

void bind_runtime(py::module_& m);
void bind_gemm(py::module_& m);
void bind_conv(py::module_& m);
void bind_pool(py::module_& m);
void bind_eltwise(py::module_& m);
void bind_graph_arena(py::module_& m);
void bind_plan_runner(py::module_& m);

}  // namespace pycnn
