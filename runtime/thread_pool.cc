// The runtime's fork-join thread pool: per-calling-thread teams, one job at a time per team,
// spin-yield-sleep waiting (contract in thread_pool.h).
#include "runtime/thread_pool.h"

#include <omp.h>
#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <climits>
#include <exception>
#include <memory>
#include <mutex>
#include <new>
#include <thread>
#include <vector>

#ifdef __linux__
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace adalog::exec {
namespace {

// Waiting budgets (set by the reasoning below, not tuned; bench/RESULTS.md, "Busy machine", has
// the runs that checked them on a loaded machine). Between two parallel regions of one integer
// forward the caller does only bookkeeping (row stage -> attention -> row stage; the head and a
// batch-1 patch embedding are the serial exceptions), so a worker that spins 50 us catches the
// next region without a kernel wake-up when its core is free; a caller waiting for a straggler
// spins as long. Past that, sched_yield hands the core to another runnable thread on it (a
// descheduled team member or a competing process) until 200 us, then the thread sleeps on a
// futex: a sleeping thread frees its core, which lets the kernel move a preempted team member
// there. (libgomp, by its manual, spins GOMP_SPINCOUNT = 300000 iterations before sleeping, and
// its regions end only when every team member, started or not, has reached the barrier.)
constexpr int64_t kSpinNs = 50'000;
constexpr int64_t kYieldNs = 200'000;

inline void CpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
  _mm_pause();
#endif
}

inline int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// Sleeps while *word == expected (spurious returns allowed); wakes up to n sleepers.
#ifdef __linux__
void FutexWait(std::atomic<uint32_t>* word, uint32_t expected) {
  static_assert(sizeof(std::atomic<uint32_t>) == sizeof(uint32_t), "futex word");
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), FUTEX_WAIT_PRIVATE, expected, nullptr,
          nullptr, 0);
}
void FutexWake(std::atomic<uint32_t>* word, int n) {
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), FUTEX_WAKE_PRIVATE, n, nullptr, nullptr,
          0);
}
#else
// No futex: a short sleep and a re-check (correct, only slower to wake).
void FutexWait(std::atomic<uint32_t>* word, uint32_t expected) {
  if (word->load(std::memory_order_acquire) == expected) {
    std::this_thread::sleep_for(std::chrono::microseconds(50));
  }
}
void FutexWake(std::atomic<uint32_t>*, int) {}
#endif

// Spins, then yields, until done() or the yield budget is spent. Returns done().
template <typename Done>
bool SpinThenYield(const Done& done) {
  const int64_t t0 = NowNs();
  for (int i = 1;; ++i) {
    if (done()) return true;
    if ((i & 31) == 0) {
      const int64_t dt = NowNs() - t0;
      if (dt > kYieldNs) return done();
      if (dt > kSpinNs) {
        sched_yield();
        continue;
      }
    }
    CpuRelax();
  }
}

thread_local bool tl_in_body = false;  // inside a PoolRun body (caller or worker): nested -> inline

// The job state word: generation (the epoch the job was published under) in the high 32 bits,
// a closed flag, the number of workers inside the job in the low 31 bits. A worker enters by a
// compare-and-swap that requires the generation it was woken for and no closed flag, so a late
// worker can never enter a job that has ended or a later one it was not woken for.
constexpr uint64_t kClosed = uint64_t{1} << 31;
constexpr uint64_t kActiveMask = kClosed - 1;
inline uint64_t Pack(uint32_t gen) { return uint64_t{gen} << 32; }
inline uint32_t Gen(uint64_t s) { return static_cast<uint32_t>(s >> 32); }

class Team {
 public:
  Team() = default;
  Team(const Team&) = delete;
  Team& operator=(const Team&) = delete;
  ~Team() {
    stop_.store(true, std::memory_order_seq_cst);
    epoch_.fetch_add(1, std::memory_order_seq_cst);
    FutexWake(&epoch_, INT_MAX);
    for (std::thread& w : workers_) w.join();
  }
  // After fork() in the child: the workers are gone, so the std::thread objects must never be
  // joined or destroyed (destroying a joinable std::thread terminates).
  void AbandonAfterFork() {
    for (std::thread& w : workers_) new (&w) std::thread();  // forget the handles in place
    workers_.clear();
  }

  int workers() const { return static_cast<int>(workers_.size()); }

  void Run(int64_t count, int team, void* ctx, void (*body)(void*, int, int64_t)) {
    while (workers() < team - 1) {
      const int slot = workers() + 1;
      const uint32_t seen = epoch_.load(std::memory_order_seq_cst);
      workers_.emplace_back([this, slot, seen] { WorkerLoop(slot, seen); });
    }
    ctx_ = ctx;
    body_ = body;
    count_ = count;
    team_ = team;
    next_.store(0, std::memory_order_relaxed);
    failed_.store(false, std::memory_order_relaxed);
    error_ = nullptr;
    const uint32_t gen = epoch_.load(std::memory_order_relaxed) + 1;
    state_.store(Pack(gen), std::memory_order_release);
    epoch_.store(gen, std::memory_order_seq_cst);
    if (sleepers_.load(std::memory_order_seq_cst) > 0) FutexWake(&epoch_, INT_MAX);

    Work(0);
    uint64_t s = state_.fetch_or(kClosed, std::memory_order_acq_rel);
    if ((s & kActiveMask) != 0) WaitForWorkers();
    if (error_) std::rethrow_exception(error_);
  }

