// softmax_logcode__avx512 and gelu_logcode__avx512: 16 lanes, the reference's polynomial and
// operation order (runtime/kernels/reference/logcode_writers_ref.h), encoder lookups by gather.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>

#include <cmath>

#include "runtime/kernels/int/logcode_writers.h"
#include "runtime/kernels/vec_math__avx512.h"

namespace adalog::intk {
namespace {

using vec512::Exp;

inline __m512i Encode(const LogCodeWriter& w, __m512 v) {
  if (!w.unit_scale) v = _mm512_div_ps(v, _mm512_set1_ps(w.params.scale));
  const __mmask16 ge = _mm512_cmp_ps_mask(v, _mm512_set1_ps(kLogClampMin), _CMP_GE_OQ);
  __m512 u = _mm512_mask_blend_ps(ge, _mm512_set1_ps(kLogClampMin), v);
  const __mmask16 le = _mm512_cmp_ps_mask(u, _mm512_set1_ps(1.f), _CMP_LE_OQ);
  u = _mm512_mask_blend_ps(le, _mm512_set1_ps(1.f), u);
  const __m512i idx =
      _mm512_sub_epi32(_mm512_srli_epi32(_mm512_castps_si512(u), 23 - LogCodeTable::kMantissaBits),
                       _mm512_set1_epi32(static_cast<int>(LogCodeTable::kFirstBucket)));
  const __m512i c0 = _mm512_i32gather_epi32(idx, w.c0.data(), 4);
  const __m512 thr = _mm512_i32gather_ps(idx, w.thr, 4);
  const __mmask16 above = _mm512_cmp_ps_mask(u, thr, _CMP_GE_OQ);
  const __m512i raw = _mm512_mask_sub_epi32(c0, above, c0, _mm512_set1_epi32(1));
  return _mm512_min_epi32(raw, _mm512_set1_epi32(w.zero_code));
}

inline __m512 GeluPoly(__m512 x) {
  const __m512 sign = _mm512_castsi512_ps(_mm512_set1_epi32(static_cast<int>(0x80000000u)));
  const __m512 z = _mm512_mul_ps(x, _mm512_set1_ps(0.707106781f));
  const __m512 a = _mm512_andnot_ps(sign, z);
  // An exact division here (not vec512::Recip): the scalar reference divides.
  const __m512 t = _mm512_div_ps(_mm512_set1_ps(1.f), vec512::ErfDenominator(a));
  const __m512 q = vec512::ErfPoly(t);
  const __m512 e = Exp(_mm512_xor_ps(_mm512_mul_ps(a, a), sign));
  const __m512 erf_a = _mm512_fnmadd_ps(q, e, _mm512_set1_ps(1.f));
  const __mmask16 neg = _mm512_cmp_ps_mask(z, _mm512_setzero_ps(), _CMP_LT_OQ);
  const __m512 erf = _mm512_mask_xor_ps(erf_a, neg, erf_a, sign);
  return _mm512_mul_ps(_mm512_mul_ps(_mm512_set1_ps(0.5f), x),
                       _mm512_add_ps(_mm512_set1_ps(1.f), erf));
}

}  // namespace

void SoftmaxToLogCodesAvx512(const LogCodeWriter& w, const float* x, int64_t rows, int n,
                             uint8_t* codes) {
  const __m512 neg_inf = _mm512_set1_ps(-INFINITY);
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * n;
    uint8_t* cr = codes + r * n;
    __m512 vm = neg_inf;
    for (int i = 0; i < n; i += 16) {
      vm = _mm512_max_ps(vm, _mm512_mask_loadu_ps(neg_inf, vec512::TailMask(n - i), xr + i));
    }
    const __m512 m = _mm512_set1_ps(_mm512_reduce_max_ps(vm));
    __m512 acc = _mm512_setzero_ps();
    for (int i = 0; i < n; i += 16) {
      const __m512 v = _mm512_mask_loadu_ps(neg_inf, vec512::TailMask(n - i), xr + i);
      acc = _mm512_add_ps(acc, Exp(_mm512_sub_ps(v, m)));
    }
    alignas(64) float lanes[16];
    _mm512_store_ps(lanes, acc);
    float total = lanes[0];
    for (int l = 1; l < 16; ++l) total += lanes[l];
    const __m512 vt = _mm512_set1_ps(1.f / total);
    for (int i = 0; i < n; i += 16) {
      const __mmask16 mk = vec512::TailMask(n - i);
      const __m512 v = _mm512_mask_loadu_ps(neg_inf, mk, xr + i);
      const __m512 p = _mm512_mul_ps(Exp(_mm512_sub_ps(v, m)), vt);
      _mm512_mask_cvtepi32_storeu_epi8(cr + i, mk, Encode(w, p));
    }
  }
}

void GeluToLogCodesAvx512(const LogCodeWriter& w, const float* x, int64_t n, uint8_t* codes) {
  const __m512 shift = _mm512_set1_ps(w.shift);
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 mk = vec512::TailMask(n - i);
    const __m512 g = GeluPoly(_mm512_maskz_loadu_ps(mk, x + i));
    _mm512_mask_cvtepi32_storeu_epi8(codes + i, mk, Encode(w, _mm512_add_ps(g, shift)));
  }
}

void LogCodesFromFloatsAvx512(const LogCodeWriter& w, bool add_shift, const float* x, int64_t n,
                              uint8_t* codes) {
  const __m512 shift = _mm512_set1_ps(w.shift);
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 mk = vec512::TailMask(n - i);
    __m512 v = _mm512_maskz_loadu_ps(mk, x + i);
    if (add_shift) v = _mm512_add_ps(v, shift);
    _mm512_mask_cvtepi32_storeu_epi8(codes + i, mk, Encode(w, v));
  }
}

}  // namespace adalog::intk
