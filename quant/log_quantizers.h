// Log2, log-sqrt2 and AdaLog quantizers (method §2.3-2.5), their decode tables (the integer
// (shift, multiplier) pairs the kernels use), the shift variants (method §2.6) and the fc2 bias fold.
//
// Encode: quant/log_reference.h defines the code; Encode uses the equal fast table path
// (quant/log_encoder.h). Codes are LogCode (uint8): 0 .. 2^b - 1, or LogZeroCode(b) = 2^b for
// the exact zero (see quant/codes.h).
//
// Decode, float32 in torch's order of operations, level(c) then x_hat = level(c) * s:
//   Log2:     level(c) = 2^-c
//   LogSqrt2: level(c) = 2^-ceil(c/2) * (c odd ? float(sqrt 2) : 1)     (= sqrt2^-c, inference
//   form) AdaLog:   level(c) = 2^-T1[c] * float(m[c] / D)
//             T1[c] = floor(c*q / 37),  m[c] = round_half_even(2^-((c*q mod 37)/37) * D),
//             D = 2^(b+1) - 2    (m in [D/2, D], b+1 bits)
//   zero code: level = 0.
// 2^-k is the exact float power of two, and 0 for k > 149 (float32 underflow, as torch).
// For AdaLog (and Log2 via T1 = c, m = D), level(c) is exactly the float nearest to the real
// m * 2^-T1 / D, so an integer kernel computing sum W * m >> T1 and scaling by s/D reproduces
// the same real value before its own final rounding. With q = 37 AdaLog equals Log2 exactly.
#pragma once

#include <cstdint>
#include <vector>

#include "quant/codes.h"
#include "quant/log_encoder.h"
#include "quant/params.h"

namespace adalog {

// Integer decode tables of a Log2 or AdaLog quantizer, indexed by code 0 .. 2^b (the last entry
// is the zero code: shift 0, mult 0). Value of code c: s * mult[c] * 2^-shift[c] / D.
// shift can exceed 31 (up to floor(255*255/37) = 1757): kernels must saturate the shift.
struct AdaLogTables {
  int bits = 0;
  int q = kAdaLogR;
  int32_t D = 0;               // 2^(b+1) - 2
  std::vector<int32_t> shift;  // T1, LogTableSize(bits) entries
  std::vector<int32_t> mult;   // m,  LogTableSize(bits) entries
};

// Throws adalog::Error on bits / q outside the accepted range (LogParams::Validate rules).
AdaLogTables MakeAdaLogTables(int bits, int q);
// Log2 as the integer pair: T1 = c, m = D (identical to MakeAdaLogTables(bits, 37)).
AdaLogTables MakeLog2Tables(int bits);

// Exact float power of two 2^-k for k >= 0, 0 below the smallest denormal (k > 149).
float Pow2Neg(int32_t k);

class LogQuantizer {
 public:
  // Validates p (throws adalog::Error); builds or reuses the encoder table and decode levels.
  explicit LogQuantizer(const LogParams& p);

  const LogParams& params() const { return p_; }
  int32_t zero_code() const { return LogZeroCode(p_.bits); }

  LogCode Encode(float x) const { return encoder_.Encode(x); }
  // level(c) * s; c must be in 0 .. 2^b (not checked: hot path).
  float Decode(int32_t c) const { return levels_[static_cast<size_t>(c)] * p_.scale; }
  // Decode(Encode(x)); NaN -> NaN, as torch.
  float FakeQuant(float x) const { return x != x ? x : Decode(Encode(x)); }

  void Encode(const float* x, int64_t n, LogCode* codes) const { encoder_.Encode(x, n, codes); }
  void Decode(const LogCode* codes, int64_t n, float* out) const;
  void FakeQuant(const float* x, int64_t n, float* out) const;

  // Unscaled decode levels, LogTableSize(bits) entries, the last (zero code) is 0.
  const std::vector<float>& levels() const { return levels_; }
  // Integer tables (Log2 / AdaLog only; throws adalog::Error for LogSqrt2, whose sqrt 2 factor
  // has no exact integer form).
  AdaLogTables IntegerTables() const;

 private:
  LogParams p_;
  FastLogEncoder encoder_;
  std::vector<float> levels_;
};

// Shift variant (method §2.6): y = Q(x + delta); returns y - delta unless bias_reparamed, in which
// case the -delta lives in the next layer's bias (FoldShiftIntoBias) and y is returned.
// x + delta and y - delta are float32 operations.
class ShiftLogQuantizer {
 public:
  // Throws adalog::Error for invalid base params or a non-finite shift.
  ShiftLogQuantizer(const LogParams& p, float shift = kGeluShift, bool bias_reparamed = false);

  const LogQuantizer& base() const { return base_; }
  float shift() const { return shift_; }
  bool bias_reparamed() const { return bias_reparamed_; }
  void set_bias_reparamed(bool v) { bias_reparamed_ = v; }

  LogCode Encode(float x) const { return base_.Encode(x + shift_); }
  float FakeQuant(float x) const {
    const float y = base_.FakeQuant(x + shift_);
    return bias_reparamed_ ? y : y - shift_;
  }
  void Encode(const float* x, int64_t n, LogCode* codes) const;
  void FakeQuant(const float* x, int64_t n, float* out) const;

 private:
  LogQuantizer base_;
  float shift_;
  bool bias_reparamed_;
};

// fc2 bias fold (method §2.6): bias'[o] = bias[o] - delta * sum_j w_hat[o][j], with w_hat the
// DEQUANTIZED quantized weight, row-major [out][in]. bias may be null (treated as zeros).
// The row sum is accumulated in double and the result rounded once to float.
// Throws adalog::Error on negative sizes or a non-finite delta.
std::vector<float> FoldShiftIntoBias(const float* w_hat, int64_t out_features, int64_t in_features,
                                     const float* bias, float delta);

}  // namespace adalog
