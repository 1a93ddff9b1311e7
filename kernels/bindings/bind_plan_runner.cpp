// pycnn._C.PlanRunner: a Graph's bound plan (pycnn/graph/binding.py) run in one call.
//
// Why: at batch 1 a small network's step computes for a few microseconds, and Graph.run's Python
// loop (the entry's tuple unpacked, the inputs read from and the output written to a dict, the
// dead tensors deleted) with pybind11's dispatch of the step's __call__ (overload resolution,
// argument casts, keyword defaults) was a large share of such a step (docs/performance.md,
// Whole networks).
//
// How: tensors are slots of a vector, numbered once when the plan is bound. Each entry holds
// its callable, its input slots, its output slot and the slots that die after it. A step whose
// callable is a registered bound class (BoundConv, BoundPool, BoundLinear: register_native_step)
// is called through its C++ function with its inputs as they are; any other (a Python-side
// step: views, concat parts, fused calls) through Python's vectorcall. The step functions are
// the ones the classes' __call__ run, so both paths check, convert and compute alike. Arrays
// are made as before (NumPy's allocator: Graph.run's arena applies), and a slot's reference is
// dropped when its last reader has run.
#include <algorithm>
#include <unordered_map>
#include <vector>

#include "bindings_cpu.h"

namespace pycnn {

namespace {

std::unordered_map<PyTypeObject*, NativeStep (*)(py::handle)>& native_registry() {
  static std::unordered_map<PyTypeObject*, NativeStep (*)(py::handle)> r;
  return r;
}

class PlanRunner {
 public:
  struct Entry {
    py::object fn;
    NativeStep native;
    std::vector<int> ins, frees;
    int out;
  };

  PlanRunner(std::vector<std::tuple<py::object, std::vector<int>, int, std::vector<int>>> entries, int slots,
             std::vector<int> inputs, std::vector<int> outputs)
      : slots_(slots), inputs_(std::move(inputs)), outputs_(std::move(outputs)) {
    PYCNN_REQUIRE(slots >= 0, "slots: must be >= 0");
    auto check = [&](int s, const char* what) {
      PYCNN_REQUIRE(s >= 0 && s < slots, std::string(what) + ": slot out of range");
    };
    for (int s : inputs_) check(s, "inputs");
    for (int s : outputs_) check(s, "outputs");
    for (auto& [fn, ins, out, frees] : entries) {
      PYCNN_REQUIRE(PyCallable_Check(fn.ptr()), "entries: each step needs a callable");
      PYCNN_REQUIRE(!ins.empty(), "entries: each step takes at least one input");
      max_args_ = std::max(max_args_, ins.size());
      for (int s : ins) check(s, "entries' inputs");
      for (int s : frees) check(s, "entries' frees");
      check(out, "entries' output");
      entries_.push_back(Entry{fn, native_step(fn), ins, frees, out});
    }
  }

  // The graph's inputs (in the order of `inputs`) -> its outputs (in the order of `outputs`).
  std::vector<py::object> run(const std::vector<py::object>& xs) const {
    PYCNN_REQUIRE(xs.size() == inputs_.size(), "inputs: expected " + std::to_string(inputs_.size()) + " arrays");
    std::vector<py::object> env((size_t)slots_);
    for (size_t i = 0; i < xs.size(); ++i) env[(size_t)inputs_[i]] = xs[i];
    std::vector<PyObject*> arg_buf(max_args_);
    PyObject** args = arg_buf.data();
    for (const Entry& e : entries_) {
      for (size_t i = 0; i < e.ins.size(); ++i) {
        args[i] = env[(size_t)e.ins[i]].ptr();
        if (!args[i]) throw std::runtime_error("plan: a step reads a tensor no earlier step made");
      }
      if (e.native.call) {
        env[(size_t)e.out] = e.native.call(e.native.self, args, e.ins.size());
      } else {
        PyObject* r = PyObject_Vectorcall(e.fn.ptr(), args, e.ins.size(), nullptr);
        if (!r) throw py::error_already_set();
        env[(size_t)e.out] = py::reinterpret_steal<py::object>(r);
      }
      for (int s : e.frees) env[(size_t)s] = py::object();
    }
    std::vector<py::object> outs;
    outs.reserve(outputs_.size());
    for (int s : outputs_) {
      if (!env[(size_t)s]) throw std::runtime_error("plan: an output no step made");
      outs.push_back(env[(size_t)s]);
    }
    return outs;
  }

  // Entries called through their C++ step function (the rest go through Python).
  int native_steps() const {
    int n = 0;
    for (const Entry& e : entries_) n += e.native.call != nullptr;
    return n;
  }

 private:
  size_t max_args_ = 0;
  int slots_;
  std::vector<int> inputs_, outputs_;
  std::vector<Entry> entries_;
};

}  // namespace

void register_native_step(const py::handle& type, NativeStep (*resolve)(py::handle obj)) {
  native_registry()[reinterpret_cast<PyTypeObject*>(type.ptr())] = resolve;
}

NativeStep native_step(py::handle obj) {
  const auto& r = native_registry();
  const auto it = r.find(Py_TYPE(obj.ptr()));
  return it == r.end() ? NativeStep{} : it->second(obj);
}

farray step_array(PyObject* a, const char* name) {
  if (farray::check_(a)) return py::reinterpret_borrow<farray>(a);  // float32, C-contiguous: as it is
  farray x = farray::ensure(a);
  if (!x) throw py::type_error(std::string(name) + ": expected a float32 array");
  return x;
}

void bind_plan_runner(py::module_& m) {
  py::class_<PlanRunner>(m, "PlanRunner",
                         "A bound plan run in one call: entries [(callable, input slots, output slot, slots "
                         "freed after it)], the number of slots, the graph inputs' slots and its outputs' slots.")
      .def(py::init<std::vector<std::tuple<py::object, std::vector<int>, int, std::vector<int>>>, int, std::vector<int>,
                    std::vector<int>>(),
           py::arg("entries"), py::arg("slots"), py::arg("inputs"), py::arg("outputs"))
      .def("__call__", &PlanRunner::run, py::arg("inputs"))
      .def_property_readonly("native_steps", &PlanRunner::native_steps);
}

}  // namespace pycnn
