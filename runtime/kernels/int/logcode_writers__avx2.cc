// softmax_logcode__avx2 and gelu_logcode__avx2: 2 x 8 lanes (so the softmax lane sums keep the
// reference's 16-lane order), the reference's polynomial and order, encoder lookups by gather.
#include <immintrin.h>

#include <cmath>
#include <cstring>

#include "runtime/kernels/int/logcode_writers.h"
#include "runtime/kernels/vec_math__avx2.h"

namespace adalog::intk {
namespace {

using vec256::Exp;
using vec256::Set;

inline __m256i Encode(const LogCodeWriter& w, __m256 v) {
  if (!w.unit_scale) v = _mm256_div_ps(v, Set(w.params.scale));
  __m256 u = _mm256_blendv_ps(Set(kLogClampMin), v, _mm256_cmp_ps(v, Set(kLogClampMin), _CMP_GE_OQ));
  u = _mm256_blendv_ps(Set(1.f), u, _mm256_cmp_ps(u, Set(1.f), _CMP_LE_OQ));
  const __m256i idx =
      _mm256_sub_epi32(_mm256_srli_epi32(_mm256_castps_si256(u), 23 - LogCodeTable::kMantissaBits),
                       _mm256_set1_epi32(static_cast<int>(LogCodeTable::kFirstBucket)));
  const __m256i c0 = _mm256_i32gather_epi32(w.c0.data(), idx, 4);
  const __m256 thr = _mm256_i32gather_ps(w.thr, idx, 4);
  const __m256i above = _mm256_castps_si256(_mm256_cmp_ps(u, thr, _CMP_GE_OQ));  // -1 or 0
  const __m256i raw = _mm256_add_epi32(c0, above);
  return _mm256_min_epi32(raw, _mm256_set1_epi32(w.zero_code));
}

inline void StoreCodes(uint8_t* out, __m256i c, int count) {
  alignas(32) int32_t tmp[8];
  _mm256_store_si256(reinterpret_cast<__m256i*>(tmp), c);
  for (int i = 0; i < count; ++i) out[i] = static_cast<uint8_t>(tmp[i]);
}

inline __m256 GeluPoly(__m256 x) {
  const __m256 sign = _mm256_castsi256_ps(_mm256_set1_epi32(static_cast<int>(0x80000000u)));
  const __m256 z = _mm256_mul_ps(x, Set(0.707106781f));
  const __m256 a = _mm256_andnot_ps(sign, z);
  // An exact division here (not vec256::Recip): the scalar reference divides.
  const __m256 t = _mm256_div_ps(Set(1.f), vec256::ErfDenominator(a));
  const __m256 q = vec256::ErfPoly(t);
  const __m256 e = Exp(_mm256_xor_ps(_mm256_mul_ps(a, a), sign));
  const __m256 erf_a = _mm256_fnmadd_ps(q, e, Set(1.f));
  const __m256 neg = _mm256_cmp_ps(z, _mm256_setzero_ps(), _CMP_LT_OQ);
  const __m256 erf = _mm256_xor_ps(erf_a, _mm256_and_ps(neg, sign));
  return _mm256_mul_ps(_mm256_mul_ps(Set(0.5f), x), _mm256_add_ps(Set(1.f), erf));
}

// 16 values from xr + i (pads -inf beyond n).
inline void Load16(const float* xr, int i, int n, __m256* lo, __m256* hi) {
  if (n - i >= 16) {
    *lo = _mm256_loadu_ps(xr + i);
    *hi = _mm256_loadu_ps(xr + i + 8);
    return;
  }
  alignas(32) float buf[16];
  for (int l = 0; l < 16; ++l) buf[l] = i + l < n ? xr[i + l] : -INFINITY;
  *lo = _mm256_load_ps(buf);
  *hi = _mm256_load_ps(buf + 8);
}

}  // namespace

void SoftmaxToLogCodesAvx2(const LogCodeWriter& w, const float* x, int64_t rows, int n,
                           uint8_t* codes) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * n;
    uint8_t* cr = codes + r * n;
    __m256 m0 = Set(-INFINITY), m1 = m0, lo, hi;
    for (int i = 0; i < n; i += 16) {
      Load16(xr, i, n, &lo, &hi);
      m0 = _mm256_max_ps(m0, lo);
      m1 = _mm256_max_ps(m1, hi);
    }
    alignas(32) float lanes[16];
    _mm256_store_ps(lanes, _mm256_max_ps(m0, m1));
    float mx = lanes[0];
    for (int l = 1; l < 8; ++l) mx = lanes[l] > mx ? lanes[l] : mx;
    const __m256 m = Set(mx);
    __m256 a0 = _mm256_setzero_ps(), a1 = a0;
    for (int i = 0; i < n; i += 16) {
      Load16(xr, i, n, &lo, &hi);
      a0 = _mm256_add_ps(a0, Exp(_mm256_sub_ps(lo, m)));
      a1 = _mm256_add_ps(a1, Exp(_mm256_sub_ps(hi, m)));
    }
    _mm256_store_ps(lanes, a0);
    _mm256_store_ps(lanes + 8, a1);
    float total = lanes[0];
    for (int l = 1; l < 16; ++l) total += lanes[l];
    const __m256 vt = Set(1.f / total);
    for (int i = 0; i < n; i += 16) {
      Load16(xr, i, n, &lo, &hi);
      const int count = n - i < 16 ? n - i : 16;
      StoreCodes(cr + i, Encode(w, _mm256_mul_ps(Exp(_mm256_sub_ps(lo, m)), vt)),
                 count < 8 ? count : 8);
      if (count > 8) {
        StoreCodes(cr + i + 8, Encode(w, _mm256_mul_ps(Exp(_mm256_sub_ps(hi, m)), vt)),
                   count - 8);
      }
    }
  }
}

namespace {

// Elementwise: codes[i] = Encode(f(x[i])), 8 lanes, the tail through a zero-padded buffer.
template <typename F>
void EncodeEach(const LogCodeWriter& w, const float* x, int64_t n, uint8_t* codes, F f) {
  for (int64_t i = 0; i < n; i += 8) {
    const int count = n - i < 8 ? static_cast<int>(n - i) : 8;
    __m256 v;
    if (count == 8) {
      v = _mm256_loadu_ps(x + i);
    } else {
      alignas(32) float buf[8] = {};
      std::memcpy(buf, x + i, sizeof(float) * static_cast<size_t>(count));
      v = _mm256_load_ps(buf);
    }
    StoreCodes(codes + i, Encode(w, f(v)), count);
  }
}

}  // namespace

void GeluToLogCodesAvx2(const LogCodeWriter& w, const float* x, int64_t n, uint8_t* codes) {
  const __m256 shift = Set(w.shift);
  EncodeEach(w, x, n, codes, [&](__m256 v) { return _mm256_add_ps(GeluPoly(v), shift); });
}

void LogCodesFromFloatsAvx2(const LogCodeWriter& w, bool add_shift, const float* x, int64_t n,
                            uint8_t* codes) {
  const __m256 shift = Set(w.shift);
  EncodeEach(w, x, n, codes,
             [&](__m256 v) { return add_shift ? _mm256_add_ps(v, shift) : v; });
}

}  // namespace adalog::intk
