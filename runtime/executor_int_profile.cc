// The integer executor's profile printer (executor_int_profile.h).
#include "runtime/executor_int_profile.h"

#include <cstdio>

namespace adalog::intexec {

void OpProfile::Print(int threads, int max_batch) const {
  if (runs == 0) return;
  const double r = static_cast<double>(runs);
  std::fprintf(stderr, "adalog profile: %lld runs, %d threads (max batch %d), ms per run (%s)\n",
               static_cast<long long>(runs), threads, max_batch,
               cpu_time ? "ops: thread CPU time" : "ops: wall time per thread");
  std::fprintf(stderr, "  %-22s", "op");
  for (int t = 0; t < threads; ++t) std::fprintf(stderr, "   thread%-2d", t);
  std::fprintf(stderr, "\n");
  for (int op = 0; op < kNumOps; ++op) {
    std::fprintf(stderr, "  %-22s", OpName(op));
    for (int t = 0; t < threads; ++t) {
      std::fprintf(stderr, " %10.3f", static_cast<double>(th[static_cast<size_t>(t)].ns[op]) / r * 1e-6);
    }
    std::fprintf(stderr, "\n");
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
