// Fake quantization of whole tensors with candidate parameters, as callbacks the objectives
// (act_out.h, matmul_out.h) and the recipes apply to many candidates, and the exact code
// thresholds of a uniform quantizer.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "quant/params.h"

namespace adalog::search {

// Fake-quantizes n floats (x -> out); must be thread-safe (called concurrently).
using FakeQuantFn = std::function<void(const float* x, int64_t n, float* out)>;

// Thresholds of a uniform quantizer's code: for every non-NaN float x,
// Encode(x) = #{j : x >= thr[j]} (2^bits - 1 ascending thresholds; exact, by bisection over the
// float bit patterns with the quantizer's own Encode).
std::vector<float> UniformCodeThresholds(const UniformParams& p);

FakeQuantFn UniformFq(const UniformParams& p);
FakeQuantFn LogFq(const LogParams& p, float shift);  // Q(x + shift) - shift
FakeQuantFn TwinFq(const TwinUniformParams& p);

}  // namespace adalog::search
