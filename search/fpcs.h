// FPCS (Fast Progressive Combining Search, method §4.5): the coarse-to-fine beam search over
// uniform (scale, zero point) candidates and the joint AdaLog (scale, q) search, plus the
// non-FPCS single-grid fallback (method §4.7). Generic over an objective callback that scores a
// whole batch of candidates (per group: row, channel or head).
//
// Determinism: every top-k is a stable sort on (error, candidate index), so equal errors keep
// the lowest index, and NaN errors rank last (torch.topk would rank NaN first, method §8.10). The
// result depends only on the errors, never on threads.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "search/grids.h"

namespace adalog::search {

// Fills err (resized by the callee to groups * count, [group][count]) with the error of every
// candidate; lower is better. Must be deterministic.
using UniformObjective = std::function<void(const UniformCandidates&, std::vector<double>* err)>;

// kOfficial: the official beam search bit for bit, quirks included (method §8.5-8.7): a survivor's
//   own scale is not among its children, so the final top-1 can be worse than a candidate seen
//   earlier, and every call starts from the percentile grid alone.
// kBest: the same candidates, plus three changes that can only lower the returned objective:
//   (1) the result is the best candidate evaluated in ANY stage (per group; ties -> the one seen
//       first); (2) the survivors of a stage compete again, with their known errors, in the next
//       stage's top-W (the beam is elitist; this is "offset 0" without evaluating it twice);
//   (3) an optional incumbent (the quantizer's current value, e.g. the previous round's result)
//       is evaluated once beside the grid and competes for the result (not for the beam), so an
//       alternating round never makes a quantizer's own objective worse than keeping its current
//       value. Not bit-compatible with the official code.
enum class FpcsMode { kOfficial, kBest };

// "official" / "best"; throws adalog::Error for anything else.
FpcsMode ParseFpcsMode(const std::string& name);
const char* FpcsModeName(FpcsMode m);

struct FpcsConfig {
  bool fpcs = true;       // false: top-1 over the initial grid only (method §4.7)
  FpcsMode mode = FpcsMode::kOfficial;  // the primitive's default; RecipeOptions defaults to kBest
  int width = 16;         // survivors per group
  int steps = 6;          // 1 coarse stage + (steps - 1) refinements
  float scale_floor = 0;  // activations: 1e-4 (method §4.5); others 0 (positivity guard only)
};

struct UniformChoice {
  std::vector<float> scales;         // [groups]
  std::vector<int32_t> zero_points;  // [groups]
};

// Positivity guard (method §8.10): refinement offsets can make s <= 0 when delta is large; such a
// candidate (and a non-finite one) is replaced by the smallest positive normal float, which
// saturates every value and so is never preferred over a real scale. The official code would
// divide by 0 and let NaN win its top-k.
float GuardScale(float s, float floor);

// Ascending stable top-k of err[0..n): k indices, lowest error first, ties -> lowest index,
// NaN last.
std::vector<int> StableTopK(const double* err, int n, int k);

// Uniform FPCS from `grid` (its spacing delta per group). Offsets are
// (linspace(0, 1, E) - 0.5) * delta with E = count / width (0 excluded), then delta /= E - 0.5;
// survivors keep their zero point; child index = survivor_rank * E + j.
// `incumbent` (one candidate per group) is used only by FpcsMode::kBest with cfg.fpcs (the
// non-FPCS fallback and the official mode ignore it); nullptr: none.
UniformChoice SearchUniform(const UniformGrid& grid, const UniformObjective& objective,
                            const FpcsConfig& cfg, const UniformChoice* incumbent = nullptr);

// Log-quantizer candidates (per tensor): candidate i is (scales[i], qs[i]).
struct LogCandidates {
  std::vector<float> scales;
  std::vector<int> qs;
};
using LogObjective = std::function<void(const LogCandidates&, std::vector<double>* err)>;

struct LogChoice {
  float scale = 1.0f;
  int q = 37;
};

// The AdaLog q range of the method: 10 .. 137 (128 values; method §8.4).
std::vector<int> AdaLogQRange();

// Joint AdaLog FPCS (method §4.5): q-stage (all q at current_scale, keep 8) -> 8 x 16 combine over
// linspace(ud0, ud1, 16) (index q_rank * 16 + scale_idx, delta = (ud1 - ud0) / 15, keep 32) ->
// 5 levels of 4 children s + {-1/2, -1/6, 1/6, 1/2} * delta, delta /= 3.5, keep 32 (1 at the
// end). Without FPCS (method §4.7): q top-1 at current_scale, then scale top-1 over
// linspace(ud0, ud1, 128) at that q. No scale floor, positivity guard only.
// FpcsMode::kBest (with fpcs): the result is the best (scale, q) evaluated in any stage,
// including the q stage, which evaluates the incumbent (current_scale, current q) whenever the
// current q is in 10..137; the refinement beams are elitist (the q-stage survivors join the
// first one). The non-FPCS fallback ignores the mode.
LogChoice SearchAdaLogJoint(float ud0, float ud1, float current_scale,
                            const LogObjective& objective, bool fpcs,
                            FpcsMode mode = FpcsMode::kOfficial);

// Exhaustive top-1 over q in AdaLogQRange() at a fixed scale (softmax matmul, method §4.6-E).
int SearchAdaLogQ(float scale, const LogObjective& objective);

}  // namespace adalog::search
