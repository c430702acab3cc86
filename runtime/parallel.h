// The runtime's range splitters: ParallelRows on OpenMP (FP32 and simulated executors, which run
// oneDNN's OpenMP GEMMs between their loops), ParallelForScratch on OpenMP (the search's candidate
// sweeps), the others on the runtime's thread pool (thread_pool.h; the integer executor and the
// FP32 executor's row-chunked GEMMs). Every one hands each item to exactly one call, run with the
// same code whichever thread runs it, and the split into items depends only on the arguments, so
// a caller whose per-item work is independent of the split gets the same bytes for any thread
// count.
#pragma once

#include <omp.h>

#include <algorithm>
#include <cstdint>

#include "runtime/thread_pool.h"

namespace adalog::exec {

// OpenMP, for the executors whose GEMMs run on oneDNN (FP32 and simulated): Debian's libdnnl
// parallelizes with OpenMP, so their own loops use the same OpenMP team rather than keeping a
// second set of threads awake beside it. Calls f(begin, end) on contiguous, disjoint row ranges,
// one per thread of a team of `threads`.
template <typename F>
void ParallelRows(int64_t rows, int threads, const F& f) {
  if (threads <= 1 || rows < 2) {
    f(int64_t{0}, rows);
    return;
  }
#pragma omp parallel num_threads(threads)
  {
    const int64_t t = omp_get_thread_num(), n = omp_get_num_threads();
    const int64_t begin = rows * t / n, end = rows * (t + 1) / n;
    if (begin < end) f(begin, end);
  }
}

// The rest run on the pool (thread_pool.h): the integer executor, whose regions have no OpenMP
// work between them (its one oneDNN GEMM runs on one OpenMP thread per pool thread).

// Splits [0, n) into exactly `chunks` contiguous pieces (piece c = [n c / chunks, n (c+1) / chunks),
// at most ceil(n / chunks) items) and calls f(thread, begin, end) for each non-empty piece, on up
// to `chunks` threads; `thread` < chunks indexes per-thread scratch.
template <typename F>
void ParallelChunks(int64_t n, int chunks, const F& f) {
  if (chunks <= 1 || n < 2) {
    if (n > 0) f(0, int64_t{0}, n);
    return;
  }
  PoolFor(chunks, static_cast<int>(std::min<int64_t>(chunks, n)), [&](int t, int64_t c) {
    const int64_t b = n * c / chunks, e = n * (c + 1) / chunks;
    if (b < e) f(t, b, e);
  });
}

// Calls f(thread, i) for every i in [0, count) on up to `threads` threads, each thread claiming
// the next unclaimed index (dynamic balancing: a thread slowed by other work on its core takes
// fewer items); `thread` < threads indexes per-thread scratch.
template <typename F>
void ParallelDynamic(int64_t count, int threads, const F& f) {
  if (threads <= 1 || count < 2) {
    for (int64_t i = 0; i < count; ++i) f(0, i);
    return;
  }
  PoolFor(count, threads, [&](int t, int64_t i) { f(t, i); });
}

// Rows [0, rows) in chunks of `chunk` rows (the last one shorter), claimed dynamically:
// f(thread, r0, r1). Small chunks keep a chunk's intermediates in L2 and let a slowed thread
// take fewer chunks.
template <typename F>
void ParallelRowChunks(int64_t rows, int64_t chunk, int threads, const F& f) {
  ParallelDynamic((rows + chunk - 1) / chunk, threads,
                  [&](int t, int64_t c) { f(t, c * chunk, std::min(rows, (c + 1) * chunk)); });
}

// The search's sweep over candidates: body(scratch, i) for every i in [0, count), items claimed
// one at a time (schedule(dynamic, 1)) by the threads of the default OpenMP team, or all on the
// calling thread when !parallel (work below a size threshold). make_scratch() runs once per
// thread; its result is that thread's scratch, so per-item results must not depend on what an
// earlier item left in it.
template <typename MakeScratch, typename Body>
void ParallelForScratch(int64_t count, bool parallel, const MakeScratch& make_scratch,
                        const Body& body) {
#pragma omp parallel if (parallel)
  {
    auto scratch = make_scratch();
#pragma omp for schedule(dynamic, 1)
    for (int64_t i = 0; i < count; ++i) body(scratch, i);
  }
}

}  // namespace adalog::exec
