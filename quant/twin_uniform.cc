// Twin uniform quantizer (quant/twin_uniform.h).
#include "quant/twin_uniform.h"

#include "quant/error.h"
#include "quant/rounding.h"

namespace adalog {

TwinUniformQuantizer::TwinUniformQuantizer(const TwinUniformParams& p) : p_(p) {
  p_.Validate();
  n_ = static_cast<float>(1 << (p_.bits - 1));
}

int32_t TwinUniformQuantizer::Encode(float x) const {
  if (x != x) return 0;
  if (x >= 0.0f) {
    float t = x / p_.scale_pos;
    t = t <= n_ - 1.0f ? t : n_ - 1.0f;
    return static_cast<int32_t>(RoundHalfEvenSmall(t));
  }
  float t = x / p_.scale_neg;
  t = t >= -n_ ? t : -n_;
  return static_cast<int32_t>(RoundHalfEvenSmall(t));
}

void TwinUniformQuantizer::Encode(const float* x, int64_t n, SignedCode* codes) const {
  for (int64_t i = 0; i < n; ++i) codes[i] = static_cast<SignedCode>(Encode(x[i]));
}

void TwinUniformQuantizer::FakeQuant(const float* x, int64_t n, float* out) const {
  for (int64_t i = 0; i < n; ++i) out[i] = FakeQuant(x[i]);
}

float TwinUniformDefaultNegScale(int bits) {
  TwinUniformParams{bits, 1.0f, 1.0f}.Validate();
  return 0.16997124f / static_cast<float>(1 << (bits - 1));
}

}  // namespace adalog
