// W-self and A-self from sorted values and prefix sums; see self_errors.h.
#include "search/self_errors.h"

#include <algorithm>

#include "quant/error.h"
#include "quant/uniform.h"
#include "search/objective_common.h"

namespace adalog::search {

void WeightSelfErrors(const float* w, int rows, int cols, const UniformCandidates& c,
                      std::vector<double>* err) {
  ADALOG_CHECK(c.groups == rows, "W-self: ", c.groups, " groups for ", rows, " rows");
  // Per row, the A-self form: the row sorted once with prefix sums of w and w^2, each code's
  // bin by bisection with the quantizer's own Encode (the code is monotone in w), the bin's
  // error S2 - 2 v S1 + n v^2 in double. O(2^b log cols) per candidate instead of cols.
  std::vector<float> wt(static_cast<size_t>(rows) * cols);
  for (int r = 0; r < rows; ++r)
    for (int j = 0; j < cols; ++j)
      wt[static_cast<size_t>(j) * rows + r] = w[static_cast<int64_t>(r) * cols + j];
  const ActSelfObjective per_row(wt.data(), cols, rows, /*per_channel=*/true);
  per_row.Eval(c, err);
}

// ---------------------------------------------------------------------------------------------
ActSelfObjective::ActSelfObjective(const float* x, int64_t rows, int cols, bool per_channel) {
  ADALOG_CHECK(rows > 0 && cols > 0, "A-self: empty tensor");
  groups_ = per_channel ? cols : 1;
  n_ = per_channel ? rows : rows * cols;
  sorted_.resize(static_cast<size_t>(groups_) * n_);
  s1_.resize(static_cast<size_t>(groups_) * (n_ + 1));
  s2_.resize(static_cast<size_t>(groups_) * (n_ + 1));
  if (per_channel) {
    for (int64_t r = 0; r < rows; ++r)
      for (int c = 0; c < cols; ++c) sorted_[static_cast<size_t>(c) * n_ + r] = x[r * cols + c];
  } else {
    std::copy(x, x + n_, sorted_.begin());
  }
#pragma omp parallel for schedule(dynamic, 1) if (n_ * groups_ > kMinParallelWork)
  for (int g = 0; g < groups_; ++g) {
    float* v = sorted_.data() + static_cast<size_t>(g) * n_;
    std::sort(v, v + n_);
    double* p1 = s1_.data() + static_cast<size_t>(g) * (n_ + 1);
    double* p2 = s2_.data() + static_cast<size_t>(g) * (n_ + 1);
    p1[0] = p2[0] = 0;
    for (int64_t i = 0; i < n_; ++i) {
      const double d = v[i];
      p1[i + 1] = p1[i] + d;
      p2[i + 1] = p2[i] + d * d;
    }
  }
}

void ActSelfObjective::Eval(const UniformCandidates& c, std::vector<double>* err) const {
  ADALOG_CHECK(c.groups == groups_, "A-self: ", c.groups, " groups for ", groups_);
  err->assign(static_cast<size_t>(groups_) * c.count, 0.0);
  const int64_t pairs = static_cast<int64_t>(groups_) * c.count;
  const int32_t levels = 1 << c.bits;
#pragma omp parallel for schedule(dynamic, 8) if (pairs * levels * 24 > kMinParallelWork)
  for (int64_t p = 0; p < pairs; ++p) {
    const int g = static_cast<int>(p / c.count), i = static_cast<int>(p % c.count);
    const UniformQuantizer q(UniformParams{c.bits, c.scale(g, i), c.zp(g, i)});
    const float* v = sorted_.data() + static_cast<size_t>(g) * n_;
    const double* p1 = s1_.data() + static_cast<size_t>(g) * (n_ + 1);
    const double* p2 = s2_.data() + static_cast<size_t>(g) * (n_ + 1);
    double e = 0;
    int64_t start = 0;
    for (int32_t code = 0; code < levels && start < n_; ++code) {
      // End of this code's bin: the first value whose code exceeds `code` (codes are monotone
      // in x, so the bins are contiguous in the sorted array).
      const int64_t end =
          code == levels - 1
              ? n_
              : std::partition_point(v + start, v + n_,
                                     [&](float x) { return q.Encode(x) <= code; }) - v;
      if (end > start) {
        const double val = q.Decode(code);
        const double cnt = static_cast<double>(end - start);
        e += (p2[end] - p2[start]) - 2.0 * val * (p1[end] - p1[start]) + cnt * val * val;
      }
      start = end;
    }
    (*err)[static_cast<size_t>(p)] = e;
  }
}

}  // namespace adalog::search
