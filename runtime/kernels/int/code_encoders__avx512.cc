// AVX-512 code encoders (code_encoders.h): threshold binary search for the log kinds and quant's
// uniform Encode arithmetic, 16 lanes. Compiled with AVX-512 F/BW/VL/DQ flags; run-time checked.
// GCC 12's AVX-512 headers build some intrinsics on an undefined vector (false positives):
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>

#include "runtime/kernels/int/code_encoders.h"

namespace adalog::intk {
namespace {

// Table lookup thr[idx] for a table of 1 << L entries (L <= 6 by permutes, else a gather).
template <int L>
struct Lookup {
  __m512 t0 = _mm512_setzero_ps(), t1 = _mm512_setzero_ps(), t2 = _mm512_setzero_ps(),
         t3 = _mm512_setzero_ps();
  const float* thr;
  explicit Lookup(const float* table) : thr(table) {
    if constexpr (L <= 4) {
      t0 = _mm512_maskz_loadu_ps(static_cast<__mmask16>((1u << (1 << L)) - 1), table);
    } else if constexpr (L <= 6) {
      t0 = _mm512_loadu_ps(table);
      t1 = _mm512_loadu_ps(table + 16);
      if constexpr (L == 6) {
        t2 = _mm512_loadu_ps(table + 32);
        t3 = _mm512_loadu_ps(table + 48);
      }
    }
  }
  __m512 operator()(__m512i idx) const {
    if constexpr (L <= 4) {
      return _mm512_permutexvar_ps(idx, t0);
    } else if constexpr (L == 5) {
      return _mm512_permutex2var_ps(t0, idx, t1);
    } else if constexpr (L == 6) {
      const __m512 a = _mm512_permutex2var_ps(t0, idx, t1);
      const __m512 b = _mm512_permutex2var_ps(t2, idx, t3);
      return _mm512_mask_blend_ps(_mm512_test_epi32_mask(idx, _mm512_set1_epi32(32)), a, b);
    } else {
      return _mm512_i32gather_ps(idx, thr, 4);
    }
  }
};

template <int L>
bool EncodeImpl(const float* thr, const float* x, int64_t n, uint8_t* codes) {
  const Lookup<L> look(thr);
  const __m512 inf = _mm512_set1_ps(__builtin_inff());
  const __m512i one = _mm512_set1_epi32(1);
  __mmask16 all_finite = 0xffff;
  auto count = [&](__m512 v) {
    __m512i pos = _mm512_setzero_si512();
    for (int32_t step = (1 << L) >> 1; step >= 1; step >>= 1) {
      const __m512 t = look(_mm512_add_epi32(pos, _mm512_set1_epi32(step - 1)));
      pos = _mm512_mask_add_epi32(pos, _mm512_cmp_ps_mask(v, t, _CMP_LT_OQ), pos,
                                  _mm512_set1_epi32(step));
    }
    const __m512 t = look(pos);
    return _mm512_mask_add_epi32(pos, _mm512_cmp_ps_mask(v, t, _CMP_LT_OQ), pos, one);
  };
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m512 v = _mm512_loadu_ps(x + i);
    all_finite &= _mm512_cmp_ps_mask(_mm512_abs_ps(v), inf, _CMP_LT_OQ);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(codes + i), _mm512_cvtepi32_epi8(count(v)));
  }
  if (i < n) {
    const __mmask16 m = static_cast<__mmask16>((1u << (n - i)) - 1);
    const __m512 v = _mm512_maskz_loadu_ps(m, x + i);  // zeros beyond n: finite, not stored
    all_finite &= _mm512_cmp_ps_mask(_mm512_abs_ps(v), inf, _CMP_LT_OQ);
    _mm_mask_storeu_epi8(codes + i, m, _mm512_cvtepi32_epi8(count(v)));
  }
  return all_finite != 0xffff;
}

}  // namespace

bool EncodeLogThresholdsAvx512(const float* thr, int log2_padded, const float* x, int64_t n,
                               uint8_t* codes) {
  switch (log2_padded) {
    case 0: return EncodeImpl<0>(thr, x, n, codes);
    case 1: return EncodeImpl<1>(thr, x, n, codes);
    case 2: return EncodeImpl<2>(thr, x, n, codes);
    case 3: return EncodeImpl<3>(thr, x, n, codes);
    case 4: return EncodeImpl<4>(thr, x, n, codes);
    case 5: return EncodeImpl<5>(thr, x, n, codes);
    case 6: return EncodeImpl<6>(thr, x, n, codes);
    case 7: return EncodeImpl<7>(thr, x, n, codes);
    default: return EncodeImpl<8>(thr, x, n, codes);
  }
}

