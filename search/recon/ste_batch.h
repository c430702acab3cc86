// The straight-through activation quantizers of quant/ste.h over arrays, as block reconstruction
// runs them when it is not replaying a recorded rounding (SteMode::kNormal / kRecord): the same
// operations in the same order, so the same bytes as calling UniformSte / LogSte per element
// (tests/search/block_grad_test.cc, SteBatch*), with the library calls hoisted: rounding by the
// 1.5 * 2^(mantissa bits) trick instead of a call to nearbyint (this project builds for baseline
// x86-64, where nearbyint is a libm call), and the log quantizer's levels 2^(-c den / num) from a
// table of the 2^bits codes instead of an exp2 per element.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>

#include "quant/ste.h"

namespace adalog::search {

// Round half to even, equal to std::nearbyint in the default rounding mode: below 2^(digits-2)
// in magnitude, adding and subtracting 1.5 * 2^(digits-1) rounds at the units (ties to even; two
// rounded IEEE operations, which the compiler keeps as written without -ffast-math); above, and
// for NaN, nearbyint itself.
template <typename T>
inline T RoundHalfEvenFast(T t) {
  constexpr int kDigits = std::numeric_limits<T>::digits;  // 24 float, 53 double
  const T kMagic = T(1.5) * static_cast<T>(int64_t{1} << (kDigits - 1));
  const T kSmall = static_cast<T>(int64_t{1} << (kDigits - 2));
  if (std::fabs(t) < kSmall) {
    return std::copysign((t + kMagic) - kMagic, t);  // nearbyint(-0.3) is -0
  }
  return std::nearbyint(t);
}

// x[i] = UniformSte(x[i], s, z, cmin, cmax, &dx[i], &ds[i], rec ? &rec[i] : nullptr, false).
template <typename T>
inline void UniformSteBatch(T* x, int64_t n, T s, int32_t z, int32_t cmin, int32_t cmax, T* dx,
                            T* ds, SteRecord<T>* rec) {
  const T lo = static_cast<T>(cmin), hi = static_cast<T>(cmax), zt = static_cast<T>(z);
  const T q_lo = static_cast<T>(cmin - z), q_hi = static_cast<T>(cmax - z);
  for (int64_t i = 0; i < n; ++i) {
    const T t = x[i] / s;
    const T r = RoundHalfEvenFast(t);
    const T off = r - t;
    const T c = r + zt;
    const SteRegion reg = c < lo ? SteRegion::kLow : (c > hi ? SteRegion::kHigh : SteRegion::kIn);
    if (rec != nullptr) {
      rec[i].offset = off;
      rec[i].region = reg;
    }
    if (reg == SteRegion::kIn) {
      dx[i] = T(1);
      ds[i] = off;
      x[i] = (t + off) * s;
    } else {
      const T q = reg == SteRegion::kLow ? q_lo : q_hi;
      dx[i] = T(0);
      ds[i] = q;
      x[i] = q * s;
    }
  }
}

// The levels of LogSte: levels[k] = 2^((-k den) / num) for the codes k = 0 .. 2^bits - 1, evaluated
// as LogSte evaluates them (its code c = cr + (round(cr) - cr) equals round(cr) exactly: the
// difference of two floats within a factor 2 of each other, or 0 - cr, is exact).
template <typename T>
inline void LogSteLevels(int bits, int num, int den, T* levels) {
  for (int64_t k = 0; k < (int64_t{1} << bits); ++k) {
    const T c = static_cast<T>(k);
    levels[k] = std::exp2((-c * static_cast<T>(den)) / static_cast<T>(num));
  }
}

// x[i] = LogSte(x[i], s, bits, num, den, shift, shift_folded, &dx[i], &ds[i], rec ? &rec[i] :
// nullptr, false), with `levels` from LogSteLevels(bits, num, den).
template <typename T>
inline void LogSteBatch(T* x, int64_t n, T s, int bits, int num, int den, T shift,
                        bool shift_folded, const T* levels, T* dx, T* ds, SteRecord<T>* rec) {
  const T back = shift_folded ? T(0) : shift;
  const T kMin = static_cast<T>(1e-15f);
  const T zero_code = static_cast<T>(int64_t{1} << bits);
  const T tn = static_cast<T>(num), td = static_cast<T>(den);
  for (int64_t i = 0; i < n; ++i) {
    const T v = x[i] + shift;
    const T ud = v / s;
    const T u = ud < kMin ? kMin : (ud > T(1) ? T(1) : ud);
    const T cr = (-std::log2(u) * tn) / td;
    const T r = RoundHalfEvenFast(cr);
    const T off = r - cr;
    // The region and the outputs by selects rather than branches (the regions mix unpredictably
    // along a row of probabilities); the same values as LogSte's branches.
    const bool zero = r >= zero_code, high = ud > T(1), low = ud < kMin;
    const SteRegion reg = zero ? SteRegion::kZero
                               : (high ? SteRegion::kHigh : (low ? SteRegion::kLow : SteRegion::kIn));
    if (rec != nullptr) {
      rec[i].offset = off;
      rec[i].region = reg;
    }
    // A code outside the table (zero region, or NaN input) reads level 0; NaN then propagates as
    // exp2(NaN) does in LogSte.
    const bool valid = r >= T(0) && r < zero_code;
    const T level = levels[valid ? static_cast<int64_t>(r) : 0];
    const T xq = r == r ? level * s : r;
    const T dx_in = xq / (u * s), ds_clamped = xq / s;
    const bool in = (!zero) & (!high) & (!low);
    const bool clamped = (!zero) & (high | low);
    dx[i] = in ? dx_in : T(0);
    ds[i] = clamped ? ds_clamped : T(0);
    x[i] = zero ? T(0) - back : xq - back;
  }
}

}  // namespace adalog::search
