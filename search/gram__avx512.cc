// AVX-512 Gram tile (compiled with AVX-512 flags); the products are exact in double, so the
// fused multiply-adds give the reference's bits (search/gram.h).
#include <immintrin.h>

#include "search/gram.h"

namespace adalog::search {

void GramTileAvx512(const float* a, int64_t lda, const float* b, int64_t ldb, int64_t T, int i0,
                    int mi, int j0, int nj, double* out, int64_t ldo) {
  if (mi != kGramTileM || nj != kGramTileN) {
    GramTileRef(a, lda, b, ldb, T, i0, mi, j0, nj, out, ldo);
    return;
  }
  __m512d c[kGramTileM][4];
  for (int i = 0; i < kGramTileM; ++i)
    for (int j = 0; j < 4; ++j) c[i][j] = _mm512_setzero_pd();
  for (int64_t t = 0; t < T; ++t) {
    const float* br = b + t * ldb + j0;
    const float* ar = a + t * lda + i0;
    const __m512 b01 = _mm512_loadu_ps(br), b23 = _mm512_loadu_ps(br + 16);
    const __m512d bv[4] = {_mm512_cvtps_pd(_mm512_castps512_ps256(b01)),
                           _mm512_cvtps_pd(_mm512_extractf32x8_ps(b01, 1)),
                           _mm512_cvtps_pd(_mm512_castps512_ps256(b23)),
                           _mm512_cvtps_pd(_mm512_extractf32x8_ps(b23, 1))};
    for (int i = 0; i < kGramTileM; ++i) {
      const __m512d av = _mm512_set1_pd(static_cast<double>(ar[i]));
      for (int j = 0; j < 4; ++j) c[i][j] = _mm512_fmadd_pd(av, bv[j], c[i][j]);
    }
  }
  for (int i = 0; i < kGramTileM; ++i)
    for (int j = 0; j < 4; ++j) _mm512_storeu_pd(out + (i0 + i) * ldo + j0 + 8 * j, c[i][j]);
}

void CodeRowAxpyAvx512(int32_t* v, int32_t e, const uint8_t* c, int32_t z, int n) {
  const __m512i ve = _mm512_set1_epi32(e), vz = _mm512_set1_epi32(z);
  int j = 0;
  for (; j + 16 <= n; j += 16) {
    const __m512i cv = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(c + j)));
    const __m512i d = _mm512_mullo_epi32(ve, _mm512_sub_epi32(cv, vz));
    _mm512_storeu_si512(v + j, _mm512_add_epi32(_mm512_loadu_si512(v + j), d));
  }
  for (; j < n; ++j) v[j] += e * (static_cast<int32_t>(c[j]) - z);
}

}  // namespace adalog::search
