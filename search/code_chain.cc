// The chain machinery of the objectives' incremental forms; see code_chain.h.
#include "search/code_chain.h"

#include <algorithm>
#include <numeric>

#include "quant/error.h"
#include "quant/float_order.h"
#include "search/psort.h"

namespace adalog::search {

void SortWithIndex(const float* x, int64_t n, SortedValues* out) {
  ADALOG_CHECK(n < (int64_t{1} << 32), "search: too many values to sort (", n, ")");
  std::vector<uint64_t> keys(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i)
    keys[static_cast<size_t>(i)] = (static_cast<uint64_t>(OrderedFloatKey(x[i])) << 32) | static_cast<uint64_t>(i);
  ParallelSortDistinct(&keys);  // (value, index) keys are distinct
  out->val.resize(static_cast<size_t>(n));
  out->idx.resize(static_cast<size_t>(n));
  for (int64_t p = 0; p < n; ++p) {
    const uint32_t i = static_cast<uint32_t>(keys[static_cast<size_t>(p)] & 0xffffffffu);
    out->idx[static_cast<size_t>(p)] = i;
    out->val[static_cast<size_t>(p)] = x[i];
  }
}

void UniformSteps(const UniformQuantizer& q, int32_t offset, const float* sorted, int64_t n,
                  CodeSteps* out) {
  const int32_t levels = int32_t{1} << q.params().bits;
  out->lo = -offset;
  out->bounds.resize(static_cast<size_t>(levels - 1));
  int64_t start = 0;
  for (int32_t v = 0; v + 1 < levels; ++v) {
    start = std::partition_point(sorted + start, sorted + n, [&](float x) { return q.Encode(x) <= v; }) - sorted;
    out->bounds[static_cast<size_t>(v)] = start;
  }
}

int64_t CountChanged(const CodeSteps& from, const CodeSteps& to, int64_t n) {
  int64_t changed = 0;
  ForEachChange(from, to, n, [&](int64_t a, int64_t b, int, int) { changed += b - a; });
  return changed;
}

std::vector<int> ScaleOrder(const UniformCandidates& c, int g) {
  std::vector<int> order(static_cast<size_t>(c.count));
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](int a, int b) {
    const float sa = c.scale(g, a), sb = c.scale(g, b);
    if (sa != sb) return sa < sb;
    if (c.zp(g, a) != c.zp(g, b)) return c.zp(g, a) < c.zp(g, b);
    return a < b;
  });
  return order;
}

std::vector<int> KeyThenScaleOrder(const std::vector<int>& key, const std::vector<float>& scale) {
  const int count = static_cast<int>(key.size());
  std::vector<int> first(static_cast<size_t>(count));
  for (int i = 0; i < count; ++i) {
    first[static_cast<size_t>(i)] = i;
    for (int j = 0; j < i; ++j)
      if (key[static_cast<size_t>(j)] == key[static_cast<size_t>(i)]) {
        first[static_cast<size_t>(i)] = first[static_cast<size_t>(j)];
        break;
      }
  }
  std::vector<int> order(static_cast<size_t>(count));
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) {
    if (first[static_cast<size_t>(a)] != first[static_cast<size_t>(b)])
      return first[static_cast<size_t>(a)] < first[static_cast<size_t>(b)];
    return scale[static_cast<size_t>(a)] < scale[static_cast<size_t>(b)];
  });
  return order;
}

}  // namespace adalog::search
