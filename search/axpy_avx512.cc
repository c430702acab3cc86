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

}  // namespace adalog::search
