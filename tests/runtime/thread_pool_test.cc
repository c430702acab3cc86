// The runtime thread pool's contract (runtime/thread_pool.h) and the splits of the pool-backed
// helpers in runtime/parallel.h: every index exactly once, slots in range, the caller takes part,
// the pieces of the helpers, nested and OpenMP-nested calls inline, concurrent callers, worker
// wake-up after sleeping, exceptions, fork, and no threads left behind by an exiting caller.
#include <gtest/gtest.h>
#include <omp.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <dirent.h>
#include <mutex>
#include <set>
#include <stdexcept>
#include <thread>
#include <utility>
#include <vector>

#include "runtime/parallel.h"
#include "runtime/thread_pool.h"

namespace adalog::exec {
namespace {

// Every index in [0, count) runs exactly once, on a slot below the team size; slot 0 is the
// calling thread and no other slot is.
TEST(ThreadPool, EveryIndexExactlyOnceOnSlotsBelowTheTeam) {
  const std::thread::id caller = std::this_thread::get_id();
  for (int threads : {1, 2, 3, 8}) {
    for (int64_t count : {0, 1, 2, 3, 7, 100, 5000}) {
      std::vector<std::atomic<int>> hits(static_cast<size_t>(count));
      for (auto& h : hits) h.store(0);
      std::atomic<int> bad_slot{0}, slot0_elsewhere{0}, other_on_caller{0};
      const int team = static_cast<int>(std::min<int64_t>(threads, std::max<int64_t>(count, 1)));
      PoolFor(count, threads, [&](int slot, int64_t i) {
        hits[static_cast<size_t>(i)].fetch_add(1);
        if (slot < 0 || slot >= team) bad_slot.fetch_add(1);
        const bool on_caller = std::this_thread::get_id() == caller;
        if (slot == 0 && !on_caller) slot0_elsewhere.fetch_add(1);
        if (slot != 0 && on_caller) other_on_caller.fetch_add(1);
      });
      for (int64_t i = 0; i < count; ++i) {
        ASSERT_EQ(hits[static_cast<size_t>(i)].load(), 1)
            << "index " << i << " of " << count << ", threads " << threads;
      }
      EXPECT_EQ(bad_slot.load(), 0);
      EXPECT_EQ(slot0_elsewhere.load(), 0);
      EXPECT_EQ(other_on_caller.load(), 0);
    }
  }
}

// The workers really run items: the caller blocks in item 0 until another slot has run one.
TEST(ThreadPool, WorkersTakeItemsWhileTheCallerIsBusy) {
  for (int round = 0; round < 3; ++round) {
    if (round > 0) std::this_thread::sleep_for(std::chrono::milliseconds(20));  // workers asleep
    std::atomic<int> worker_items{0};
    bool waited_out = false;
    PoolFor(64, 2, [&](int slot, int64_t i) {
      if (slot != 0) worker_items.fetch_add(1);
      if (i == 0 && slot == 0) {
        const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(20);
        while (worker_items.load() == 0 && std::chrono::steady_clock::now() < end) {
          std::this_thread::yield();
        }
        waited_out = worker_items.load() == 0;
      }
    });
    EXPECT_FALSE(waited_out) << "round " << round << ": no worker ran an item in 20 s";
    EXPECT_GT(worker_items.load(), 0) << "round " << round;
    EXPECT_GE(PoolWorkersOfThisThread(), 1);  // the main thread's team grows over the tests
  }
}

// ParallelChunks / ParallelDynamic / ParallelRowChunks hand out exactly the pieces of the
// OpenMP helpers they replaced: chunk c = [n c / chunks, n (c+1) / chunks) (empty ones skipped),
// every index once, row chunks of `chunk` rows with a short last one.
TEST(ThreadPool, HelpersKeepTheirSplit) {
  for (int threads : {1, 2, 3, 7}) {
    for (int64_t n : {1, 2, 5, 197, 1576}) {
      for (int chunks : {1, 2, 3, 7}) {
        std::mutex mu;
        std::set<std::pair<int64_t, int64_t>> got;
        std::atomic<int> bad{0};
        ParallelChunks(n, chunks, [&](int t, int64_t b, int64_t e) {
          if (t < 0 || t >= chunks) bad.fetch_add(1);
          std::lock_guard<std::mutex> lock(mu);
          EXPECT_TRUE(got.insert({b, e}).second);
        });
        std::set<std::pair<int64_t, int64_t>> want;
        if (chunks <= 1 || n < 2) {
          want.insert({0, n});
        } else {
          for (int64_t c = 0; c < chunks; ++c) {
            const int64_t b = n * c / chunks, e = n * (c + 1) / chunks;
            if (b < e) want.insert({b, e});
          }
        }
        EXPECT_EQ(got, want) << "n " << n << " chunks " << chunks;
        EXPECT_EQ(bad.load(), 0);
      }
      for (int64_t chunk : {1, 6, 48, 1 << 20}) {
        std::mutex mu;
        std::set<std::pair<int64_t, int64_t>> got;
        std::atomic<int> bad{0};
        ParallelRowChunks(n, chunk, threads, [&](int t, int64_t r0, int64_t r1) {
          if (t < 0 || t >= threads) bad.fetch_add(1);
          std::lock_guard<std::mutex> lock(mu);
          EXPECT_TRUE(got.insert({r0, r1}).second);
        });
        std::set<std::pair<int64_t, int64_t>> want;
        for (int64_t r = 0; r < n; r += chunk) want.insert({r, std::min(n, r + chunk)});
        EXPECT_EQ(got, want) << "n " << n << " chunk " << chunk << " threads " << threads;
        EXPECT_EQ(bad.load(), 0);
      }
    }
  }
}

// A call from inside a body runs inline: on the same thread, slot 0, items in order.
TEST(ThreadPool, NestedCallsRunInline) {
  std::atomic<int> wrong{0}, inner_items{0};
  PoolFor(8, 2, [&](int, int64_t) {
    const std::thread::id me = std::this_thread::get_id();
    std::vector<int64_t> order;
    PoolFor(5, 4, [&](int slot, int64_t j) {
      if (slot != 0 || std::this_thread::get_id() != me) wrong.fetch_add(1);
      order.push_back(j);
      inner_items.fetch_add(1);
    });
    if (order != std::vector<int64_t>{0, 1, 2, 3, 4}) wrong.fetch_add(1);
  });
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_EQ(inner_items.load(), 40);
}

// Inside an OpenMP parallel region the pool runs inline (as a nested OpenMP region did).
TEST(ThreadPool, CallsFromAnOpenMpRegionRunInline) {
  std::atomic<int> wrong{0}, items{0}, team_seen{0};
#pragma omp parallel num_threads(2)
  {
    if (omp_get_thread_num() == 0) team_seen.store(omp_get_num_threads());
    const std::thread::id me = std::this_thread::get_id();
    PoolFor(10, 2, [&](int slot, int64_t) {
      if (slot != 0 || std::this_thread::get_id() != me) wrong.fetch_add(1);
      items.fetch_add(1);
    });
  }
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_EQ(items.load(), 10 * team_seen.load());
}

// Several threads calling at once each get every index once (each owns its team).
TEST(ThreadPool, ConcurrentCallersEachGetEveryIndexOnce) {
  constexpr int kCallers = 4, kCalls = 200;
  std::atomic<int> failures{0}, workers_wrong{0};
  std::vector<std::thread> callers;
  for (int c = 0; c < kCallers; ++c) {
    callers.emplace_back([&, c] {
      const int threads = 2 + c % 2;
      for (int k = 0; k < kCalls; ++k) {
        const int64_t count = 1 + (k * 37 + c) % 300;
        std::vector<std::atomic<int>> hits(static_cast<size_t>(count));
        for (auto& h : hits) h.store(0);
        PoolFor(count, threads, [&](int, int64_t i) { hits[static_cast<size_t>(i)].fetch_add(1); });
        for (auto& h : hits) {
          if (h.load() != 1) failures.fetch_add(1);
        }
      }
      if (PoolWorkersOfThisThread() != threads - 1) workers_wrong.fetch_add(1);
    });
  }
  for (std::thread& t : callers) t.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(workers_wrong.load(), 0);
}

// A body that throws: the first exception reaches the caller, the pool stays usable.
TEST(ThreadPool, ExceptionsFromTheBodyReachTheCaller) {
  for (int threads : {1, 2, 4}) {
    EXPECT_THROW(PoolFor(100, threads,
                         [&](int, int64_t i) {
                           if (i == 7) throw std::runtime_error("item 7");
                         }),
                 std::runtime_error);
    // Every item throws: whichever thread claims first, the caller sees it.
    EXPECT_THROW(PoolFor(50, threads, [&](int, int64_t) { throw std::logic_error("all"); }),
                 std::logic_error);
    std::atomic<int64_t> sum{0};
    PoolFor(1000, threads, [&](int, int64_t i) { sum.fetch_add(i); });
    EXPECT_EQ(sum.load(), 999 * 1000 / 2);
  }
}

int ThreadsOfThisProcess() {
  int n = 0;
  if (DIR* d = opendir("/proc/self/task")) {
    while (dirent* e = readdir(d)) n += e->d_name[0] != '.';
    closedir(d);
  }
  return n;
}

// A calling thread that exits joins its workers: the process's thread count comes back.
TEST(ThreadPool, AnExitingCallerLeavesNoThreads) {
  const int before = ThreadsOfThisProcess();
  if (before == 0) GTEST_SKIP() << "no /proc/self/task";
  std::atomic<int> workers{0};
  std::thread caller([&] {
    std::atomic<int64_t> sum{0};
    PoolFor(100, 4, [&](int, int64_t i) { sum.fetch_add(i); });
    workers.store(PoolWorkersOfThisThread());
  });
  caller.join();
  EXPECT_EQ(workers.load(), 3);
  EXPECT_EQ(ThreadsOfThisProcess(), before);
}

// After fork() the child's calling thread gets a fresh team (its parent's workers do not exist
// there) and the parent's team keeps working.
TEST(ThreadPool, WorksInAForkedChildAndInTheParent) {
  std::atomic<int64_t> warm{0};
  PoolFor(100, 2, [&](int, int64_t i) { warm.fetch_add(i); });
  ASSERT_GE(PoolWorkersOfThisThread(), 1);
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    alarm(30);  // a hang in the child fails the test instead of blocking it
    const int fresh = PoolWorkersOfThisThread();
    std::atomic<int64_t> sum{0};
    std::atomic<int> worker_items{0};
    PoolFor(2000, 2, [&](int slot, int64_t i) {
      sum.fetch_add(i);
      if (slot != 0) worker_items.fetch_add(1);
    });
    const bool ok = fresh == 0 && sum.load() == int64_t{1999} * 2000 / 2 &&
                    PoolWorkersOfThisThread() == 1;
    _exit(ok ? 0 : 3);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status)) << "child killed by signal " << WTERMSIG(status);
  EXPECT_EQ(WEXITSTATUS(status), 0);
  std::atomic<int64_t> sum{0};
  PoolFor(100, 2, [&](int, int64_t i) { sum.fetch_add(i); });
  EXPECT_EQ(sum.load(), 99 * 100 / 2);
}

}  // namespace
}  // namespace adalog::exec
