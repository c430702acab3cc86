// AVX2 AxpyF32F64 (compiled with AVX2 flags and -ffp-contract=off, see search/CMakeLists.txt).
#include <immintrin.h>

#include "search/axpy.h"

namespace adalog::search {

void AxpyF32F64Avx2(double* a, double d, const float* w, int n) {
  const __m256d vd = _mm256_set1_pd(d);
  int i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256d w0 = _mm256_cvtps_pd(_mm_loadu_ps(w + i));
    const __m256d w1 = _mm256_cvtps_pd(_mm_loadu_ps(w + i + 4));
    _mm256_storeu_pd(a + i, _mm256_add_pd(_mm256_loadu_pd(a + i), _mm256_mul_pd(vd, w0)));
    _mm256_storeu_pd(a + i + 4, _mm256_add_pd(_mm256_loadu_pd(a + i + 4), _mm256_mul_pd(vd, w1)));
  }
  for (; i < n; ++i) a[i] += d * static_cast<double>(w[i]);
}

}  // namespace adalog::search
