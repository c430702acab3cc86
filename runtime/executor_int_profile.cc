// The integer executor's profile printer (executor_int_profile.h).
#include "runtime/executor_int_profile.h"

#include <cstdio>

namespace adalog::intexec {

void OpProfile::SetCpuTime(bool cpu) {
  cpu_time = cpu;
  constexpr int kReads = 2000;
  int64_t sink = 0;
  const int64_t t0 = OpNow();
  for (int i = 0; i < kReads; ++i) sink += OpNow();
  const int64_t t1 = OpNow();
  clock_ns = static_cast<double>(t1 - t0) / kReads + static_cast<double>(sink & 0);
}

void OpProfile::Print(int threads, int max_batch) const {
  if (runs == 0) return;
  const double r = static_cast<double>(runs);
  std::fprintf(stderr, "adalog profile: %lld runs, %d threads (max batch %d), ms per run (%s)\n",
               static_cast<long long>(runs), threads, max_batch,
               cpu_time ? "ops: thread CPU time" : "ops: wall time per thread");
  std::fprintf(stderr, "  one clock read: %.0f ns (each mark below includes one)\n", clock_ns);
  std::fprintf(stderr, "  %-22s", "op");
  for (int t = 0; t < threads; ++t) std::fprintf(stderr, "   thread%-2d", t);
  std::fprintf(stderr, "  marks/run\n");
  for (int op = 0; op < kNumOps; ++op) {
    std::fprintf(stderr, "  %-22s", OpName(op));
    int64_t marks = 0;
    for (int t = 0; t < threads; ++t) {
      std::fprintf(stderr, " %10.3f", static_cast<double>(th[static_cast<size_t>(t)].ns[op]) / r * 1e-6);
      marks += th[static_cast<size_t>(t)].marks[op];
    }
    std::fprintf(stderr, " %10.0f\n", static_cast<double>(marks) / r);
  }
  std::fprintf(stderr, "  regions (wall ms per run, calls per run):\n");
  double total = 0;
  for (int g = 0; g < kNumRegions; ++g) {
    total += static_cast<double>(region_ns[g]);
    std::fprintf(stderr, "  %-22s %10.3f %6.1f\n", RegionName(g),
                 static_cast<double>(region_ns[g]) / r * 1e-6,
                 static_cast<double>(region_calls[g]) / r);
  }
  std::fprintf(stderr, "  %-22s %10.3f\n", "total", total / r * 1e-6);
}
}  // namespace adalog::intexec
