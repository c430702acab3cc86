// AVX-512 float UniformSteBatch without a record (compiled with AVX-512 flags and
// -ffp-contract=off, see search/CMakeLists.txt); same bytes as the reference, ste_batch_kernels.h.
#include <immintrin.h>

#include "search/recon/ste_batch.h"
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

}  // namespace adalog::search
