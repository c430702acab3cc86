// AVX2 code encoders (code_encoders.h), 8 lanes: the threshold binary search with gathers for
// the log kinds and quant's uniform Encode arithmetic. Run-time checked.
#include <immintrin.h>

#include <cmath>

#include "runtime/kernels/int/code_encoders.h"
#include "quant/rounding.h"

namespace adalog::intk {
namespace {

inline void StoreLowBytes(__m256i v, uint8_t* out) {  // byte 0 of each of 8 dwords
  const __m256i sel = _mm256_setr_epi8(0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
                                       0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1);
  const __m256i b = _mm256_shuffle_epi8(v, sel);
  const __m128i packed =
      _mm_unpacklo_epi32(_mm256_castsi256_si128(b), _mm256_extracti128_si256(b, 1));
  _mm_storel_epi64(reinterpret_cast<__m128i*>(out), packed);
}

// thr[idx] for a table of 1 << L entries: L <= 5 by vpermps over 8-entry registers (+ blends
// on the index bits 3 and 4), larger tables by gather.
template <int L>
struct Lookup2 {
  __m256 t[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
  const float* thr;
  explicit Lookup2(const float* table) : thr(table) {
    if constexpr (L <= 5) {
      constexpr int kRegs = L <= 3 ? 1 : (1 << (L - 3));
      for (int r = 0; r < kRegs; ++r) {
        alignas(32) float buf[8];
        for (int j = 0; j < 8; ++j) buf[j] = (8 * r + j < (1 << L)) ? table[8 * r + j] : 0.f;
        t[r] = _mm256_load_ps(buf);
      }
    }
  }
  __m256 operator()(__m256i idx) const {
    if constexpr (L <= 3) {
      return _mm256_permutevar8x32_ps(t[0], idx);
    } else if constexpr (L <= 5) {
      const __m256 b3 = _mm256_castsi256_ps(_mm256_slli_epi32(idx, 28));  // bit 3 -> sign
      const __m256 lo = _mm256_blendv_ps(_mm256_permutevar8x32_ps(t[0], idx),
                                         _mm256_permutevar8x32_ps(t[1], idx), b3);
      if constexpr (L == 4) {
        return lo;
      } else {
        const __m256 hi = _mm256_blendv_ps(_mm256_permutevar8x32_ps(t[2], idx),
                                           _mm256_permutevar8x32_ps(t[3], idx), b3);
        return _mm256_blendv_ps(lo, hi, _mm256_castsi256_ps(_mm256_slli_epi32(idx, 27)));
      }
    } else {
      return _mm256_i32gather_ps(thr, idx, 4);
    }
  }
};

template <int L>
bool EncodeImpl2(const float* thr, const float* x, int64_t n, uint8_t* codes) {
  const Lookup2<L> look(thr);
  const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  const __m256 inf = _mm256_set1_ps(__builtin_inff());
  const __m256i one = _mm256_set1_epi32(1);
  int finite = 0xff;
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 v = _mm256_loadu_ps(x + i);
    finite &= _mm256_movemask_ps(_mm256_cmp_ps(_mm256_and_ps(v, absmask), inf, _CMP_LT_OQ));
    __m256i pos = _mm256_setzero_si256();
    for (int32_t step = (1 << L) >> 1; step >= 1; step >>= 1) {
      const __m256 t = look(_mm256_add_epi32(pos, _mm256_set1_epi32(step - 1)));
      const __m256i lt = _mm256_castps_si256(_mm256_cmp_ps(v, t, _CMP_LT_OQ));
      pos = _mm256_add_epi32(pos, _mm256_and_si256(lt, _mm256_set1_epi32(step)));
    }
    const __m256 t = look(pos);
    pos = _mm256_add_epi32(
        pos, _mm256_and_si256(_mm256_castps_si256(_mm256_cmp_ps(v, t, _CMP_LT_OQ)), one));
    StoreLowBytes(pos, codes + i);
  }
  bool nonfinite = finite != 0xff;
  for (; i < n; ++i) {
    if (!std::isfinite(x[i])) {
      nonfinite = true;
      codes[i] = 0;
    } else {
      codes[i] = static_cast<uint8_t>(ThresholdCount(thr, L, x[i]));
    }
  }
  return nonfinite;
}

// KeyBucketTable lookups: 32 entries in 4 registers, vpermps + blends on index bits 3 and 4.
inline __m256 Look32(const __m256* r, __m256i idx, __m256 bit3, __m256 bit4) {
  const __m256 lo = _mm256_blendv_ps(_mm256_permutevar8x32_ps(r[0], idx),
                                     _mm256_permutevar8x32_ps(r[1], idx), bit3);
  const __m256 hi = _mm256_blendv_ps(_mm256_permutevar8x32_ps(r[2], idx),
                                     _mm256_permutevar8x32_ps(r[3], idx), bit3);
  return _mm256_blendv_ps(lo, hi, bit4);
}

template <int K>
bool KeyBucketsImpl2(const KeyBucketTable& t, const float* x, int64_t n, uint8_t* codes) {
  __m256 base[4], th[K][4];
  for (int j = 0; j < 4; ++j) {
    base[j] = _mm256_castsi256_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(t.base + 8 * j)));
    for (int k = 0; k < K; ++k) th[k][j] = _mm256_loadu_ps(t.thr[k] + 8 * j);
  }
  const __m256 shift = _mm256_set1_ps(t.shift), zero = _mm256_setzero_ps();
  const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  const __m256 inf = _mm256_set1_ps(__builtin_inff());
  const __m256 nonpos = _mm256_castsi256_ps(_mm256_set1_epi32(t.code_nonpos));
  const __m128i count = _mm_cvtsi32_si128(t.key_shift);
  const __m256i k0 = _mm256_set1_epi32(t.k0), top = _mm256_set1_epi32(KeyBucketTable::kBuckets - 1);
  int finite = 0xff;
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256 y = _mm256_loadu_ps(x + i);
    if (t.add_shift) y = _mm256_add_ps(y, shift);
    finite &= _mm256_movemask_ps(_mm256_cmp_ps(_mm256_and_ps(y, absmask), inf, _CMP_LT_OQ));
    __m256i b = _mm256_sub_epi32(_mm256_srl_epi32(_mm256_castps_si256(y), count), k0);
    b = _mm256_min_epi32(_mm256_max_epi32(b, _mm256_setzero_si256()), top);
    const __m256 bit3 = _mm256_castsi256_ps(_mm256_slli_epi32(b, 28));
    const __m256 bit4 = _mm256_castsi256_ps(_mm256_slli_epi32(b, 27));
    __m256i c = _mm256_castps_si256(Look32(base, b, bit3, bit4));
    for (int k = 0; k < K; ++k) {  // a true compare is -1: c - #{thr <= y}
      c = _mm256_add_epi32(
          c, _mm256_castps_si256(_mm256_cmp_ps(Look32(th[k], b, bit3, bit4), y, _CMP_LE_OQ)));
    }
    const __m256 code = _mm256_blendv_ps(nonpos, _mm256_castsi256_ps(c),
                                         _mm256_cmp_ps(y, zero, _CMP_GT_OQ));
    StoreLowBytes(_mm256_castps_si256(code), codes + i);
  }
  bool nonfinite = finite != 0xff;
  for (; i < n; ++i) {
    const float y = t.add_shift ? x[i] + t.shift : x[i];
    if (!std::isfinite(y)) {
      nonfinite = true;
      codes[i] = 0;
    } else {
      codes[i] = static_cast<uint8_t>(KeyBucketCode(t, y));
    }
  }
  return nonfinite;
}

}  // namespace

