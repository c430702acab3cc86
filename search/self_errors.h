// The self objectives (method §4.3), from sorted values and prefix sums:
//   A-self per tensor or per channel: sum (x - Q(x))^2
//   W-self per row:                   sum_i (W[o,i] - Q(W)[o,i])^2, the A-self form per row
// The code of a sorted array is monotone, so each code's bin is found by bisection with the
// quantizer's own Encode, and the bin's error is S2 - 2 v S1 + n v^2 in double: O(2^b log n) per
// candidate instead of n.
#pragma once

#include <cstdint>
#include <vector>

#include "search/grids.h"

namespace adalog::search {

// W-self for weight [rows][cols]: err[g * count + i] for row g = candidates' group g.
void WeightSelfErrors(const float* w, int rows, int cols, const UniformCandidates& c,
                      std::vector<double>* err);

// A-self over x [rows][cols], per tensor (candidates with 1 group) or per channel (cols groups).
class ActSelfObjective {
 public:
  ActSelfObjective(const float* x, int64_t rows, int cols, bool per_channel);
  void Eval(const UniformCandidates& c, std::vector<double>* err) const;

 private:
  int64_t n_;      // values per group
  int groups_;
  std::vector<float> sorted_;  // [group][n], ascending
  std::vector<double> s1_, s2_;  // prefix sums [group][n + 1]
};

}  // namespace adalog::search
