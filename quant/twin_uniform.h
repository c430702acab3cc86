// Twin uniform quantizer (PTQ4ViT, method §2.2), per tensor: separate scales for x >= 0 and x < 0.
//
//   x_hat = clamp(round(x/s0), 0, n-1) * s0 + clamp(round(x/s1), -n, 0) * s1,   n = 2^(b-1)
// float32, half-to-even. At most one term is nonzero, so one signed code carries both ranges:
//   c = x >= 0 ? clamp(round(x/s0), 0, n-1) : clamp(round(x/s1), -n, 0)     in [-n, n-1]
//   x_hat = c >= 0 ? c * s0 : c * s1
// NaN encodes as 0.0 (code 0); FakeQuant(NaN) = NaN. +inf -> n-1, -inf -> -n.
// Default initial scales (method §2.2): s0 = max|x| / (n - 0.5), s1 = 0.16997124 / n.
#pragma once

#include <cstdint>

#include "quant/codes.h"
#include "quant/params.h"

namespace adalog {

class TwinUniformQuantizer {
 public:
  explicit TwinUniformQuantizer(const TwinUniformParams& p);  // validates

  const TwinUniformParams& params() const { return p_; }
  int32_t Encode(float x) const;
  float Decode(int32_t c) const {
    return static_cast<float>(c) * (c >= 0 ? p_.scale_pos : p_.scale_neg);
  }
  float FakeQuant(float x) const { return x != x ? x : Decode(Encode(x)); }

  void Encode(const float* x, int64_t n, SignedCode* codes) const;
  void FakeQuant(const float* x, int64_t n, float* out) const;

 private:
  TwinUniformParams p_;
  float n_;  // 2^(b-1)
};

// Spec 2.2 initial negative-side scale for post-GELU inputs: 0.16997124 / 2^(b-1).
float TwinUniformDefaultNegScale(int bits);

}  // namespace adalog
