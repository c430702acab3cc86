// The AVX2+FMA vector math shared by the float islands (float_kernels__avx2.cc) and the log-code
// writers (kernels/int/logcode_writers__avx2.cc): exp, a reciprocal, and the Abramowitz-Stegun erf
// polynomial, in the same operation order as vec_math__avx512.h (8 lanes instead of 16). Include
// only from translation units compiled for AVX2 and FMA.
#pragma once

#include <immintrin.h>

#include <cstdint>

namespace adalog::vec256 {

inline __m256 Set(float v) { return _mm256_set1_ps(v); }

// exp(x), the operations of vec512::Exp: n = nearest(x log2 e) (cvtps under the default
// round-to-nearest-even), the same Cody-Waite split and degree-7 polynomial, 2^n in the exponent
// field, 0 below -87.3.
inline __m256 Exp(__m256 x) {
  const __m256 too_small = _mm256_cmp_ps(x, Set(-87.3f), _CMP_LT_OQ);
  x = _mm256_min_ps(x, Set(88.3f));
  x = _mm256_max_ps(x, Set(-87.3f));
  const __m256i ni = _mm256_cvtps_epi32(_mm256_mul_ps(x, Set(1.44269504088896341f)));
  const __m256 n = _mm256_cvtepi32_ps(ni);
  __m256 r = _mm256_fnmadd_ps(n, Set(0.693359375f), x);
  r = _mm256_fnmadd_ps(n, Set(-2.12194440e-4f), r);
  __m256 p = Set(1.f / 5040.f);
  p = _mm256_fmadd_ps(p, r, Set(1.f / 720.f));
  p = _mm256_fmadd_ps(p, r, Set(1.f / 120.f));
  p = _mm256_fmadd_ps(p, r, Set(1.f / 24.f));
  p = _mm256_fmadd_ps(p, r, Set(1.f / 6.f));
  p = _mm256_fmadd_ps(p, r, Set(0.5f));
  p = _mm256_fmadd_ps(p, r, Set(1.f));
  p = _mm256_fmadd_ps(p, r, Set(1.f));
  const __m256i bits = _mm256_slli_epi32(_mm256_add_epi32(ni, _mm256_set1_epi32(127)), 23);
  return _mm256_andnot_ps(too_small, _mm256_mul_ps(p, _mm256_castsi256_ps(bits)));
}

// 1/d for d >= 1: rcp (12 bits) + one Newton step, relative error ~2^-22.
inline __m256 Recip(__m256 d) {
  const __m256 r = _mm256_rcp_ps(d);
  return _mm256_mul_ps(r, _mm256_fnmadd_ps(d, r, Set(2.f)));
}

// vec512::ErfPoly with 8 lanes.
inline __m256 ErfPoly(__m256 t) {
  __m256 p = Set(1.061405429f);
  p = _mm256_fmadd_ps(p, t, Set(-1.453152027f));
  p = _mm256_fmadd_ps(p, t, Set(1.421413741f));
  p = _mm256_fmadd_ps(p, t, Set(-0.284496736f));
  p = _mm256_fmadd_ps(p, t, Set(0.254829592f));
  return _mm256_mul_ps(p, t);
}

inline __m256 ErfDenominator(__m256 a) { return _mm256_fmadd_ps(Set(0.3275911f), a, Set(1.f)); }

}  // namespace adalog::vec256
