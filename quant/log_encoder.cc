// Fast log encoder tables (quant/log_encoder.h).
#include "quant/log_encoder.h"

#include <cstring>
#include <limits>
#include <map>
#include <mutex>
#include <utility>

#include "quant/error.h"

namespace adalog {
namespace {

uint32_t Bits(float f) {
  uint32_t b;
  std::memcpy(&b, &f, sizeof b);
  return b;
}
float FromBits(uint32_t b) {
  float f;
  std::memcpy(&f, &b, sizeof f);
  return f;
}

}  // namespace

LogCodeTable LogCodeTable::Build(int num, int den) {
  ADALOG_CHECK(
      num >= 1 && den >= 1 && den * kAdaLogR >= num && num <= kAdaLogR && den <= kAdaLogMaxQ,
      "log code table: ratio ", num, "/", den,
      " is outside the supported range (level step 2^(den/num) >= 2^(1/37), den <= ", kAdaLogMaxQ,
      ")");
  LogCodeTable t;
  t.num = num;
  t.den = den;
  t.c0.resize(kNumBuckets);
  t.thr.resize(kNumBuckets);
  const uint32_t valid_lo = Bits(kLogClampMin), valid_hi = Bits(1.0f);
  for (int k = 0; k < kNumBuckets; ++k) {
    const uint32_t start = (kFirstBucket + static_cast<uint32_t>(k)) << (23 - kMantissaBits);
    const uint32_t end = start + (1u << (23 - kMantissaBits)) - 1;
    const uint32_t lo = start > valid_lo ? start : valid_lo;
    const uint32_t hi = end < valid_hi ? end : valid_hi;
    if (lo > hi) {  // entirely below 1e-15f: never indexed after the clamp
      t.c0[static_cast<size_t>(k)] = 0;
      t.thr[static_cast<size_t>(k)] = std::numeric_limits<float>::infinity();
      continue;
    }
    const int32_t c_lo = LogRawCodeReference(FromBits(lo), num, den);
    const int32_t c_hi = LogRawCodeReference(FromBits(hi), num, den);
    ADALOG_CHECK(c_lo >= 0 && c_lo <= 0xffff && (c_hi == c_lo || c_hi == c_lo - 1),
                 "log code table ", num, "/", den, ": bucket ", k,
                 " spans more than one threshold (internal error)");
    t.c0[static_cast<size_t>(k)] = static_cast<uint16_t>(c_lo);
    if (c_hi == c_lo) {
      t.thr[static_cast<size_t>(k)] = std::numeric_limits<float>::infinity();
      continue;
    }
    // Invariant: code(a) == c_lo, code(b) == c_lo - 1; find the smallest such b.
    uint32_t a = lo, b = hi;
    while (b - a > 1) {
      const uint32_t mid = a + (b - a) / 2;
      if (LogRawCodeReference(FromBits(mid), num, den) == c_lo) {
        a = mid;
      } else {
        b = mid;
      }
    }
    t.thr[static_cast<size_t>(k)] = FromBits(b);
  }
  return t;
}

const LogCodeTable& GetLogCodeTable(int num, int den) {
  static std::mutex mu;
  static std::map<std::pair<int, int>, std::unique_ptr<LogCodeTable>> cache;
  std::lock_guard<std::mutex> lock(mu);
  auto& slot = cache[{num, den}];
  if (!slot) slot = std::make_unique<LogCodeTable>(LogCodeTable::Build(num, den));
  return *slot;
}

FastLogEncoder::FastLogEncoder(const LogParams& p) : p_(p) {
  p_.Validate();
  table_ = &GetLogCodeTable(p_.RatioNum(), p_.RatioDen());
  zero_code_ = LogZeroCode(p_.bits);
  unit_scale_ = p_.scale == 1.0f;
}

void FastLogEncoder::Encode(const float* x, int64_t n, LogCode* codes) const {
  const LogCodeTable& t = *table_;
  const int32_t zc = zero_code_;
  if (unit_scale_) {
    for (int64_t i = 0; i < n; ++i) {
      const int32_t raw = t.RawCode(LogClampUnit(x[i]));
      codes[i] = static_cast<LogCode>(raw < zc ? raw : zc);
    }
  } else {
    const float s = p_.scale;
    for (int64_t i = 0; i < n; ++i) {
      const int32_t raw = t.RawCode(LogClampUnit(x[i] / s));
      codes[i] = static_cast<LogCode>(raw < zc ? raw : zc);
    }
  }
}

}  // namespace adalog
