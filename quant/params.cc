// Validation of the quantizer parameter types (quant/params.h).
#include "quant/params.h"

#include <cmath>

#include "quant/error.h"

namespace adalog {
namespace {

void CheckBits(const char* what, int bits) {
  ADALOG_CHECK(bits >= kMinBits && bits <= kMaxBits, what, ": bits = ", bits,
               " is outside the supported range ", kMinBits, "..", kMaxBits);
}

void CheckScale(const char* what, const char* name, float s) {
  ADALOG_CHECK(std::isfinite(s) && s > 0.0f, what, ": ", name, " = ", s,
               " must be positive and finite");
}

void CheckGroups(const char* what, int bits, UniformMode mode, const std::vector<float>& scales,
                 const std::vector<int32_t>& zps) {
  ADALOG_CHECK(!scales.empty(), what, ": no scales given");
  ADALOG_CHECK(scales.size() == zps.size(), what, ": ", scales.size(), " scales but ", zps.size(),
               " zero points");
  for (size_t i = 0; i < scales.size(); ++i) {
    try {
      UniformParams{bits, scales[i], zps[i], mode}.Validate();
    } catch (const Error& e) {
      Fail(what, " group ", i, ": ", e.what());
    }
  }
}

}  // namespace

void UniformParams::Validate() const {
  CheckBits("uniform quantizer", bits);
  CheckScale("uniform quantizer", "scale", scale);
  if (mode == UniformMode::kAsymmetric) {
    ADALOG_CHECK(zero_point >= 0 && zero_point <= (1 << bits) - 1,
                 "uniform quantizer: zero_point = ", zero_point, " is outside [0, ",
                 (1 << bits) - 1, "] for ", bits, "-bit asymmetric codes");
  } else {
    ADALOG_CHECK(zero_point == 0, "uniform quantizer: zero_point = ", zero_point,
                 " must be 0 for symmetric quantization");
  }
}

void UniformPerChannel::Validate() const {
  ADALOG_CHECK(axis >= 0, "per-channel uniform quantizer: axis = ", axis, " must be >= 0");
  CheckGroups("per-channel uniform quantizer", bits, mode, scales, zero_points);
}

void UniformPerHead::Validate() const {
  CheckGroups("per-head uniform quantizer", bits, mode, scales, zero_points);
}

void TwinUniformParams::Validate() const {
  CheckBits("twin uniform quantizer", bits);
  CheckScale("twin uniform quantizer", "scale_pos", scale_pos);
  CheckScale("twin uniform quantizer", "scale_neg", scale_neg);
}

const char* LogKindName(LogKind k) {
  switch (k) {
    case LogKind::kLog2:
      return "log2";
    case LogKind::kLogSqrt2:
      return "logsqrt2";
    case LogKind::kAdaLog:
      return "adalog";
  }
  return "?";
}

void LogParams::Validate() const {
  const char* what = LogKindName(kind);
  CheckBits(what, bits);
  CheckScale(what, "scale", scale);
  if (kind == LogKind::kAdaLog) {
    ADALOG_CHECK(q >= kAdaLogMinQ && q <= kAdaLogMaxQ, what, ": q = ", q,
                 " is outside the accepted range ", kAdaLogMinQ, "..", kAdaLogMaxQ,
                 " (spec search range ", kAdaLogSpecMinQ, "..", kAdaLogSpecMaxQ, ")");
    ADALOG_CHECK(
        bits < 8 || q >= kAdaLogMinQ8Bit, what, ": q = ", q,
        " at 8 bits would make the exact-zero state reachable; need q >= ", kAdaLogMinQ8Bit);
  }
}

}  // namespace adalog