bool EncodeLogKeyBucketsAvx2(const KeyBucketTable& t, const float* x, int64_t n, uint8_t* codes) {
  return t.per_bucket == 1 ? KeyBucketsImpl2<1>(t, x, n, codes) : KeyBucketsImpl2<2>(t, x, n, codes);
}

bool EncodeLogThresholdsAvx2(const float* thr, int log2_padded, const float* x, int64_t n,
                             uint8_t* codes) {
  switch (log2_padded) {
    case 0: return EncodeImpl2<0>(thr, x, n, codes);
    case 1: return EncodeImpl2<1>(thr, x, n, codes);
    case 2: return EncodeImpl2<2>(thr, x, n, codes);
    case 3: return EncodeImpl2<3>(thr, x, n, codes);
    case 4: return EncodeImpl2<4>(thr, x, n, codes);
    case 5: return EncodeImpl2<5>(thr, x, n, codes);
    case 6: return EncodeImpl2<6>(thr, x, n, codes);
    case 7: return EncodeImpl2<7>(thr, x, n, codes);
    default: return EncodeImpl2<8>(thr, x, n, codes);
  }
}

void EncodeUniformU8Avx2(float scale, float lo, float hi, int32_t zero_point, const float* x,
                         int64_t n, uint8_t* codes) {
  // quant's UniformQuantizer::Encode lane for lane (see the AVX-512 version).
  const __m256 s = _mm256_set1_ps(scale), vlo = _mm256_set1_ps(lo), vhi = _mm256_set1_ps(hi);
  const __m256 magic = _mm256_set1_ps(12582912.0f);
  const __m256i z = _mm256_set1_epi32(zero_point);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256 t = _mm256_div_ps(_mm256_loadu_ps(x + i), s);
    t = _mm256_and_ps(t, _mm256_cmp_ps(t, t, _CMP_ORD_Q));
    t = _mm256_min_ps(_mm256_max_ps(t, vlo), vhi);
    t = _mm256_sub_ps(_mm256_add_ps(t, magic), magic);
    StoreLowBytes(_mm256_add_epi32(_mm256_cvttps_epi32(t), z), codes + i);
  }
  for (; i < n; ++i) {
    float t = x[i] / scale;
    t = (t == t) ? t : 0.0f;
    t = t >= lo ? t : lo;
    t = t <= hi ? t : hi;
    codes[i] = static_cast<uint8_t>(static_cast<int32_t>(RoundHalfEvenSmall(t)) + zero_point);
  }
}

}  // namespace adalog::intk
