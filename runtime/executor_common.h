// Prepare-time helpers shared by the executors: 64-byte aligned workspace allocation and a scoped
// OpenMP team size (which oneDNN's OpenMP runtime follows).
#pragma once

#include <omp.h>

#include <algorithm>
#include <cstddef>
#include <cstdlib>

#include "quant/error.h"

namespace adalog::exec {

struct FreeDeleter {
  void operator()(void* p) const { std::free(p); }
};

// At least 64 bytes, rounded up to whole 64-byte lines; throws adalog::Error naming `who` when
// the allocation fails.
inline void* AlignedAlloc(size_t bytes, const char* who) {
  bytes = std::max<size_t>(64, (bytes + 63) & ~size_t{63});
  void* p = std::aligned_alloc(64, bytes);
  ADALOG_CHECK(p != nullptr, who, ": out of memory allocating ", bytes, " bytes");
  return p;
}

// Sets the calling thread's OpenMP team size for a scope.
class ScopedOmpThreads {
 public:
  explicit ScopedOmpThreads(int n) : prev_(omp_get_max_threads()) { omp_set_num_threads(n); }
  ~ScopedOmpThreads() { omp_set_num_threads(prev_); }
  ScopedOmpThreads(const ScopedOmpThreads&) = delete;
  ScopedOmpThreads& operator=(const ScopedOmpThreads&) = delete;

 private:
  int prev_;
};

}  // namespace adalog::exec
