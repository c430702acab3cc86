// AVX-512 AxpyF32F64 (compiled with AVX-512 flags and -ffp-contract=off, see
// search/CMakeLists.txt).
#include <immintrin.h>

#include "search/axpy.h"

namespace adalog::search {

void AxpyF32F64Avx512(double* a, double d, const float* w, int n) {
  const __m512d vd = _mm512_set1_pd(d);
  int i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m512d w0 = _mm512_cvtps_pd(_mm256_loadu_ps(w + i));
    const __m512d w1 = _mm512_cvtps_pd(_mm256_loadu_ps(w + i + 8));
    _mm512_storeu_pd(a + i, _mm512_add_pd(_mm512_loadu_pd(a + i), _mm512_mul_pd(vd, w0)));
    _mm512_storeu_pd(a + i + 8, _mm512_add_pd(_mm512_loadu_pd(a + i + 8), _mm512_mul_pd(vd, w1)));
  }
  for (; i < n; ++i) a[i] += d * static_cast<double>(w[i]);
}

void AxpyF64Avx512(double* a, double d, const double* g, int n) {
  const __m512d vd = _mm512_set1_pd(d);
  int i = 0;
  for (; i + 8 <= n; i += 8)
    _mm512_storeu_pd(a + i, _mm512_add_pd(_mm512_loadu_pd(a + i), _mm512_mul_pd(vd, _mm512_loadu_pd(g + i))));
  for (; i < n; ++i) a[i] += d * g[i];
}

void RowUpdateAvx512(double* a, const float* w, int ldw, const int32_t* k, const double* d,
                     int cnt, int n) {
  int i = 0;
  // 64 doubles (8 registers) of the row at a time, all updates applied in list order.
  for (; i + 64 <= n; i += 64) {
    __m512d acc[8];
    for (int j = 0; j < 8; ++j) acc[j] = _mm512_loadu_pd(a + i + 8 * j);
    for (int e = 0; e < cnt; ++e) {
      const __m512d vd = _mm512_set1_pd(d[e]);
      const float* wr = w + static_cast<int64_t>(k[e]) * ldw + i;
      for (int j = 0; j < 8; ++j)
        acc[j] = _mm512_add_pd(acc[j], _mm512_mul_pd(vd, _mm512_cvtps_pd(_mm256_loadu_ps(wr + 8 * j))));
    }
    for (int j = 0; j < 8; ++j) _mm512_storeu_pd(a + i + 8 * j, acc[j]);
  }
  for (; i + 8 <= n; i += 8) {
    __m512d acc = _mm512_loadu_pd(a + i);
    for (int e = 0; e < cnt; ++e) {
      const float* wr = w + static_cast<int64_t>(k[e]) * ldw + i;
      acc = _mm512_add_pd(acc, _mm512_mul_pd(_mm512_set1_pd(d[e]), _mm512_cvtps_pd(_mm256_loadu_ps(wr))));
    }
    _mm512_storeu_pd(a + i, acc);
  }
  for (; i < n; ++i)
    for (int e = 0; e < cnt; ++e) a[i] += d[e] * static_cast<double>(w[static_cast<int64_t>(k[e]) * ldw + i]);
}

}  // namespace adalog::search
