// Uniform quantizer (method §2.1), asymmetric and symmetric, 2..8 bits: scalar and array encode,
// decode and fake-quant, plus tensor-level application at per-tensor / per-channel / per-head
// granularity.
//
// Equations (all arithmetic in float32, exactly as torch evaluates them):
//   asymmetric: c = clamp(round(x / s) + z, 0, 2^b - 1)        x_hat = (c - z) * s
//   symmetric:  c = clamp(round(x / s), -2^(b-1), 2^(b-1) - 1)  x_hat = c * s
// round() is half-to-even. x / s is a true IEEE division (never x * (1/s), which differs in
// the last bit for some x). Inputs: +inf saturates to the top code, -inf to the bottom code,
// denormals behave as any float. NaN encodes as if it were 0.0 (code z, decodes to 0); the
// integer path cannot carry a NaN. FakeQuant(NaN) returns NaN, as torch does.
#pragma once

#include <cstdint>
#include <vector>

#include "quant/codes.h"
#include "quant/params.h"
#include "quant/rounding.h"

namespace adalog {

class UniformQuantizer {
 public:
  // Validates p (throws adalog::Error). Cheap: no tables.
  explicit UniformQuantizer(const UniformParams& p);

  const UniformParams& params() const { return p_; }

  // Code of one value, in [CodeMin(), CodeMax()].
  int32_t Encode(float x) const {
    float t = x / p_.scale;
    t = (t == t) ? t : 0.0f;  // NaN -> 0
    t = t >= lo_ ? t
                 : lo_;  // clamp(round(t) + z, cmin, cmax) == round(clamp(t, cmin-z, cmax-z)) + z
    t = t <= hi_ ? t : hi_;
    return static_cast<int32_t>(RoundHalfEvenSmall(t)) + p_.zero_point;
  }
  // (c - z) * s. c is not range-checked here (hot path); codes from Encode are always valid.
  float Decode(int32_t c) const { return static_cast<float>(c - p_.zero_point) * p_.scale; }
  // Decode(Encode(x)), except NaN -> NaN.
  float FakeQuant(float x) const {
    if (x != x) return x;
    return Decode(Encode(x));
  }

  // Array forms: n elements, no aliasing requirements beyond "x and out may be the same array"
  // for FakeQuant. Asymmetric quantizers write uint8 codes, symmetric ones int8 codes; calling
  // the other overload throws adalog::Error.
  void Encode(const float* x, int64_t n, UniformCode* codes) const;
  void Encode(const float* x, int64_t n, SignedCode* codes) const;
  void Decode(const UniformCode* codes, int64_t n, float* out) const;
  void Decode(const SignedCode* codes, int64_t n, float* out) const;
  void FakeQuant(const float* x, int64_t n, float* out) const;

 private:
  UniformParams p_;
  float lo_;  // CodeMin() - z, as float (an integer)
  float hi_;  // CodeMax() - z
};

// Tensor-level fake quantization of a row-major tensor with dims `shape`; out may alias x.
// Throws adalog::Error on invalid params or when the granularity does not fit the shape
// (axis out of range, channel / head count != dims[axis]).
void FakeQuantize(const UniformPerTensor& q, const float* x, const std::vector<int64_t>& shape,
                  float* out);
void FakeQuantize(const UniformPerChannel& q, const float* x, const std::vector<int64_t>& shape,
                  float* out);
void FakeQuantize(const UniformPerHead& q, const float* x, const std::vector<int64_t>& shape,
                  float* out);

// Tensor-level encode to asymmetric uint8 codes (the integer kernels' input).
void Encode(const UniformPerTensor& q, const float* x, const std::vector<int64_t>& shape,
            UniformCode* codes);
void Encode(const UniformPerChannel& q, const float* x, const std::vector<int64_t>& shape,
            UniformCode* codes);
void Encode(const UniformPerHead& q, const float* x, const std::vector<int64_t>& shape,
            UniformCode* codes);

// Number of elements of a shape; throws adalog::Error on a negative dimension.
int64_t NumElements(const std::vector<int64_t>& shape);

}  // namespace adalog
