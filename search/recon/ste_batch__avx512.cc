// AVX-512 float UniformSteBatch without a record (compiled with AVX-512 flags and
// -ffp-contract=off, see search/CMakeLists.txt); same bytes as the reference, ste_batch_kernels.h.
#include <immintrin.h>

#include "search/recon/ste_batch.h"
#include "search/recon/qdrop.h"
#include "search/recon/ste_batch_kernels.h"

namespace adalog::search {

void UniformSteBatchF32Avx512(float* x, int64_t n, float s, int32_t z, int32_t cmin, int32_t cmax,
                              float* dx, float* ds) {
  const __m512 vs = _mm512_set1_ps(s);
  const __m512 lo = _mm512_set1_ps(static_cast<float>(cmin));
  const __m512 hi = _mm512_set1_ps(static_cast<float>(cmax));
  const __m512 zt = _mm512_set1_ps(static_cast<float>(z));
  const __m512 q_lo = _mm512_set1_ps(static_cast<float>(cmin - z));
  const __m512 q_hi = _mm512_set1_ps(static_cast<float>(cmax - z));
  const __m512 one = _mm512_set1_ps(1.0f), zero = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m512 t = _mm512_div_ps(_mm512_loadu_ps(x + i), vs);  // the reference's division
    // Round half to even, as nearbyint: keeps the sign of -0.3 -> -0, NaN stays NaN, |t| >= 2^23
    // is returned unchanged.
    const __m512 r = _mm512_roundscale_ps(t, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const __m512 off = _mm512_sub_ps(r, t);
    const __m512 c = _mm512_add_ps(r, zt);
    // Reference: c < lo ? kLow : (c > hi ? kHigh : kIn); ordered compares (NaN is kIn).
    const __mmask16 low = _mm512_cmp_ps_mask(c, lo, _CMP_LT_OQ);
    const __mmask16 high = static_cast<__mmask16>(_mm512_cmp_ps_mask(c, hi, _CMP_GT_OQ) & ~low);
    const __mmask16 in = static_cast<__mmask16>(~(low | high));
    const __m512 q = _mm512_mask_blend_ps(low, q_hi, q_lo);
    const __m512 x_in = _mm512_mul_ps(_mm512_add_ps(t, off), vs);
    const __m512 x_out = _mm512_mul_ps(q, vs);
    _mm512_storeu_ps(dx + i, _mm512_mask_blend_ps(in, zero, one));
    _mm512_storeu_ps(ds + i, _mm512_mask_blend_ps(in, q, off));
    _mm512_storeu_ps(x + i, _mm512_mask_blend_ps(in, x_out, x_in));
  }
  if (i < n) UniformSteBatch<float>(x + i, n - i, s, z, cmin, cmax, dx + i, ds + i, nullptr);
}

void LogSteBatchF32Avx512(float* x, int64_t n, float s, int bits, int num, int den, float shift,
                          bool shift_folded, const float* levels, const float* th, float* dx,
                          float* ds) {
  if (bits > 4) {
    LogSteBatchF32Ref(x, n, s, bits, num, den, shift, shift_folded, levels, th, dx, ds);
    return;
  }
  const int K = 1 << bits;
  float table[16] = {};
  for (int k = 0; k < K; ++k) table[k] = levels[k];
  const __m512 vtable = _mm512_loadu_ps(table);
  __m512 vth[16];
  for (int k = 0; k < K; ++k) vth[k] = _mm512_set1_ps(th[k]);
  const __m512 vs = _mm512_set1_ps(s), vshift = _mm512_set1_ps(shift);
  const __m512 back = _mm512_set1_ps(shift_folded ? 0.0f : shift);
  const __m512 kmin = _mm512_set1_ps(static_cast<float>(1e-15f)), one = _mm512_set1_ps(1.0f);
  const __m512 zero = _mm512_setzero_ps();
  const __m512i vk = _mm512_set1_epi32(K), ione = _mm512_set1_epi32(1);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m512 v = _mm512_add_ps(_mm512_loadu_ps(x + i), vshift);
    const __m512 ud = _mm512_div_ps(v, vs);
    const __mmask16 low = _mm512_cmp_ps_mask(ud, kmin, _CMP_LT_OQ);
    const __mmask16 high = _mm512_cmp_ps_mask(ud, one, _CMP_GT_OQ);
    if (_mm512_cmp_ps_mask(ud, ud, _CMP_UNORD_Q) != 0) {  // NaN: the reference's NaN bytes
      LogSteBatchF32Ref(x + i, 16, s, bits, num, den, shift, shift_folded, levels, th, dx + i,
                        ds + i);
      continue;
    }
    const __m512 u = _mm512_mask_blend_ps(low, _mm512_mask_blend_ps(high, ud, one), kmin);
    __m512i r = _mm512_setzero_si512();
    for (int k = 0; k < K; ++k) {
      r = _mm512_mask_add_epi32(r, _mm512_cmp_ps_mask(u, vth[k], _CMP_LE_OQ), r, ione);
    }
    const __mmask16 zr = _mm512_cmpge_epi32_mask(r, vk);
    const __m512 level = _mm512_permutexvar_ps(_mm512_mask_blend_epi32(zr, r, _mm512_setzero_si512()),
                                               vtable);
    const __m512 xq = _mm512_mul_ps(level, vs);
    const __m512 dx_in = _mm512_div_ps(xq, _mm512_mul_ps(u, vs));
    const __m512 ds_clamped = _mm512_div_ps(xq, vs);
    const __mmask16 in = static_cast<__mmask16>(~(zr | high | low));
    const __mmask16 clamped = static_cast<__mmask16>(~zr & (high | low));
    _mm512_storeu_ps(dx + i, _mm512_mask_blend_ps(in, zero, dx_in));
    _mm512_storeu_ps(ds + i, _mm512_mask_blend_ps(clamped, zero, ds_clamped));
    _mm512_storeu_ps(x + i, _mm512_mask_blend_ps(zr, _mm512_sub_ps(xq, back),
                                                 _mm512_sub_ps(zero, back)));
  }
  if (i < n) {
    LogSteBatchF32Ref(x + i, n - i, s, bits, num, den, shift, shift_folded, levels, th, dx + i,
                      ds + i);
  }
}

