// The runtime's own fork-join thread pool (what runtime/parallel.h's splitters run on): one small
// team of worker threads per calling thread, items claimed one at a time from a shared counter,
// waiting that spins briefly, then yields, then sleeps in the kernel, so that a machine whose
// cores are busy with other work slows the runtime down gracefully instead of stalling it.
#pragma once

#include <cstdint>

namespace adalog::exec {

// Calls body(ctx, slot, i) exactly once for every i in [0, count), on the calling thread and up to
// `threads` - 1 workers. Items are claimed in increasing order from one shared counter (dynamic
// balancing: a thread slowed by other work on its core takes fewer items). `slot` is 0 on the
// calling thread and k in [1, threads) on worker k, and no two concurrent body calls of one
// PoolRun share a slot, so it may index per-thread scratch of `threads` entries.
//
// Contract:
// - The calling thread always takes part; a worker that has not started when the items run out
//   does nothing, and PoolRun does not wait for it (it waits only for calls that are running).
// - Inline (every item on the calling thread, slot 0, in order): threads <= 1, count == 1, a
//   call from inside a body (nested), and a call from inside an OpenMP parallel region.
// - Concurrent callers never share workers: each calling thread owns its team, made on its
//   first parallel call, grown to the largest `threads` it asked for, joined when it exits.
//   After fork() the child's calling thread makes a fresh team (the parent's workers do not
//   exist there); a fork from inside a body is not supported.
// - Exceptions: when a body call throws, items not yet claimed are skipped, PoolRun waits for
//   the running calls, then rethrows the first exception on the calling thread.
// - Waiting (a worker for the next PoolRun, the caller for the last running item): spin
//   kSpinNs, then sched_yield until kYieldNs, then sleep on a futex (Linux) until woken.
void PoolRun(int64_t count, int threads, void* ctx, void (*body)(void*, int, int64_t));

// PoolRun over a callable f(int slot, int64_t item).
template <typename F>
void PoolFor(int64_t count, int threads, const F& f) {
  PoolRun(count, threads, const_cast<void*>(static_cast<const void*>(&f)),
          [](void* c, int slot, int64_t i) { (*static_cast<const F*>(c))(slot, i); });
}

// Worker threads the calling thread's team holds now (0 before its first parallel call).
int PoolWorkersOfThisThread();

// One line for ADALOG_VERBOSE / describe: which pool runs the runtime's parallel regions.
const char* PoolDescription();

}  // namespace adalog::exec
