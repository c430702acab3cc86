// A hand-made QuantizedModel plan from FP32 min/max ranges that puts every quantizer kind the
// simulated executor knows at the placements it can take (tests of the judge and of the model
// file), built with PlanBuilder. Header-only: it runs the FP32 executor, so only runtime/ test
// binaries may include it.
#pragma once

#include <vector>

#include "tests/util/plan_builder.h"

namespace adalog {
namespace testing_util {

// The (softmax probs, post-GELU) quantizer pair of block b is choice (b % kHandPlanChoices):
//   0: AdaLog (q 23)    / Shift-AdaLog (q 29), shift folded into fc2's bias
//   1: log2             / Shift-log2, shift not folded
//   2: log-sqrt2        / twin uniform
//   3: uniform          / uniform
//   4: AdaLog (q 31)    / Shift-AdaLog (q 19), shift not folded
//   5: none (FP32)      / Shift-log-sqrt2, shift folded into fc2's bias
// so a model of depth >= 6 holds every kind; depth 4 gives the first four only. Every other
// placement (qkv/proj/fc1/head inputs, per-head q/k/v, every weight) is uniform min/max.
inline constexpr int kHandPlanChoices = 6;

inline QuantizedModel MakeHandPlan(const VitModel& m, const std::vector<float>& images, int batch,
                                   int wb, int ab) {
  return PlanBuilder(m, images, batch)
      .Bits(wb, ab)
      .Blocks([](BlockQuantizers& q) {
        switch (q.block() % kHandPlanChoices) {
          case 0:
            q.ProbsLog(LogKind::kAdaLog, 23).GeluShiftLog(LogKind::kAdaLog, 29, true);
            break;
          case 1:
            q.ProbsLog(LogKind::kLog2, kAdaLogR).GeluShiftLog(LogKind::kLog2, kAdaLogR, false);
            break;
          case 2:
            q.ProbsLog(LogKind::kLogSqrt2, kAdaLogR).GeluTwin();
            break;
          case 3:
            q.ProbsUniform().GeluUniform();
            break;
          case 4:
            q.ProbsLog(LogKind::kAdaLog, 31).GeluShiftLog(LogKind::kAdaLog, 19, false);
            break;
          default:
            q.ProbsNone().GeluShiftLog(LogKind::kLogSqrt2, kAdaLogR, true);
            break;
        }
      })
      .Build();
}

}  // namespace testing_util
}  // namespace adalog
