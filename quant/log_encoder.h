// Fast log encoder: the log quantizers' code from a float's exponent and mantissa bits plus a
// small table, with no log2/pow per element. Equal to LogEncodeReference (quant/log_reference.h)
// for every float input, by construction and by exhaustive test.
//
// Table (one per ratio num/den, shared by all bit-widths and scales):
//   u = clamp(x / s, 1e-15f, 1)  (NaN -> 1e-15f), a float in [2^-50, 1];
//   bucket = (bits(u) >> 17) - (77 << 6): the biased exponent and the top 6 mantissa bits,
//            3201 buckets; a bucket spans a ratio <= 1 + 2^-6 < 2^(1/37), the smallest level
//            step accepted (q >= 1), so at most one decision threshold falls inside it;
//   c0[bucket] = raw reference code at the bucket's smallest valid u (the largest code in it);
//   thr[bucket] = smallest float u in the bucket whose raw code is c0 - 1 (+inf if none),
//            found by bisection over float bit patterns on the reference itself;
//   raw  = c0[bucket] - (u >= thr[bucket])
//   code = min(raw, 2^b)             (2^b = LogZeroCode(b), the exact-zero state)
// The reference is monotone non-increasing in u (it is the exact rounding of a decreasing real
// function), which is what makes the bisection and the one-compare lookup exact.
#pragma once

#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

#include "quant/codes.h"
#include "quant/log_reference.h"
#include "quant/params.h"

namespace adalog {

// Decision table for one ratio num/den (see above). Immutable once built.
struct LogCodeTable {
  static constexpr int kMantissaBits = 6;
  static constexpr uint32_t kFirstBucket = 77u << kMantissaBits;  // bits(2^-50) >> 17
  static constexpr int kNumBuckets = (50 << kMantissaBits) + 1;   // up to and including 1.0f

  int num = 1;
  int den = 1;
  std::vector<uint16_t> c0;  // kNumBuckets raw codes
  std::vector<float> thr;    // kNumBuckets thresholds

  // Builds the table from LogRawCodeReference (about 1 ms). Throws adalog::Error on a ratio
  // outside the accepted range (den/num must be >= 1/37, i.e. at most one threshold per bucket).
  static LogCodeTable Build(int num, int den);

  // Raw code of a clamped u in [1e-15f, 1].
  int32_t RawCode(float u) const;
};

// Process-wide cache of tables, keyed by (num, den); thread-safe; tables live forever.
const LogCodeTable& GetLogCodeTable(int num, int den);

// Encoder for one (kind, bits, scale, q). Cheap to construct once its table is cached.
class FastLogEncoder {
 public:
  // Validates p (throws adalog::Error).
  explicit FastLogEncoder(const LogParams& p);

  const LogParams& params() const { return p_; }

  LogCode Encode(float x) const {
    const float u = LogClampUnit(unit_scale_ ? x : x / p_.scale);
    const int32_t raw = table_->RawCode(u);
    return static_cast<LogCode>(raw < zero_code_ ? raw : zero_code_);
  }
  void Encode(const float* x, int64_t n, LogCode* codes) const;

 private:
  LogParams p_;
  const LogCodeTable* table_;
  int32_t zero_code_;
  bool unit_scale_;  // s == 1: x / 1.0f == x for every float, so the division is skipped
};

// ---------------------------------------------------------------------------------------------
inline int32_t LogCodeTable::RawCode(float u) const {
  uint32_t b;
  std::memcpy(&b, &u, sizeof b);
  const uint32_t idx = (b >> (23 - kMantissaBits)) - kFirstBucket;
  return static_cast<int32_t>(c0[idx]) - static_cast<int32_t>(u >= thr[idx]);
}

}  // namespace adalog
