// AVX-512 Gram tile (compiled with AVX-512 flags); the products are exact in double, so the
// fused multiply-adds give the reference's bits (search/gram.h).
#include <immintrin.h>

#include "search/gram.h"

namespace adalog::search {

namespace {

// One tile of MI rows (1..kGramTileM) and nj columns (1..kGramTileN): the columns past nj are
// loaded as zeros (masked) and never stored. Each element is one accumulator summed over t in
// ascending order, as the reference.
template <int MI>
void GramTileRows(const float* a, int64_t lda, const float* b, int64_t ldb, int64_t T, int i0, int j0,
                  int nj, double* out, int64_t ldo, bool accumulate) {
  const __mmask16 m0 = static_cast<__mmask16>(nj >= 16 ? 0xFFFF : (1u << nj) - 1u);
  const __mmask16 m1 = static_cast<__mmask16>(nj >= 32 ? 0xFFFF : nj <= 16 ? 0 : (1u << (nj - 16)) - 1u);
  __m512d c[MI][4];
  for (int i = 0; i < MI; ++i)
    for (int j = 0; j < 4; ++j) {
      const int left = nj - 8 * j;
      const __mmask8 m = static_cast<__mmask8>(left >= 8 ? 0xFF : left <= 0 ? 0 : (1u << left) - 1u);
      c[i][j] = accumulate ? _mm512_maskz_loadu_pd(m, out + (i0 + i) * ldo + j0 + 8 * j) : _mm512_setzero_pd();
    }
  for (int64_t t = 0; t < T; ++t) {
    const float* br = b + t * ldb + j0;
    const float* ar = a + t * lda + i0;
    const __m512 b01 = _mm512_maskz_loadu_ps(m0, br), b23 = _mm512_maskz_loadu_ps(m1, br + 16);
    const __m512d bv[4] = {_mm512_cvtps_pd(_mm512_castps512_ps256(b01)),
                           _mm512_cvtps_pd(_mm512_extractf32x8_ps(b01, 1)),
                           _mm512_cvtps_pd(_mm512_castps512_ps256(b23)),
                           _mm512_cvtps_pd(_mm512_extractf32x8_ps(b23, 1))};
    for (int i = 0; i < MI; ++i) {
      const __m512d av = _mm512_set1_pd(static_cast<double>(ar[i]));
      for (int j = 0; j < 4; ++j) c[i][j] = _mm512_fmadd_pd(av, bv[j], c[i][j]);
    }
  }
  for (int j = 0; j < 4; ++j) {
    const int left = nj - 8 * j;
    if (left <= 0) break;
    const __mmask8 m = static_cast<__mmask8>(left >= 8 ? 0xFF : (1u << left) - 1u);
    for (int i = 0; i < MI; ++i) _mm512_mask_storeu_pd(out + (i0 + i) * ldo + j0 + 8 * j, m, c[i][j]);
  }
}

}  // namespace

// Any tile shape (mi <= kGramTileM, nj <= kGramTileN): the masked lanes keep the edge tiles on the
// vector path (Swin's 49-token windows make most tiles edge tiles).
void GramTileAvx512(const float* a, int64_t lda, const float* b, int64_t ldb, int64_t T, int i0,
                    int mi, int j0, int nj, double* out, int64_t ldo, bool accumulate) {
  static_assert(kGramTileM == 6 && kGramTileN == 32, "GramTileRows is written for 6 x 32 tiles");
  switch (mi) {
    case 6: return GramTileRows<6>(a, lda, b, ldb, T, i0, j0, nj, out, ldo, accumulate);
    case 5: return GramTileRows<5>(a, lda, b, ldb, T, i0, j0, nj, out, ldo, accumulate);
    case 4: return GramTileRows<4>(a, lda, b, ldb, T, i0, j0, nj, out, ldo, accumulate);
    case 3: return GramTileRows<3>(a, lda, b, ldb, T, i0, j0, nj, out, ldo, accumulate);
    case 2: return GramTileRows<2>(a, lda, b, ldb, T, i0, j0, nj, out, ldo, accumulate);
    case 1: return GramTileRows<1>(a, lda, b, ldb, T, i0, j0, nj, out, ldo, accumulate);
    default: return GramTileRef(a, lda, b, ldb, T, i0, mi, j0, nj, out, ldo, accumulate);
  }
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
