// Parallel sort of distinct keys (the sorted order of distinct keys is unique, so the result
// does not depend on the thread count): chunks sorted concurrently, then merged pairwise.
#pragma once

#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <vector>

namespace adalog::search {

inline void ParallelSortDistinct(std::vector<uint64_t>* keys) {
  const int64_t n = static_cast<int64_t>(keys->size());
  int parts = omp_get_max_threads();
  if (parts < 2 || n < (int64_t{1} << 16)) {
    std::sort(keys->begin(), keys->end());
    return;
  }
  std::vector<int64_t> b(static_cast<size_t>(parts) + 1);
  for (int p = 0; p <= parts; ++p) b[static_cast<size_t>(p)] = n * p / parts;
  uint64_t* d = keys->data();
#pragma omp parallel for schedule(static, 1)
  for (int p = 0; p < parts; ++p) std::sort(d + b[static_cast<size_t>(p)], d + b[static_cast<size_t>(p) + 1]);
  std::vector<uint64_t> tmp(keys->size());
  uint64_t* src = d;
  uint64_t* dst = tmp.data();
  for (int width = 1; width < parts; width *= 2) {
    const int pairs = (parts + 2 * width - 1) / (2 * width);
#pragma omp parallel for schedule(static, 1)
    for (int q = 0; q < pairs; ++q) {
      const int lo = q * 2 * width, mid = std::min(parts, lo + width), hi = std::min(parts, lo + 2 * width);
      std::merge(src + b[static_cast<size_t>(lo)], src + b[static_cast<size_t>(mid)],
                 src + b[static_cast<size_t>(mid)], src + b[static_cast<size_t>(hi)],
                 dst + b[static_cast<size_t>(lo)]);
    }
    std::swap(src, dst);
  }
  if (src != d) std::copy(src, src + n, d);
}

}  // namespace adalog::search
