// Rounding, defined once for the whole project: round half to even, as torch.round and
// Python's round() do (method §8.19). std::nearbyint under the default FE_TONEAREST mode.
#pragma once

#include <cmath>

namespace adalog {

// Round half to even. Never change the floating-point environment's rounding mode in adalog.
inline float RoundHalfEven(float x) { return std::nearbyint(x); }
inline double RoundHalfEven(double x) { return std::nearbyint(x); }

// Round half to even for |x| <= 2^22, without a libm call (generic x86-64 has no roundps, so
// std::nearbyint is a function call that blocks vectorization). Equal to RoundHalfEven(x) on
// that range: x + 1.5*2^23 lies in [2^23, 2^24) where the float spacing is exactly 1, so the
// addition itself rounds x half-to-even (1.5*2^23 is even), and the subtraction is exact.
// Requires FE_TONEAREST and no -ffast-math / reassociation (adalog never enables them).
// Outside |x| <= 2^22 the result is unspecified: callers clamp first (rounding commutes with a
// clamp to integer bounds, since round() is monotone and fixes integers).
inline float RoundHalfEvenSmall(float x) {
  constexpr float kMagic = 12582912.0f;  // 1.5 * 2^23
  return (x + kMagic) - kMagic;
}

}  // namespace adalog