namespace {

// SplitMix64 (qdrop.h) on 8 64-bit lanes: the same additions, shifts, xors and low-64-bit
// products.
inline __m512i SplitMix64x8(__m512i x) {
  x = _mm512_add_epi64(x, _mm512_set1_epi64(static_cast<int64_t>(0x9E3779B97F4A7C15ull)));
  x = _mm512_mullo_epi64(_mm512_xor_si512(x, _mm512_srli_epi64(x, 30)),
                         _mm512_set1_epi64(static_cast<int64_t>(0xBF58476D1CE4E5B9ull)));
  x = _mm512_mullo_epi64(_mm512_xor_si512(x, _mm512_srli_epi64(x, 27)),
                         _mm512_set1_epi64(static_cast<int64_t>(0x94D049BB133111EBull)));
  return _mm512_xor_si512(x, _mm512_srli_epi64(x, 31));
}

}  // namespace

void QDropBitsAvx512(uint64_t key, uint64_t threshold, int site, int64_t e0, int64_t n,
                     uint8_t* out) {
  const __m512i vsite = _mm512_set1_epi64(static_cast<int64_t>(static_cast<uint64_t>(site) << 48));
  const __m512i vkey = _mm512_set1_epi64(static_cast<int64_t>(key));
  const __m512i vthr = _mm512_set1_epi64(static_cast<int64_t>(threshold));
  const __m512i lane = _mm512_setr_epi64(0, 1, 2, 3, 4, 5, 6, 7);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m512i e = _mm512_add_epi64(_mm512_set1_epi64(e0 + i), lane);
    const __m512i h = SplitMix64x8(_mm512_xor_si512(vkey, SplitMix64x8(_mm512_xor_si512(vsite, e))));
    const __mmask8 d = _mm512_cmplt_epu64_mask(_mm512_srli_epi64(h, 11), vthr);
    // One byte per lane: 0 or 1.
    _mm_storel_epi64(reinterpret_cast<__m128i*>(out + i),
                     _mm_maskz_set1_epi8(static_cast<__mmask16>(d), 1));
  }
  if (i < n) QDropBitsRef(key, threshold, site, e0 + i, n - i, out + i);
}

}  // namespace adalog::search