 private:
  // Claims items until none are left (or a body threw). Called by the caller and entered workers.
  void Work(int slot) {
    tl_in_body = true;
    for (int64_t i = next_.fetch_add(1, std::memory_order_relaxed); i < count_;
         i = next_.fetch_add(1, std::memory_order_relaxed)) {
      if (failed_.load(std::memory_order_relaxed)) break;
      try {
        body_(ctx_, slot, i);
      } catch (...) {
        std::lock_guard<std::mutex> lock(error_mu_);
        if (!error_) error_ = std::current_exception();
        failed_.store(true, std::memory_order_relaxed);
      }
    }
    tl_in_body = false;
  }

  void WaitForWorkers() {
    auto idle = [this] { return (state_.load(std::memory_order_acquire) & kActiveMask) == 0; };
    if (SpinThenYield(idle)) return;
    for (;;) {
      const uint32_t d = done_seq_.load(std::memory_order_seq_cst);
      if (idle()) return;
      FutexWait(&done_seq_, d);
    }
  }

  void WorkerLoop(int slot, uint32_t seen) {
    for (;;) {
      auto changed = [this, seen] { return epoch_.load(std::memory_order_acquire) != seen; };
      if (!SpinThenYield(changed)) {
        sleepers_.fetch_add(1, std::memory_order_seq_cst);
        while (epoch_.load(std::memory_order_seq_cst) == seen) FutexWait(&epoch_, seen);
        sleepers_.fetch_sub(1, std::memory_order_seq_cst);
      }
      if (stop_.load(std::memory_order_seq_cst)) return;
      seen = epoch_.load(std::memory_order_acquire);
      uint64_t s = state_.load(std::memory_order_acquire);
      bool entered = false;
      while (Gen(s) == seen && !(s & kClosed)) {
        if (state_.compare_exchange_weak(s, s + 1, std::memory_order_acq_rel,
                                         std::memory_order_acquire)) {
          entered = true;
          break;
        }
      }
      if (!entered) continue;  // that job has ended (or a later one is being published)
      if (slot < team_) Work(slot);
      s = state_.fetch_sub(1, std::memory_order_acq_rel);
      if ((s & kClosed) && (s & kActiveMask) == 1) {  // the caller may be asleep waiting for us
        done_seq_.fetch_add(1, std::memory_order_seq_cst);
        FutexWake(&done_seq_, 1);
      }
    }
  }

  std::vector<std::thread> workers_;
  // The current job (written by the caller before it publishes the generation).
  void* ctx_ = nullptr;
  void (*body_)(void*, int, int64_t) = nullptr;
  int64_t count_ = 0;
  int team_ = 0;
  alignas(64) std::atomic<int64_t> next_{0};
  std::atomic<bool> failed_{false};
  std::mutex error_mu_;
  std::exception_ptr error_;
  alignas(64) std::atomic<uint64_t> state_{0};
  alignas(64) std::atomic<uint32_t> epoch_{0};  // futex word: workers sleep on it
  std::atomic<uint32_t> sleepers_{0};
  std::atomic<bool> stop_{false};
  alignas(64) std::atomic<uint32_t> done_seq_{0};  // futex word: the caller sleeps on it
};

thread_local std::unique_ptr<Team> tl_team;

void AfterForkInChild() {
  // Only the forking thread exists in the child; its team's workers did not come along.
  if (tl_team) {
    tl_team->AbandonAfterFork();
    // Deliberately leaked: its mutex and threads belong to the parent.
    static_cast<void>(tl_team.release());
  }
}

Team& ThisThreadTeam() {
  static std::once_flag fork_handler;
  std::call_once(fork_handler, [] { pthread_atfork(nullptr, nullptr, AfterForkInChild); });
  if (!tl_team) tl_team = std::make_unique<Team>();
  return *tl_team;
}

}  // namespace

void PoolRun(int64_t count, int threads, void* ctx, void (*body)(void*, int, int64_t)) {
  if (count <= 0) return;
  const int team = static_cast<int>(std::min<int64_t>(threads, count));
  if (team <= 1 || tl_in_body || omp_in_parallel()) {
    const bool outer = tl_in_body;
    tl_in_body = true;
    try {
      for (int64_t i = 0; i < count; ++i) body(ctx, 0, i);
    } catch (...) {
      tl_in_body = outer;
      throw;
    }
    tl_in_body = outer;
    return;
  }
  ThisThreadTeam().Run(count, team, ctx, body);
}

int PoolWorkersOfThisThread() { return tl_team ? tl_team->workers() : 0; }

const char* PoolDescription() {
  return "adalog thread pool (per calling thread; spin 50 us, yield to 200 us, then futex sleep)";
}

}  // namespace adalog::exec
