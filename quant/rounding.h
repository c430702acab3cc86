// Rounding, defined once for the whole project: round half to even, as torch.round and
// Python's round() do (spec section 8.19). std::nearbyint under the default FE_TONEAREST mode.
#pragma once

#include <cmath>

namespace adalog {

// Round half to even. Never change the floating-point environment's rounding mode in adalog.
inline float RoundHalfEven(float x) { return std::nearbyint(x); }
inline double RoundHalfEven(double x) { return std::nearbyint(x); }

}  // namespace adalog
