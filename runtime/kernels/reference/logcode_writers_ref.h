// Plain scalar references of the fused float islands that write log codes directly: Softmax ->
// AdaLog (or Log2) codes, GELU -> Shift-AdaLog codes (runtime/kernels/int/logcode_writers.h).
// The exp / erf here are explicit polynomials built from IEEE operations only (+, *, fmaf, /,
// round-half-even conversion, exponent-field construction), written in the exact order the
// AVX-512 and AVX2 kernels use, so those kernels match bit for bit. Codes come from quant's
// encoder (FastLogEncoder, equal to LogQuantizer::Encode) applied to these float outputs.
//
// ExpPoly(x) (x finite or -inf; used for x <= 0 here):
//   small = x < -87.3f;  x = min(x, 88.3f); x = max(x, -87.3f)     (min(a,b) = a < b ? a : b)
//   n = round_half_even(x * 1.44269504088896341f)                  (int)
//   r = fmaf(-n, 0.693359375f, x);  r = fmaf(-n, -2.12194440e-4f, r)
//   p = 1/5040; p = fmaf(p, r, c) for c = 1/720, 1/120, 1/24, 1/6, 0.5, 1, 1
//   exp = small ? 0 : p * float_from_bits((n + 127) << 23)
// Softmax row (n elements): m = max_i x_i; e_i = ExpPoly(x_i - m);
//   lane sums S[l] = sum over i = l (mod 16) of e_i in increasing i; total = S[0] + S[1] + ... + S[15]
//   (left to right); p_i = e_i * (1 / total) (one division per row); code_i = Encode(p_i).
// GELU (erf form, Abramowitz-Stegun 7.1.26, |erf error| < 1.5e-7):
//   z = x * 0.707106781f; a = |z|; t = 1 / fmaf(0.3275911f, a, 1)
//   q = 1.061405429f; q = fmaf(q, t, c) for c = -1.453152027f, 1.421413741f, -0.284496736f,
//   0.254829592f; q = q * t;  erf_a = fmaf(-q, ExpPoly(-(a * a)), 1);  erf = z < 0 ? -erf_a : erf_a
//   g = (0.5f * x) * (1 + erf);  code = Encode(g + shift)    (the quantizer's own x / s inside)
#pragma once

#include <cstdint>

#include "quant/log_encoder.h"

namespace adalog::intk::ref {

float ExpPoly(float x);
float GeluPoly(float x);
// rows x n logits -> probabilities (float) and codes (either output may be null).
void SoftmaxPolyRef(const float* x, int64_t rows, int n, float* probs);
void SoftmaxToLogCodesRef(const FastLogEncoder& enc, const float* x, int64_t rows, int n,
                          uint8_t* codes);
// codes[i] = enc.Encode(GeluPoly(x[i]) + shift)
void GeluToLogCodesRef(const FastLogEncoder& enc, float shift, const float* x, int64_t n,
                       uint8_t* codes);

}  // namespace adalog::intk::ref
