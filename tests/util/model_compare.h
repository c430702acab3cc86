// Field-by-field, bit-for-bit comparison of VitModel and QuantPlan (every field of the structs in
// runtime/vit_model.h, runtime/quant_plan.h and quant/params.h, listed in one table), for round
// trips such as the model file: a field that is neither written nor read survives
// Serialize(Parse(x)) == x, but not this comparison against the in-memory original.
//
// Adding a field to one of those structs breaks the build here (a static_assert in model_compare.cc
// checks each struct's field count against its row of the comparator's table) until that row
// lists it.
// Floats compare by their bits (so -0 != +0 and a NaN equals only the same NaN).
#pragma once

#include <cstring>
#include <string>
#include <vector>

#include "runtime/quant_plan.h"
#include "runtime/vit_model.h"

namespace adalog::test {

// Two float vectors of the same size and the same bits (so -0 != +0, and a NaN equals only the
// same NaN).
inline bool SameBits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() &&
         (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0);
}

// The paths of the fields that differ ("blocks[1].fc2.bias[7]: 0.25 vs 0.5", ...), in struct
// order; at most the first differing element of each array is named. Empty when equal.
std::vector<std::string> DiffVitModel(const VitModel& want, const VitModel& got);
std::vector<std::string> DiffQuantPlan(const QuantPlan& want, const QuantPlan& got);

// gtest wrappers: one failure listing the differing fields (first 20), `what` as context.
void ExpectSameVitModel(const VitModel& want, const VitModel& got, const std::string& what);
void ExpectSameQuantPlan(const QuantPlan& want, const QuantPlan& got, const std::string& what);

}  // namespace adalog::test
