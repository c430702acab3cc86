// The single definition of the log quantizers' code (method §2.3-2.5): the plain reference that
// every faster path (quant/log_encoder.h, kernels, search) must equal bit for bit.
//
//   u   = clamp(x / s, 1e-15f, 1.0f)                 float32, x / s a true IEEE division
//   raw = round_half_even(-log2(u) * num / den)      EXACT real arithmetic (see below)
//   c   = raw >= 2^b ? LogZeroCode(b) : raw           zero state decided before any clamp
//         (raw is never negative, so no lower clamp is needed)
// with (num, den) = (1, 1) for Log2, (2, 1) for LogSqrt2 and (37, q) for AdaLog.
//
// Evaluation: raw is the mathematically exact rounding of the real number -log2(u)*num/den for
// the float u. It is computed in double (error < 1e-13 on t <= 2000); when t lies within 1e-11 of
// a half-integer and u is not a power of two it is recomputed in 80-bit long double. For a power
// of two u = 2^-n the double computation n*num/den is exact whenever it is a half-integer (a tie:
// resolved half-to-even, e.g. q = 10, u = 2^-5, t = 18.5 -> 18), and at least 1/(2 den) away from
// one otherwise. log_encoder_test verifies the margin at every decision boundary, which proves
// the evaluation exact for every float input.
//
// Why not float32 like torch: torch's float32 log2 (Sleef/vectorized) and the float products
// carry ~1e-7 relative error, so its code differs from the exact one at isolated floats within a
// few ulp of a threshold, and the result depends on the torch build. The exact definition is
// reproducible, monotone in u (which the fast encoder's thresholds rely on), and agrees with
// torch everywhere else (tests/data/quant records both; see quant/README.md).
//
// NaN: treated as if x were 0.0 (u = 1e-15f). x <= 0, -inf and denormal x/s clamp to 1e-15f;
// x >= s and +inf clamp to 1.
#pragma once

#include <cstdint>

#include "quant/params.h"

namespace adalog {

// u = clamp(x / s, 1e-15f, 1.0f) with NaN -> 1e-15f.
inline float LogClampUnit(float x_over_s) {
  float u = x_over_s >= kLogClampMin ? x_over_s : kLogClampMin;  // NaN, <= 0, -inf -> 1e-15f
  return u <= 1.0f ? u : 1.0f;
}

// raw = round_half_even(-log2(u) * num / den), exact, for u in [1e-15f, 1] (not validated).
int32_t LogRawCodeReference(float u, int num, int den);

// Full reference encode of one value (slow: calls log2). p must be valid (not re-checked).
int32_t LogEncodeReference(const LogParams& p, float x);

// The same formula evaluated in float32 the way torch does it (log2f, float products):
// raw = round(fl(fl(-log2f(u) * num) / den)). For comparison and benchmarking only; it is NOT
// the definition (it is not guaranteed monotone and differs near thresholds).
int32_t LogRawCodeFloat32(float u, int num, int den);

}  // namespace adalog
