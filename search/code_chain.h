// The chain machinery of the objectives' incremental forms: a quantizer's codes over data sorted
// once, as steps of the sorted order, the ranges where two candidates' codes differ (the elements
// a sparse update touches), the fixed order a chain walks its candidates in, and the changed
// elements bucketed for a sparse update. Used by W-out (weight_out.cc), A-out uniform (act_out.cc),
// A-out log (log_act_out.cc) and the per-head matmuls (matmul_out.cc).
//
// Why it is exact: a monotone quantizer's code is monotone in x, so over the sorted values each
// code's elements are one contiguous range, found by bisection with the quantizer's own Encode
// (the very function the plain objective applies). Two candidates then differ on whole ranges of
// the sorted order, found by a merge of their boundaries, never by encoding every element.
//
// Every function here is sequential and enumerates in ascending sorted position, so a caller that
// accumulates over the changes gets one fixed summation order (results do not depend on threads).
#pragma once

#include <cstdint>
#include <vector>

#include "quant/uniform.h"
#include "search/grids.h"

namespace adalog::search {

// Values sorted ascending by (OrderedFloatKey, flat index), with each one's flat index: -0 sorts
// just below +0, NaNs outside [-inf, +inf]. The order does not depend on the thread count.
struct SortedValues {
  std::vector<float> val;
  std::vector<uint32_t> idx;
};
// x[0..n), n < 2^32 (checked).
void SortWithIndex(const float* x, int64_t n, SortedValues* out);

// A monotone non-decreasing integer function of the sorted position p in [0, n):
//   value(p) = lo + #{j : bounds[j] <= p},   bounds ascending, each in [0, n].
// The default (lo = 0, no bounds) is the all-zero function. A non-increasing code (the log
// quantizers) is stored as the steps of -code.
struct CodeSteps {
  int lo = 0;
  std::vector<int64_t> bounds;
};

// Calls f(begin, end, value) for each non-empty range [begin, end) of [0, n) on which s is
// constant, in ascending order.
template <typename F>
void ForEachRange(const CodeSteps& s, int64_t n, F&& f) {
  int64_t p = 0;
  int v = s.lo;
  for (int64_t b : s.bounds) {
    const int64_t end = b < n ? b : n;
    if (end > p) f(p, end, v);
    if (end > p) p = end;
    ++v;
  }
  if (n > p) f(p, n, v);
}

// The steps of u = q.Encode(x) - offset over sorted[0..n) (ascending, no NaN): 2^bits - 1 bounds,
// bounds[v] = the first position whose code exceeds v (bisection with q.Encode, each search
// starting at the previous bound).
void UniformSteps(const UniformQuantizer& q, int32_t offset, const float* sorted, int64_t n,
                  CodeSteps* out);

// Calls f(begin, end, from_value, to_value) for each range [begin, end) of [0, n) on which the two
// functions are constant and differ, in ascending order (ranges split at every bound of either).
template <typename F>
void ForEachChange(const CodeSteps& from, const CodeSteps& to, int64_t n, F&& f) {
  const size_t na = from.bounds.size(), nb = to.bounds.size();
  size_t ia = 0, ib = 0;
  int ua = from.lo, ub = to.lo;
  int64_t p = 0;
  while (p < n) {
    while (ia < na && from.bounds[ia] <= p) ++ua, ++ia;
    while (ib < nb && to.bounds[ib] <= p) ++ub, ++ib;
    int64_t next = n;
    if (ia < na && from.bounds[ia] < next) next = from.bounds[ia];
    if (ib < nb && to.bounds[ib] < next) next = to.bounds[ib];
    if (ua != ub) f(p, next, ua, ub);
    p = next;
  }
}

// Number of positions in [0, n) where the two functions differ.
int64_t CountChanged(const CodeSteps& from, const CodeSteps& to, int64_t n);

// The changes of a move from -> to, bucketed (counting sort, stable: ascending sorted position
// inside a bucket) by bucket_of(idx[p]) in [0, buckets): start[b] .. start[b + 1] are bucket b's
// slots, and emit(slot, idx[p], from_value, to_value) is called once per changed position p.
// Returns the number of changed positions.
template <typename BucketOf, typename Emit>
int64_t BucketChanges(const CodeSteps& from, const CodeSteps& to, const uint32_t* idx, int64_t n,
                      int64_t buckets, BucketOf&& bucket_of, std::vector<int64_t>* start,
                      Emit&& emit) {
  start->assign(static_cast<size_t>(buckets) + 1, 0);
  int64_t changed = 0;
  ForEachChange(from, to, n, [&](int64_t a, int64_t b, int, int) {
    for (int64_t p = a; p < b; ++p) ++(*start)[static_cast<size_t>(bucket_of(idx[p])) + 1];
    changed += b - a;
  });
  for (int64_t k = 0; k < buckets; ++k) (*start)[static_cast<size_t>(k) + 1] += (*start)[static_cast<size_t>(k)];
  std::vector<int64_t> fill(start->begin(), start->end() - 1);
  ForEachChange(from, to, n, [&](int64_t a, int64_t b, int vo, int vn) {
    for (int64_t p = a; p < b; ++p) {
      const uint32_t i = idx[p];
      emit(fill[static_cast<size_t>(bucket_of(i))]++, i, vo, vn);
    }
  });
  return changed;
}

// Chain orders (a chain walks its candidates in a fixed order, so that neighbours are close and
// the path does not depend on threads):
// group g's candidates by ascending (scale, zero point, index) (W-out rows, matmul heads);
std::vector<int> ScaleOrder(const UniformCandidates& c, int g);
// indices 0..count-1 in runs of equal key (runs by first appearance), ascending scale inside a
// run, ties by index (A-out per tensor: key = zero point; log A-out: key = q).
std::vector<int> KeyThenScaleOrder(const std::vector<int>& key, const std::vector<float>& scale);

}  // namespace adalog::search
