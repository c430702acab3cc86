// The AVX-512F vector math shared by the float islands (float_kernels__avx512.cc) and the log-code
// writers (kernels/int/logcode_writers__avx512.cc): exp, a reciprocal, and the Abramowitz-Stegun
// erf polynomial. Include only from translation units compiled for AVX-512F. Each function is
// the one definition of its operation order: the writers' scalar references
// (kernels/reference/logcode_writers_ref.h) repeat that order, so changing it changes codes.
#pragma once

#include <immintrin.h>

#include <cstdint>

namespace adalog::vec512 {

// Lanes [0, remaining) set; all 16 for remaining >= 16.
inline __mmask16 TailMask(int64_t remaining) {
  return remaining >= 16 ? static_cast<__mmask16>(0xFFFF)
                         : static_cast<__mmask16>((1u << remaining) - 1u);
}

// exp(x): x = n ln2 + r with n = nearest(x log2 e) and r by a two-constant Cody-Waite split,
// e^r by the degree-7 Taylor polynomial (Horner, fused multiply-adds), 2^n built in the exponent
// field. x is clamped to [-87.3, 88.3] so n stays in [-126, 127]; below -87.3 the result is 0
// (the libm value is denormal there, below 1.2e-38). Relative error < 1e-8 before rounding.
// (roundscale / scalef / div are slow double-pumped ops on Zen 4; cvtps + shift are not.)
inline __m512 Exp(__m512 x) {
  const __mmask16 too_small = _mm512_cmp_ps_mask(x, _mm512_set1_ps(-87.3f), _CMP_LT_OQ);
  x = _mm512_min_ps(x, _mm512_set1_ps(88.3f));
  x = _mm512_max_ps(x, _mm512_set1_ps(-87.3f));
  const __m512i ni = _mm512_cvtps_epi32(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)));
  const __m512 n = _mm512_cvtepi32_ps(ni);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
  __m512 p = _mm512_set1_ps(1.f / 5040.f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.f / 720.f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.f / 120.f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.f / 24.f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.f / 6.f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.f));
  const __m512i bits = _mm512_slli_epi32(_mm512_add_epi32(ni, _mm512_set1_epi32(127)), 23);
  return _mm512_maskz_mul_ps(static_cast<__mmask16>(~too_small), p, _mm512_castsi512_ps(bits));
}

// 1/d for d >= 1 (no zeros, no infinities): rcp14 + one Newton step, relative error ~2^-27.
inline __m512 Recip(__m512 d) {
  const __m512 r = _mm512_rcp14_ps(d);
  return _mm512_mul_ps(r, _mm512_fnmadd_ps(d, r, _mm512_set1_ps(2.f)));
}

// Abramowitz-Stegun 7.1.26: erf(a) = 1 - P(t) e^(-a^2) for a >= 0, t = 1 / (1 + 0.3275911 a);
// this returns P(t) = t (a1 + t (a2 + t (a3 + t (a4 + t a5)))) in that Horner order.
// |erf error| < 1.5e-7.
inline __m512 ErfPoly(__m512 t) {
  __m512 p = _mm512_set1_ps(1.061405429f);
  p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(-1.453152027f));
  p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(1.421413741f));
  p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(-0.284496736f));
  p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(0.254829592f));
  return _mm512_mul_ps(p, t);
}

// 1 + 0.3275911 a: the denominator of t in ErfPoly.
inline __m512 ErfDenominator(__m512 a) {
  return _mm512_fmadd_ps(_mm512_set1_ps(0.3275911f), a, _mm512_set1_ps(1.f));
}

}  // namespace adalog::vec512
