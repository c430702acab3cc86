// The central-difference gradient check shared by the reconstruction tests (block_grad_test.cc,
// optimize_test.cc): every element of a parameter tensor is moved by +-eps, the frozen-rounding
// loss evaluated, and the difference quotient compared with the analytic gradient.
#pragma once

#include <algorithm>
#include <cmath>
#include <vector>

namespace adalog::search::recon_test {

struct GradError {
  double max_norm = 0.0;  // max |analytic - fd| / max |fd| over the tensor
  double max_abs_fd = 0.0;
  int nonzero = 0;        // analytic gradient elements that are not 0 (a check of a 0 tensor is void)
};

// Central differences of `loss()` for every element of `vals` (changed in place and restored),
// eps = max(abs_eps, rel_eps * |value|), against the analytic gradient `g`.
template <typename F>
GradError CheckTensor(std::vector<double>* vals, const std::vector<double>& g, double rel_eps,
                      double abs_eps, const F& loss) {
  std::vector<double> fd(vals->size());
  for (size_t i = 0; i < vals->size(); ++i) {
    const double v = (*vals)[i];
    const double eps = std::max(abs_eps, rel_eps * std::fabs(v));
    (*vals)[i] = v + eps;
    const double lp = loss();
    (*vals)[i] = v - eps;
    const double lm = loss();
    (*vals)[i] = v;
    fd[i] = (lp - lm) / (2 * eps);
  }
  GradError e;
  for (size_t i = 0; i < fd.size(); ++i) {
    e.max_abs_fd = std::max(e.max_abs_fd, std::fabs(fd[i]));
    if (g[i] != 0.0) ++e.nonzero;
  }
  for (size_t i = 0; i < fd.size(); ++i) {
    e.max_norm = std::max(e.max_norm, std::fabs(g[i] - fd[i]) / e.max_abs_fd);
  }
  return e;
}

}  // namespace adalog::search::recon_test
