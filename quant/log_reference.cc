// The reference log code (quant/log_reference.h).
#include "quant/log_reference.h"

#include <cmath>
#include <cstring>

#include "quant/codes.h"
#include "quant/rounding.h"

namespace adalog {
namespace {

bool IsPowerOfTwo(float u) {
  uint32_t b;
  std::memcpy(&b, &u, sizeof b);
  return (b & 0x007fffffu) == 0 && (b & 0x7f800000u) != 0;
}

}  // namespace

int32_t LogRawCodeReference(float u, int num, int den) {
  const double t = (-std::log2(static_cast<double>(u)) * num) / den;
  const double dist = std::fabs(std::fabs(t - std::floor(t)) - 0.5);
  if (dist < 1e-11 && !IsPowerOfTwo(u)) {
    const long double tl = (-std::log2(static_cast<long double>(u)) * num) / den;
    return static_cast<int32_t>(std::nearbyint(tl));
  }
  return static_cast<int32_t>(RoundHalfEven(t));
}

int32_t LogEncodeReference(const LogParams& p, float x) {
  const float u = LogClampUnit(x / p.scale);
  const int32_t raw = LogRawCodeReference(u, p.RatioNum(), p.RatioDen());
  return raw >= LogZeroCode(p.bits) ? LogZeroCode(p.bits) : raw;
}

int32_t LogRawCodeFloat32(float u, int num, int den) {
  const float t = (-std::log2(u) * static_cast<float>(num)) / static_cast<float>(den);
  return static_cast<int32_t>(RoundHalfEven(t));
}

}  // namespace adalog
