// Float islands (LayerNorm, Softmax, GELU erf/tanh, Add) with AVX2+FMA: 8 lanes, scalar-free
// tails through maskload/maskstore. Equations: runtime/kernels/float_kernels.h.
#include <immintrin.h>

#include <cmath>

#include "runtime/kernels/float_kernels.h"
#include "runtime/kernels/vec_math__avx2.h"

namespace adalog {
namespace {

inline float HSum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

inline float HMax(__m256 v) {
  __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_max_ps(s, _mm_movehl_ps(s, s));
  s = _mm_max_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// Mask with the first `remaining` (< 8) lanes set, for maskload/maskstore.
inline __m256i TailMask(int64_t remaining) {
  const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(remaining)), idx);
}

using vec256::Exp;
using vec256::Recip;

inline __m256 Erf(__m256 x) {
  const __m256 sign_bit = _mm256_set1_ps(-0.f);
  const __m256 ax = _mm256_andnot_ps(sign_bit, x);
  const __m256 p = vec256::ErfPoly(Recip(vec256::ErfDenominator(ax)));
  const __m256 e = Exp(_mm256_sub_ps(_mm256_setzero_ps(), _mm256_mul_ps(ax, ax)));
  const __m256 y = _mm256_fnmadd_ps(p, e, _mm256_set1_ps(1.f));
  return _mm256_or_ps(y, _mm256_and_ps(sign_bit, x));
}

inline __m256 GeluErfVec(__m256 x) {
  const __m256 e = Erf(_mm256_mul_ps(x, _mm256_set1_ps(0.70710678118654752f)));
  return _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(0.5f), x), _mm256_add_ps(_mm256_set1_ps(1.f), e));
}

inline __m256 GeluTanhVec(__m256 x) {
  const __m256 x2 = _mm256_mul_ps(x, x);
  const __m256 inner = _mm256_fmadd_ps(_mm256_mul_ps(x2, _mm256_set1_ps(0.044715f)), x, x);
  const __m256 e = Exp(_mm256_mul_ps(inner, _mm256_set1_ps(-2.f * 0.79788456080286536f)));
  return _mm256_mul_ps(x, Recip(_mm256_add_ps(_mm256_set1_ps(1.f), e)));
}

void LayerNorm(const float* x, float* y, int64_t rows, int n, const float* gamma,
               const float* beta, float eps) {
  const int full = n & ~7;
  const __m256i tail = TailMask(n - full);
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * n;
    float* yr = y + r * n;
    __m256 acc = _mm256_setzero_ps();
    for (int i = 0; i < full; i += 8) acc = _mm256_add_ps(acc, _mm256_loadu_ps(xr + i));
    if (full < n) acc = _mm256_add_ps(acc, _mm256_maskload_ps(xr + full, tail));
    const float mean = HSum(acc) / static_cast<float>(n);
    const __m256 vmean = _mm256_set1_ps(mean);
    __m256 sq = _mm256_setzero_ps();
    for (int i = 0; i < full; i += 8) {
      const __m256 d = _mm256_sub_ps(_mm256_loadu_ps(xr + i), vmean);
      sq = _mm256_fmadd_ps(d, d, sq);
    }
    if (full < n) {
      const __m256 d = _mm256_and_ps(_mm256_sub_ps(_mm256_maskload_ps(xr + full, tail), vmean),
                                     _mm256_castsi256_ps(tail));
      sq = _mm256_fmadd_ps(d, d, sq);
    }
    const float var = HSum(sq) / static_cast<float>(n);
    const __m256 inv = _mm256_set1_ps(1.f / std::sqrt(var + eps));
    for (int i = 0; i < full; i += 8) {
      const __m256 d = _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(xr + i), vmean), inv);
      _mm256_storeu_ps(yr + i, _mm256_fmadd_ps(d, _mm256_loadu_ps(gamma + i), _mm256_loadu_ps(beta + i)));
    }
    if (full < n) {
      const __m256 d = _mm256_mul_ps(_mm256_sub_ps(_mm256_maskload_ps(xr + full, tail), vmean), inv);
      _mm256_maskstore_ps(yr + full, tail,
                          _mm256_fmadd_ps(d, _mm256_maskload_ps(gamma + full, tail),
                                          _mm256_maskload_ps(beta + full, tail)));
    }
  }
}

void Softmax(const float* x, float* y, int64_t rows, int n) {
  const int full = n & ~7;
  const __m256i tail = TailMask(n - full);
  const __m256 neg_inf = _mm256_set1_ps(-INFINITY);
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * n;
    float* yr = y + r * n;
    __m256 vmax = neg_inf;
    for (int i = 0; i < full; i += 8) vmax = _mm256_max_ps(vmax, _mm256_loadu_ps(xr + i));
    if (full < n) {
      vmax = _mm256_max_ps(vmax, _mm256_blendv_ps(neg_inf, _mm256_maskload_ps(xr + full, tail),
                                                  _mm256_castsi256_ps(tail)));
    }
    const __m256 m = _mm256_set1_ps(HMax(vmax));
    __m256 sum = _mm256_setzero_ps();
    for (int i = 0; i < full; i += 8) {
      const __m256 e = Exp(_mm256_sub_ps(_mm256_loadu_ps(xr + i), m));
      _mm256_storeu_ps(yr + i, e);
      sum = _mm256_add_ps(sum, e);
    }
    if (full < n) {
      const __m256 e = _mm256_and_ps(Exp(_mm256_sub_ps(_mm256_maskload_ps(xr + full, tail), m)),
                                     _mm256_castsi256_ps(tail));
      _mm256_maskstore_ps(yr + full, tail, e);
      sum = _mm256_add_ps(sum, e);
    }
    const __m256 inv = _mm256_set1_ps(1.f / HSum(sum));
    for (int i = 0; i < full; i += 8) _mm256_storeu_ps(yr + i, _mm256_mul_ps(_mm256_loadu_ps(yr + i), inv));
    if (full < n) {
      _mm256_maskstore_ps(yr + full, tail, _mm256_mul_ps(_mm256_maskload_ps(yr + full, tail), inv));
    }
  }
}

template <__m256 (*F)(__m256)>
void Eltwise(const float* x, float* y, int64_t n) {
  const int64_t full = n & ~int64_t{7};
  for (int64_t i = 0; i < full; i += 8) _mm256_storeu_ps(y + i, F(_mm256_loadu_ps(x + i)));
  if (full < n) {
    const __m256i tail = TailMask(n - full);
    _mm256_maskstore_ps(y + full, tail, F(_mm256_maskload_ps(x + full, tail)));
  }
}

void Add(const float* a, const float* b, float* y, int64_t n) {
  const int64_t full = n & ~int64_t{7};
  for (int64_t i = 0; i < full; i += 8) {
    _mm256_storeu_ps(y + i, _mm256_add_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i)));
  }
  if (full < n) {
    const __m256i tail = TailMask(n - full);
    _mm256_maskstore_ps(y + full, tail, _mm256_add_ps(_mm256_maskload_ps(a + full, tail),
                                                      _mm256_maskload_ps(b + full, tail)));
  }
}

}  // namespace

const FloatKernels& FloatKernelsAvx2() {
  static const FloatKernels k = {"float_islands__avx2", IsaLevel::kAvx2, LayerNorm, Softmax,
                                 Eltwise<GeluErfVec>, Eltwise<GeluTanhVec>, Add};
  return k;
}

}  // namespace adalog
