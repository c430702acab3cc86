// Training-mode (straight-through) forms of the activation quantizers, per element, with their
// derivatives with respect to the input and the scale (docs/method.md "Block reconstruction").
//
// Source of the method: the official AdaLog code, quantizers/_ste.py (round_ste: the forward
// rounds, the backward passes the gradient through unchanged), quantizers/uniform.py
// (UniformQuantizer.forward, training_mode) and quantizers/logarithm.py (Log2Quantizer,
// LogSqrt2Quantizer, AdaLogQuantizer forward, training_mode). The derivatives are those torch's
// autograd takes of those graphs: round_ste has derivative 1, torch.clamp passes the gradient
// where min <= input <= max (inclusive), the log quantizer's zero mask is a constant.
//
// Frozen rounding (gradient checks): with an SteRecord and `replay`, the rounding offset
// round(t) - t and the clamp / zero decisions recorded at a base point are reused, which makes
// the forward a smooth function of (x, s) whose exact derivative is the straight-through one;
// tests/search/block_grad_test.cc checks the block's backward against central differences of it.
#pragma once

#include <cmath>
#include <cstdint>

namespace adalog {

// Where one element fell: inside the clamp, clamped low / high, or (log) masked to exact zero.
enum class SteRegion : int8_t { kIn, kLow, kHigh, kZero };

template <typename T>
struct SteRecord {
  T offset = T(0);  // round(t) - t of the rounded quantity t
  SteRegion region = SteRegion::kIn;
};

// torch.round: half to even (the default rounding mode).
template <typename T>
inline T SteRound(T t) {
  return std::nearbyint(t);
}

// Uniform quantizer in training mode, asymmetric (codes cmin..cmax = 0..2^b-1, zero point z) or
// symmetric (z = 0, codes -2^(b-1)..2^(b-1)-1):
//   t = x / s;  c = round(t) + z;  x^ = (clamp(c, cmin, cmax) - z) * s
//   dx^/dx = [cmin <= c <= cmax]
//   dx^/ds = (clamp(c) - z) - [cmin <= c <= cmax] * t      (= round(t) - t inside the clamp)
// `rec` (may be null) records (replay = false) or supplies (replay = true) the frozen rounding.
template <typename T>
inline T UniformSte(T x, T s, int32_t z, int32_t cmin, int32_t cmax, T* dx, T* ds,
                    SteRecord<T>* rec = nullptr, bool replay = false) {
  const T t = x / s;
  T off;
  SteRegion reg;
  if (replay) {
    off = rec->offset;
    reg = rec->region;
  } else {
    const T r = SteRound(t);
    off = r - t;
    const T c = r + static_cast<T>(z);
    reg = c < static_cast<T>(cmin) ? SteRegion::kLow
                                   : (c > static_cast<T>(cmax) ? SteRegion::kHigh : SteRegion::kIn);
    if (rec != nullptr) {
      rec->offset = off;
      rec->region = reg;
    }
  }
  if (reg == SteRegion::kIn) {
    *dx = T(1);
    *ds = off;  // (t + off) - t
    return (t + off) * s;
  }
  const T q = static_cast<T>((reg == SteRegion::kLow ? cmin : cmax) - z);
  *dx = T(0);
  *ds = q;
  return q * s;
}

// Log quantizer in training mode (Log2: num/den = 1/1, LogSqrt2: 2/1, AdaLog: 37/q), on the
// shifted input v = x + shift (shift 0 for the softmax probabilities; the post-GELU shift for
// fc2's input):
//   u = clamp(v / s, 1e-15, 1);  c = round(-log2(u) * num / den);  zero = c >= 2^b
//   x^ = zero ? 0 : s * 2^(-clamp(c, 0, 2^b - 1) * den / num);  output x^ - shift unless folded
// These are the exact levels s * base^-c of the official training branch, not the integer tables
// of inference (AdaLog's T1/T2 rounding of the mantissa is not applied while training).
// Derivatives (c <= 2^b - 1 whenever not zero, and c >= 0 since u <= 1, so the code clamp never
// cuts the gradient):
//   zero:                 dx^/dx = 0,            dx^/ds = 0
//   v/s > 1 (u clamped):  dx^/dx = 0,            dx^/ds = x^/s (= 1: c = 0)
//   otherwise:            dx^/dx = x^/(u s),     dx^/ds = x^/s - (x^/u) (u/s) = 0
// (u < 1e-15 always lands in `zero` since c is then >= 49.8 * num/den >= 2^b for b <= 5 at num/den
// >= 1; at larger bits and num/den < 1 it is treated as clamped: dx^/dx = 0, dx^/ds = x^/s.)
// The official code evaluates the last dx^/ds as the float sum of its two terms, 0 up to rounding.
template <typename T>
inline T LogSte(T x, T s, int bits, int num, int den, T shift, bool shift_folded, T* dx, T* ds,
                SteRecord<T>* rec = nullptr, bool replay = false) {
  const T v = x + shift;
  const T back = shift_folded ? T(0) : shift;
  const T ud = v / s;
  const T kMin = static_cast<T>(1e-15f);
  const T u = ud < kMin ? kMin : (ud > T(1) ? T(1) : ud);
  const T cr = (-std::log2(u) * static_cast<T>(num)) / static_cast<T>(den);
  T off;
  SteRegion reg;
  if (replay) {
    off = rec->offset;
    reg = rec->region;
  } else {
    const T r = SteRound(cr);
    off = r - cr;
    if (r >= static_cast<T>(int64_t{1} << bits)) {
      reg = SteRegion::kZero;
    } else if (ud > T(1)) {
      reg = SteRegion::kHigh;
    } else if (ud < kMin) {
      reg = SteRegion::kLow;
    } else {
      reg = SteRegion::kIn;
    }
    if (rec != nullptr) {
      rec->offset = off;
      rec->region = reg;
    }
  }
  if (reg == SteRegion::kZero) {
    *dx = T(0);
    *ds = T(0);
    return T(0) - back;
  }
  const T c = cr + off;
  const T xq = std::exp2((-c * static_cast<T>(den)) / static_cast<T>(num)) * s;
  if (reg == SteRegion::kIn) {
    *dx = xq / (u * s);
    *ds = T(0);
  } else {
    *dx = T(0);
    *ds = xq / s;
  }
  return xq - back;
}

}  // namespace adalog
