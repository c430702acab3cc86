// The integer executor's per-op profile (ADALOG_PROFILE=1): per-thread op times and per-region
// wall times, printed to stderr when the executor is destroyed.
#pragma once

#include <cstdint>
#include <ctime>
#include <vector>

namespace adalog::intexec {

// Per-op timing, on when ADALOG_PROFILE=1 (read at prepare): each thread adds the time since its
// previous mark to the op it just finished; the calling thread adds each parallel region's wall
// time. Printed to stderr when the executor is destroyed. Off: one predictable branch per op.
// ADALOG_PROFILE=cpu: the per-op times are each thread's own CPU time (CLOCK_THREAD_CPUTIME_ID),
// so time the thread spent preempted on a shared machine is not charged to the op it was in
// (regions stay wall time); a mark then costs a system call (about 0.3-1 us) instead of a vDSO
// read, small against an op of one 48-row chunk (tens of us).
struct OpProfile {
  enum Op {
    kIm2col, kEmbedGemm, kTokens, kLayerNorm, kEncodeIn, kQkvGemm, kQkvCodes, kQk, kSoftmax,
    kProbsEncode, kRepackV, kAttnV, kProjGemm, kAdd, kFc1Gemm, kGelu, kGeluEncode, kFc2, kTail,
    kNumOps
  };
  enum Region { kRegPatch, kRegEmbedGemm, kRegTokens, kRegAttn, kRegRows, kRegTail, kNumRegions };
  static const char* OpName(int op) {
    static const char* const names[] = {
        "im2col", "patch_embed gemm", "tokens+pos", "layernorm", "encode (uniform in)",
        "qkv gemm", "q/k/v codes", "q@k^T", "softmax", "probs encode", "V repack", "attn@V",
        "proj gemm", "residual add", "fc1 gemm", "gelu", "gelu encode", "fc2 (decode+gemm)",
        "tail (norm, head)"};
    return names[op];
  }
  static const char* RegionName(int r) {
    static const char* const names[] = {"im2col", "patch_embed", "tokens+block0 qkv",
                                        "attention", "rows proj..qkv", "tail"};
    return names[r];
  }
  struct alignas(64) PerThread {
    int64_t last = 0;
    int64_t ns[kNumOps] = {};
    int64_t marks[kNumOps] = {};  // marks charged to the op (each includes one clock read)
  };
  std::vector<PerThread> th;
  int64_t region_ns[kNumRegions] = {};
  int64_t region_calls[kNumRegions] = {};
  int64_t runs = 0;
  bool cpu_time = false;  // ADALOG_PROFILE=cpu: per-op times are thread CPU time
  double clock_ns = 0;    // measured cost of one op clock read (SetCpuTime), printed

  static int64_t Now() {
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
  }
  static int64_t ThreadCpuNow() {
    timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
  }
  int64_t OpNow() const { return cpu_time ? ThreadCpuNow() : Now(); }
  void Start(int t) { th[static_cast<size_t>(t)].last = OpNow(); }
  void Mark(int t, Op op) {
    PerThread& p = th[static_cast<size_t>(t)];
    const int64_t now = OpNow();
    p.ns[op] += now - p.last;
    p.marks[op] += 1;
    p.last = now;
  }
  // Selects the clock (cpu: thread CPU time) and measures one read's cost on that clock, so the
  // printout can say how much of each op's time is the profile's own reads (marks x clock_ns).
  void SetCpuTime(bool cpu);
  // Per-op ms per run per thread and per-region wall ms per run, to stderr (nothing if no run).
  void Print(int threads, int max_batch) const;

};

}  // namespace adalog::intexec
