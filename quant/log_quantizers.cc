// Log2 / log-sqrt2 / AdaLog quantizers, their tables, shift variants and the bias fold
// (quant/log_quantizers.h).
#include "quant/log_quantizers.h"

#include <cmath>

#include "quant/error.h"
#include "quant/rounding.h"

namespace adalog {

float Pow2Neg(int32_t k) {
  if (k > 149) return 0.0f;
  return std::ldexp(1.0f, -k);  // exact: 2^-k is a (possibly denormal) float for k <= 149
}

AdaLogTables MakeAdaLogTables(int bits, int q) {
  LogParams p;
  p.kind = LogKind::kAdaLog;
  p.bits = bits;
  p.q = q;
  p.Validate();
  AdaLogTables t;
  t.bits = bits;
  t.q = q;
  t.D = (int32_t{1} << (bits + 1)) - 2;
  const int32_t n = LogTableSize(bits);
  t.shift.resize(static_cast<size_t>(n));
  t.mult.resize(static_cast<size_t>(n));
  for (int32_t c = 0; c + 1 < n; ++c) {
    const int32_t cq = c * q;
    t.shift[static_cast<size_t>(c)] = cq / kAdaLogR;
    // Python: round(2 ** (-(c*q % r) / r) * D), in double, half to even.
    const double frac = -static_cast<double>(cq % kAdaLogR) / kAdaLogR;
    t.mult[static_cast<size_t>(c)] =
        static_cast<int32_t>(RoundHalfEven(std::pow(2.0, frac) * static_cast<double>(t.D)));
  }
  t.shift[static_cast<size_t>(n - 1)] = 0;  // zero code
  t.mult[static_cast<size_t>(n - 1)] = 0;
  return t;
}

AdaLogTables MakeLog2Tables(int bits) {
  AdaLogTables t = MakeAdaLogTables(bits, kAdaLogR);
  return t;
}

LogQuantizer::LogQuantizer(const LogParams& p) : p_(p), encoder_(p) {
  const int32_t n = LogTableSize(p_.bits);
  levels_.assign(static_cast<size_t>(n), 0.0f);
  if (p_.kind == LogKind::kAdaLog) {
    const AdaLogTables t = MakeAdaLogTables(p_.bits, p_.q);
    for (int32_t c = 0; c + 1 < n; ++c) {
      // torch: 2**(-table1) * table2, table2 = float32(m / D) (m / D computed in double).
      const float t2 = static_cast<float>(static_cast<double>(t.mult[static_cast<size_t>(c)]) /
                                          static_cast<double>(t.D));
      levels_[static_cast<size_t>(c)] = Pow2Neg(t.shift[static_cast<size_t>(c)]) * t2;
    }
  } else if (p_.kind == LogKind::kLog2) {
    for (int32_t c = 0; c + 1 < n; ++c) levels_[static_cast<size_t>(c)] = Pow2Neg(c);
  } else {
    const float sqrt2 = static_cast<float>(std::sqrt(2.0));
    for (int32_t c = 0; c + 1 < n; ++c) {
      levels_[static_cast<size_t>(c)] = Pow2Neg((c + 1) / 2) * ((c & 1) ? sqrt2 : 1.0f);
    }
  }
}

void LogQuantizer::Decode(const LogCode* codes, int64_t n, float* out) const {
  const float* lv = levels_.data();
  const float s = p_.scale;
  for (int64_t i = 0; i < n; ++i) out[i] = lv[codes[i]] * s;
}

void LogQuantizer::FakeQuant(const float* x, int64_t n, float* out) const {
  const float* lv = levels_.data();
  const float s = p_.scale;
  for (int64_t i = 0; i < n; ++i) {
    const float v = x[i];
    const float r = lv[encoder_.Encode(v)] * s;
    out[i] = v == v ? r : v;
  }
}

AdaLogTables LogQuantizer::IntegerTables() const {
  ADALOG_CHECK(p_.kind != LogKind::kLogSqrt2,
               "logsqrt2 quantizer: no exact integer (shift, multiplier) tables; decode in float");
  return p_.kind == LogKind::kLog2 ? MakeLog2Tables(p_.bits) : MakeAdaLogTables(p_.bits, p_.q);
}

ShiftLogQuantizer::ShiftLogQuantizer(const LogParams& p, float shift, bool bias_reparamed)
    : base_(p), shift_(shift), bias_reparamed_(bias_reparamed) {
  ADALOG_CHECK(std::isfinite(shift), "shift log quantizer: shift = ", shift, " must be finite");
}

void ShiftLogQuantizer::Encode(const float* x, int64_t n, LogCode* codes) const {
  for (int64_t i = 0; i < n; ++i) codes[i] = Encode(x[i]);
}

void ShiftLogQuantizer::FakeQuant(const float* x, int64_t n, float* out) const {
  for (int64_t i = 0; i < n; ++i) out[i] = FakeQuant(x[i]);
}

std::vector<float> FoldShiftIntoBias(const float* w_hat, int64_t out_features, int64_t in_features,
                                     const float* bias, float delta) {
  ADALOG_CHECK(out_features >= 0 && in_features >= 0, "bias fold: bad weight shape [", out_features,
               ", ", in_features, "]");
  ADALOG_CHECK(std::isfinite(delta), "bias fold: shift = ", delta, " must be finite");
  std::vector<float> folded(static_cast<size_t>(out_features));
  for (int64_t o = 0; o < out_features; ++o) {
    double rowsum = 0.0;
    const float* row = w_hat + o * in_features;
    for (int64_t j = 0; j < in_features; ++j) rowsum += row[j];
    const double b = bias ? static_cast<double>(bias[o]) : 0.0;
    folded[static_cast<size_t>(o)] = static_cast<float>(b - static_cast<double>(delta) * rowsum);
  }
  return folded;
}

}  // namespace adalog
