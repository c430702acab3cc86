// Floats in increasing numeric order <-> uint32 keys in increasing order (-0 just below +0, NaNs
// outside [-inf, +inf]). Used to bisect over every float between two values, e.g. to find a
// monotone quantizer's exact decision thresholds with its own Encode.
#pragma once

#include <cstdint>
#include <cstring>

namespace adalog {

inline uint32_t OrderedFloatKey(float v) {
  uint32_t b;
  std::memcpy(&b, &v, sizeof b);
  return (b & 0x80000000u) ? ~b : (b | 0x80000000u);
}

inline float FloatFromOrderedKey(uint32_t k) {
  const uint32_t b = (k & 0x80000000u) ? (k & 0x7fffffffu) : ~k;
  float v;
  std::memcpy(&v, &b, sizeof v);
  return v;
}

}  // namespace adalog
