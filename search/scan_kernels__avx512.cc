// AVX-512 scan kernels (compiled with AVX-512 flags and -ffp-contract=off, see
// search/CMakeLists.txt); bit-identical to the references in scan_kernels.cc.
#include <immintrin.h>

#include <limits>

#include "search/scan_kernels.h"

namespace adalog::search {

void ThresholdLevelsAvx512(const float* x, int64_t n, const float* thr, int n_thr, int base,
                           const float* lv, float* out) {
  // In-register binary search over at most 16 descending thresholds (padded with -inf, which no
  // x is below), then a 32-entry table lookup.
  if (n_thr > 16 || base + n_thr >= 32) {
    ThresholdLevelsRef(x, n, thr, n_thr, base, lv, out);
    return;
  }
  alignas(64) float t[16];
  alignas(64) float tab[32];
  for (int j = 0; j < 16; ++j) t[j] = j < n_thr ? thr[j] : -std::numeric_limits<float>::infinity();
  for (int j = 0; j < 32; ++j) tab[j] = j <= base + n_thr ? lv[j] : 0.0f;
  const __m512 vt = _mm512_load_ps(t);
  const __m512 lo = _mm512_load_ps(tab), hi = _mm512_load_ps(tab + 16);
  const __m512i vbase = _mm512_set1_epi32(base);
  auto levels = [&](__m512 v) {
    // count = #{j : v < t[j]}, t descending: the leading run of thresholds above v.
    __m512i pos = _mm512_setzero_si512();
    for (int step = 8; step >= 1; step >>= 1) {
      const __m512i probe = _mm512_add_epi32(pos, _mm512_set1_epi32(step - 1));
      const __m512 tv = _mm512_permutexvar_ps(probe, vt);
      const __mmask16 m = _mm512_cmp_ps_mask(v, tv, _CMP_LT_OQ);
      pos = _mm512_mask_add_epi32(pos, m, pos, _mm512_set1_epi32(step));
    }
    // pos <= 15 here; one more probe at t[pos] decides 15 vs 16 (and is harmless below).
    const __m512 tv = _mm512_permutexvar_ps(pos, vt);
    const __mmask16 m = _mm512_cmp_ps_mask(v, tv, _CMP_LT_OQ);
    pos = _mm512_mask_add_epi32(pos, m, pos, _mm512_set1_epi32(1));
    return _mm512_permutex2var_ps(lo, _mm512_add_epi32(pos, vbase), hi);
  };
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) _mm512_storeu_ps(out + i, levels(_mm512_loadu_ps(x + i)));
  if (i < n) {
    const __mmask16 m = static_cast<__mmask16>((1u << (n - i)) - 1u);
    _mm512_mask_storeu_ps(out + i, m, levels(_mm512_maskz_loadu_ps(m, x + i)));
  }
}

void ThresholdCodesAvx512(const float* x, int64_t n, const float* thr, int n_thr, uint8_t* out) {
  // In-register binary search over at most 15 ascending thresholds, padded with NaN (no x is
  // >= NaN).
  if (n_thr > 15) {
    ThresholdCodesRef(x, n, thr, n_thr, out);
    return;
  }
  alignas(64) float t[16];
  for (int j = 0; j < 16; ++j) t[j] = j < n_thr ? thr[j] : std::numeric_limits<float>::quiet_NaN();
  const __m512 vt = _mm512_load_ps(t);
  auto codes = [&](__m512 v) {
    __m512i pos = _mm512_setzero_si512();
    for (int step = 8; step >= 1; step >>= 1) {
      const __m512i probe = _mm512_add_epi32(pos, _mm512_set1_epi32(step - 1));
      const __mmask16 m = _mm512_cmp_ps_mask(v, _mm512_permutexvar_ps(probe, vt), _CMP_GE_OQ);
      pos = _mm512_mask_add_epi32(pos, m, pos, _mm512_set1_epi32(step));
    }
    const __mmask16 m = _mm512_cmp_ps_mask(v, _mm512_permutexvar_ps(pos, vt), _CMP_GE_OQ);
    pos = _mm512_mask_add_epi32(pos, m, pos, _mm512_set1_epi32(1));
    return _mm512_cvtepi32_epi8(pos);
  };
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + i), codes(_mm512_loadu_ps(x + i)));
  if (i < n) {
    const __mmask16 m = static_cast<__mmask16>((1u << (n - i)) - 1u);
    _mm_mask_storeu_epi8(out + i, m, codes(_mm512_maskz_loadu_ps(m, x + i)));
  }
}

namespace {
// Lanes 0..7 -> ((l0 + l4) + (l1 + l5)) + ((l2 + l6) + (l3 + l7)), as the reference.
double Combine(__m512d v) {
  alignas(64) double l[8];
  _mm512_store_pd(l, v);
  return ((l[0] + l[4]) + (l[1] + l[5])) + ((l[2] + l[6]) + (l[3] + l[7]));
}
}  // namespace

void DotF32F64x2Avx512(const float* a, const float* b, const float* c, int64_t n, double* lin,
                       double* quad) {
  __m512d l = _mm512_setzero_pd(), q = _mm512_setzero_pd();
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m512d av = _mm512_cvtps_pd(_mm256_loadu_ps(a + i));
    l = _mm512_add_pd(l, _mm512_mul_pd(av, _mm512_cvtps_pd(_mm256_loadu_ps(b + i))));
    q = _mm512_add_pd(q, _mm512_mul_pd(av, _mm512_cvtps_pd(_mm256_loadu_ps(c + i))));
  }
  if (i < n) {
    const __mmask8 m = static_cast<__mmask8>((1u << (n - i)) - 1u);
    const __m512d av = _mm512_cvtps_pd(_mm256_maskz_loadu_ps(m, a + i));
    l = _mm512_add_pd(l, _mm512_mul_pd(av, _mm512_cvtps_pd(_mm256_maskz_loadu_ps(m, b + i))));
    q = _mm512_add_pd(q, _mm512_mul_pd(av, _mm512_cvtps_pd(_mm256_maskz_loadu_ps(m, c + i))));
  }
  *lin = Combine(l);
  *quad = Combine(q);
}

double ResidualSqAvx512(const double* z, double s, const double* a, int64_t n) {
  const __m512d vs = _mm512_set1_pd(s);
  __m512d acc = _mm512_setzero_pd();
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m512d r = _mm512_sub_pd(_mm512_loadu_pd(z + i), _mm512_mul_pd(vs, _mm512_loadu_pd(a + i)));
    acc = _mm512_add_pd(acc, _mm512_mul_pd(r, r));
  }
  if (i < n) {
    const __mmask8 m = static_cast<__mmask8>((1u << (n - i)) - 1u);
    const __m512d r = _mm512_sub_pd(_mm512_maskz_loadu_pd(m, z + i),
                                    _mm512_mul_pd(vs, _mm512_maskz_loadu_pd(m, a + i)));
    acc = _mm512_add_pd(acc, _mm512_mul_pd(r, r));
  }
  return Combine(acc);
}

}  // namespace adalog::search