void EncodeUniformU8Avx512(float scale, float lo, float hi, int32_t zero_point, const float* x,
                           int64_t n, uint8_t* codes) {
  // quant's UniformQuantizer::Encode, lane for lane: t = x / s (IEEE division), NaN -> +0,
  // clamp to [lo, hi], round half to even by the 1.5 * 2^23 constant (exact for |t| <= 255),
  // + z. Codes are 0..255, so the truncating narrow is exact.
  const __m512 s = _mm512_set1_ps(scale), vlo = _mm512_set1_ps(lo), vhi = _mm512_set1_ps(hi);
  const __m512 magic = _mm512_set1_ps(12582912.0f);
  const __m512i z = _mm512_set1_epi32(zero_point);
  auto enc = [&](__m512 v) {
    __m512 t = _mm512_div_ps(v, s);
    t = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(t, t, _CMP_ORD_Q), t);
    t = _mm512_min_ps(_mm512_max_ps(t, vlo), vhi);
    t = _mm512_sub_ps(_mm512_add_ps(t, magic), magic);
    return _mm512_cvtepi32_epi8(_mm512_add_epi32(_mm512_cvttps_epi32(t), z));
  };
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    _mm_storeu_si128(reinterpret_cast<__m128i*>(codes + i), enc(_mm512_loadu_ps(x + i)));
  }
  if (i < n) {
    const __mmask16 m = static_cast<__mmask16>((1u << (n - i)) - 1);
    _mm_mask_storeu_epi8(codes + i, m, enc(_mm512_maskz_loadu_ps(m, x + i)));
  }
}

void EncodeUniformU8VectorsAvx512(const float* scale, const float* lo, const float* hi,
                                  const int32_t* zero, int nvec, const float* x, int64_t ldx,
                                  int64_t rows, uint8_t* codes, int64_t ldc) {
  // EncodeUniformU8Avx512's operations, with the vector's own parameters.
  const __m512 magic = _mm512_set1_ps(12582912.0f);
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * ldx;
    uint8_t* cr = codes + r * ldc;
    for (int v = 0; v < nvec; ++v) {
      __m512 t = _mm512_div_ps(_mm512_loadu_ps(xr + 16 * v), _mm512_set1_ps(scale[v]));
      t = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(t, t, _CMP_ORD_Q), t);
      t = _mm512_min_ps(_mm512_max_ps(t, _mm512_set1_ps(lo[v])), _mm512_set1_ps(hi[v]));
      t = _mm512_sub_ps(_mm512_add_ps(t, magic), magic);
      const __m128i c =
          _mm512_cvtepi32_epi8(_mm512_add_epi32(_mm512_cvttps_epi32(t), _mm512_set1_epi32(zero[v])));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(cr + 16 * v), c);
    }
  }
}

namespace {
// codes[i] = code(y) for y = x[i] (+ shift if add_shift), 16 lanes, a masked tail; returns true
// if any y was not finite (the caller re-encodes those with quant's scalar Encode).
template <class Code>
bool EncodeShiftedY(bool add_shift, float shift_value, const float* x, int64_t n, uint8_t* codes,
                    const Code& code) {
  const __m512 shift = _mm512_set1_ps(shift_value);
  const __m512 inf = _mm512_set1_ps(__builtin_inff());
  __mmask16 all_finite = 0xffff;
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    __m512 y = _mm512_loadu_ps(x + i);
    if (add_shift) y = _mm512_add_ps(y, shift);
    all_finite &= _mm512_cmp_ps_mask(_mm512_abs_ps(y), inf, _CMP_LT_OQ);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(codes + i), _mm512_cvtepi32_epi8(code(y)));
  }
  if (i < n) {
    const __mmask16 m = static_cast<__mmask16>((1u << (n - i)) - 1);
    __m512 y = _mm512_maskz_loadu_ps(m, x + i);
    if (add_shift) y = _mm512_add_ps(y, shift);
    all_finite &= static_cast<__mmask16>(_mm512_cmp_ps_mask(_mm512_abs_ps(y), inf, _CMP_LT_OQ) | ~m);
    _mm_mask_storeu_epi8(codes + i, m, _mm512_cvtepi32_epi8(code(y)));
  }
  return all_finite != 0xffff;
}

