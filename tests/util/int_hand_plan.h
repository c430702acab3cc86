// The integer executor tests' hand-made plans (PlanBuilder, one PlanKind per block mix),
// the logits agreement metrics and executor options, shared by executor_int_test.cc and
// executor_int_threads_test.cc. Header-only: runs the FP32 executor, runtime/ test binaries only.
#pragma once

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "runtime/executor_fp32.h"
#include "runtime/quant_plan.h"
#include "tests/util/plan_builder.h"

namespace adalog::int_test {

// Post-softmax / post-GELU quantizer combinations the integer path runs.
enum class PlanKind {
  kAdaLog,   // softmax AdaLog (scale 1), GELU shift-AdaLog with the shift folded into fc2's bias
  kLog2,     // softmax Log2, GELU shift-Log2, shift NOT folded (the executor folds it)
  kUniform,  // uniform softmax and GELU (the int8 GEMM path)
  kMixed,    // block b: kAdaLog, kLog2, kUniform by b % 3
};

// A hand-made plan from FP32 min/max ranges over `images` (calibration stand-in). AdaLog's q of
// the probabilities and of GELU are drawn per block (in that order) from mt19937(seed).
inline QuantizedModel MakePlan(const VitModel& m, const std::vector<float>& images, int batch,
                               int wb, int ab, PlanKind kind, uint32_t seed = 7) {
  std::mt19937 rng(seed);
  return testing_util::PlanBuilder(m, images, batch)
      .Bits(wb, ab)
      .Blocks([&](testing_util::BlockQuantizers& q) {
        const int b = q.block();
        PlanKind k = kind;
        if (kind == PlanKind::kMixed) {
          k = b % 3 == 0 ? PlanKind::kAdaLog : (b % 3 == 1 ? PlanKind::kLog2 : PlanKind::kUniform);
        }
        // AdaLog q: at 8 bits q >= 8; pick from a range that keeps the zero code reachable below.
        const int q_probs = std::uniform_int_distribution<int>(ab == 8 ? 8 : 12, 40)(rng);
        const int q_gelu = std::uniform_int_distribution<int>(ab == 8 ? 8 : 12, 40)(rng);
        switch (k) {
          case PlanKind::kAdaLog:
          case PlanKind::kMixed:
            q.ProbsLog(LogKind::kAdaLog, q_probs).GeluShiftLog(LogKind::kAdaLog, q_gelu, true);
            break;
          case PlanKind::kLog2:
            q.ProbsLog(LogKind::kLog2, kAdaLogR).GeluShiftLog(LogKind::kLog2, kAdaLogR, false);
            break;
          case PlanKind::kUniform:
            q.ProbsUniform().GeluUniform();
            break;
        }
      })
      .Build();
}

struct Agreement {
  double top1_same = 0, mean_cos = 0, min_cos = 1, max_rel = 0;  // max_rel: max |d| / max |sim|
};

inline Agreement Compare(const std::vector<float>& a, const std::vector<float>& b, int rows,
                         int classes) {
  Agreement g;
  int same = 0;
  for (int r = 0; r < rows; ++r) {
    const float* x = a.data() + size_t(r) * classes;
    const float* y = b.data() + size_t(r) * classes;
    same += std::max_element(x, x + classes) - x == std::max_element(y, y + classes) - y;
    double xy = 0, xx = 0, yy = 0, amax = 0, dmax = 0;
    for (int c = 0; c < classes; ++c) {
      xy += double(x[c]) * y[c];
      xx += double(x[c]) * x[c];
      yy += double(y[c]) * y[c];
      amax = std::max(amax, std::fabs(double(y[c])));
      dmax = std::max(dmax, std::fabs(double(x[c]) - y[c]));
    }
    const double cos = xy / std::sqrt(std::max(xx * yy, 1e-300));
    g.mean_cos += cos / rows;
    g.min_cos = std::min(g.min_cos, cos);
    g.max_rel = std::max(g.max_rel, dmax / std::max(amax, 1e-30));
  }
  g.top1_same = double(same) / rows;
  return g;
}

inline ExecutorOptions Opts(int batch, int threads) {
  ExecutorOptions eo;
  eo.max_batch = batch;
  eo.num_threads = threads;
  return eo;
}

}  // namespace adalog::int_test
