// The convolution algorithms whose weights are prepared in C++: one table (conv2d_algos.cpp), read
// by the bindings (pycnn._C.conv_algorithms, conv2d, PreparedWeights) and through them by
// pycnn/registry.py, which adds the Python-side algorithms. Adding an algorithm: its kernel file
// and one entry in that table; Python, the autotuner, the layout pass, the tests and the bench
// pick it up from there.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "conv2d.h"

namespace pycnn {

struct ConvAlgorithm {
  const char* name;     // "im2col", "direct", "direct_oc", "winograd_f2" ...
  const char* summary;  // one line for pycnn.algorithms() and the docs
  // The documented bound on max|y - y64| / max|y64| (Winograd's tiles), or 0 for algorithms that
  // sum the same products as the reference in another order (checked elementwise).
  double rel_error_bound;
  // The same bound on kernels other than 3x3 where the algorithm takes them (Winograd's 5x5 and
  // one-dimensional tiles), 0 where it is rel_error_bound.
  double rel_error_bound_other;
  // Why this algorithm cannot run p ("" when it can): kernel size, stride, dilation, plane size.
  std::string (*refuse)(const ConvParams& p);
  // Whether it runs p with these kDirectOc*Blocked layout bits (0 is always accepted).
  bool (*layout_ok)(const ConvParams& p, int layout);
  // Weights (K, C/groups, R, S) transformed for it; p gives K, C, R, S, groups.
  std::unique_ptr<ConvWeights> (*prepare)(const ConvParams& p, const float* w);
  // y = conv(x) with the prepared weights (+ bias, + residual, activation), layouts per `layout`.
  void (*kernel)(const ConvWeights& w, const ConvParams& p, const float* x, const float* bias, float* y, Activation act,
                 const float* residual, int layout);
  // The kernel, but nothing for an empty y (a batch of none): the kernels' work splits divide by
  // the tile and image counts.
  void run(const ConvWeights& w, const ConvParams& p, const float* x, const float* bias, float* y, Activation act,
           const float* residual, int layout) const {
    if (p.N == 0 || p.K == 0 || p.Ho == 0 || p.Wo == 0) return;
    kernel(w, p, x, bias, y, act, residual, layout);
  }
};

const std::vector<ConvAlgorithm>& conv_algorithms();
// The entry named `name`; std::invalid_argument naming the known ones otherwise.
const ConvAlgorithm& conv_algorithm(const std::string& name);

}  // namespace pycnn