template <int K>
bool KeyBucketsImpl512(const KeyBucketTable& t, const float* x, int64_t n, uint8_t* codes) {
  const __m512i b0 = _mm512_loadu_si512(t.base), b1 = _mm512_loadu_si512(t.base + 16);
  __m512 th[K][2];
  for (int k = 0; k < K; ++k) {
    th[k][0] = _mm512_loadu_ps(t.thr[k]);
    th[k][1] = _mm512_loadu_ps(t.thr[k] + 16);
  }
  const __m512 zero = _mm512_setzero_ps();
  const __m128i count = _mm_cvtsi32_si128(t.key_shift);
  const __m512i k0 = _mm512_set1_epi32(t.k0), top = _mm512_set1_epi32(KeyBucketTable::kBuckets - 1),
                nonpos = _mm512_set1_epi32(t.code_nonpos), one = _mm512_set1_epi32(1);
  auto code = [&](__m512 y) {
    __m512i b = _mm512_sub_epi32(_mm512_srl_epi32(_mm512_castps_si512(y), count), k0);
    b = _mm512_min_epi32(_mm512_max_epi32(b, _mm512_setzero_si512()), top);
    __m512i c = _mm512_permutex2var_epi32(b0, b, b1);
    for (int k = 0; k < K; ++k) {
      const __m512 tk = _mm512_permutex2var_ps(th[k][0], b, th[k][1]);
      c = _mm512_mask_sub_epi32(c, _mm512_cmp_ps_mask(tk, y, _CMP_LE_OQ), c, one);
    }
    return _mm512_mask_blend_epi32(_mm512_cmp_ps_mask(y, zero, _CMP_GT_OQ), nonpos, c);
  };
  return EncodeShiftedY(t.add_shift, t.shift, x, n, codes, code);
}
}  // namespace

bool EncodeLogKeyBucketsAvx512(const KeyBucketTable& t, const float* x, int64_t n,
                               uint8_t* codes) {
  return t.per_bucket == 1 ? KeyBucketsImpl512<1>(t, x, n, codes)
                           : KeyBucketsImpl512<2>(t, x, n, codes);
}

bool EncodeLogExponentAvx512(const ExponentCodeTable& t, const float* x, int64_t n,
                             uint8_t* codes) {
  const __m512i b0 = _mm512_loadu_si512(t.base), b1 = _mm512_loadu_si512(t.base + 16),
                b2 = _mm512_loadu_si512(t.base + 32), b3 = _mm512_loadu_si512(t.base + 48);
  __m512 th[ExponentCodeTable::kPerBucket][4];
  for (int k = 0; k < ExponentCodeTable::kPerBucket; ++k) {
    for (int j = 0; j < 4; ++j) th[k][j] = _mm512_loadu_ps(t.thr[k] + 16 * j);
  }
  const __m512 zero = _mm512_setzero_ps();
  const __m512i e0 = _mm512_set1_epi32(t.e0), top = _mm512_set1_epi32(63),
                nonpos = _mm512_set1_epi32(t.code_nonpos), bit5 = _mm512_set1_epi32(32),
                one = _mm512_set1_epi32(1);
  auto code = [&](__m512 y) {
    const __mmask16 pos = _mm512_cmp_ps_mask(y, zero, _CMP_GT_OQ);
    __m512i i = _mm512_sub_epi32(_mm512_srli_epi32(_mm512_castps_si512(y), 23), e0);
    i = _mm512_min_epi32(_mm512_max_epi32(i, _mm512_setzero_si512()), top);
    const __mmask16 hi = _mm512_test_epi32_mask(i, bit5);
    __m512i c = _mm512_mask_blend_epi32(hi, _mm512_permutex2var_epi32(b0, i, b1),
                                        _mm512_permutex2var_epi32(b2, i, b3));
    for (int k = 0; k < ExponentCodeTable::kPerBucket; ++k) {
      const __m512 tk = _mm512_mask_blend_ps(hi, _mm512_permutex2var_ps(th[k][0], i, th[k][1]),
                                             _mm512_permutex2var_ps(th[k][2], i, th[k][3]));
      c = _mm512_mask_sub_epi32(c, _mm512_cmp_ps_mask(tk, y, _CMP_LE_OQ), c, one);
    }
    return _mm512_mask_blend_epi32(pos, nonpos, c);
  };
  return EncodeShiftedY(t.add_shift, t.shift, x, n, codes, code);
}

}  // namespace adalog::intk
