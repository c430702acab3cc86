// Float islands (LayerNorm, Softmax, GELU erf/tanh, Add) with AVX-512F: 16 lanes, plain loads and
// stores for whole vectors, masks only for the tail (masked stores are slow on Zen 4: GELU ran 3.6x
// slower with every store masked).
// Equations and tolerances: runtime/kernels/float_kernels.h, float_kernels_tolerance.h.
// GCC 12 reports its own _mm512_undefined_ps() in intrinsics (min/max/roundscale/scalef) as
// maybe-uninitialized (GCC bug 105593, fixed in GCC 13); the header region is exempted.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <cmath>

#include "runtime/kernels/float_kernels.h"
#include "runtime/kernels/vec_math__avx512.h"

namespace adalog {
namespace {

using vec512::Exp;
using vec512::Recip;
using vec512::TailMask;

// erf(x) by Abramowitz-Stegun 7.1.26 on |x|, sign restored: |abs err| < 1.5e-7.
inline __m512 Erf(__m512 x) {
  const __m512 sign_bit = _mm512_castsi512_ps(_mm512_set1_epi32(static_cast<int>(0x80000000u)));
  const __m512 ax = _mm512_andnot_ps(sign_bit, x);
  const __m512 p = vec512::ErfPoly(Recip(vec512::ErfDenominator(ax)));
  const __m512 e = Exp(_mm512_sub_ps(_mm512_setzero_ps(), _mm512_mul_ps(ax, ax)));
  const __m512 y = _mm512_fnmadd_ps(p, e, _mm512_set1_ps(1.f));
  return _mm512_or_ps(y, _mm512_and_ps(sign_bit, x));
}

inline __m512 GeluErfVec(__m512 x) {
  const __m512 e = Erf(_mm512_mul_ps(x, _mm512_set1_ps(0.70710678118654752f)));
  return _mm512_mul_ps(_mm512_mul_ps(_mm512_set1_ps(0.5f), x), _mm512_add_ps(_mm512_set1_ps(1.f), e));
}

// 0.5 x (1 + tanh(u)) == x / (1 + exp(-2u)), u = sqrt(2/pi) (x + 0.044715 x^3).
inline __m512 GeluTanhVec(__m512 x) {
  const __m512 x2 = _mm512_mul_ps(x, x);
  const __m512 inner = _mm512_fmadd_ps(_mm512_mul_ps(x2, _mm512_set1_ps(0.044715f)), x, x);
  const __m512 e = Exp(_mm512_mul_ps(inner, _mm512_set1_ps(-2.f * 0.79788456080286536f)));
  return _mm512_mul_ps(x, Recip(_mm512_add_ps(_mm512_set1_ps(1.f), e)));
}

void LayerNorm(const float* x, float* y, int64_t rows, int n, const float* gamma,
               const float* beta, float eps) {
  const int full = n & ~15;
  const __mmask16 tail = TailMask(n - full);
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * n;
    float* yr = y + r * n;
    __m512 acc = _mm512_setzero_ps();
    for (int i = 0; i < full; i += 16) acc = _mm512_add_ps(acc, _mm512_loadu_ps(xr + i));
    if (full < n) acc = _mm512_add_ps(acc, _mm512_maskz_loadu_ps(tail, xr + full));
    const float mean = _mm512_reduce_add_ps(acc) / static_cast<float>(n);
    const __m512 vmean = _mm512_set1_ps(mean);
    __m512 sq = _mm512_setzero_ps();
    for (int i = 0; i < full; i += 16) {
      const __m512 d = _mm512_sub_ps(_mm512_loadu_ps(xr + i), vmean);
      sq = _mm512_fmadd_ps(d, d, sq);
    }
    if (full < n) {
      const __m512 d = _mm512_maskz_sub_ps(tail, _mm512_maskz_loadu_ps(tail, xr + full), vmean);
      sq = _mm512_fmadd_ps(d, d, sq);
    }
    const float var = _mm512_reduce_add_ps(sq) / static_cast<float>(n);
    const __m512 inv = _mm512_set1_ps(1.f / std::sqrt(var + eps));
    for (int i = 0; i < full; i += 16) {
      const __m512 d = _mm512_mul_ps(_mm512_sub_ps(_mm512_loadu_ps(xr + i), vmean), inv);
      _mm512_storeu_ps(yr + i, _mm512_fmadd_ps(d, _mm512_loadu_ps(gamma + i), _mm512_loadu_ps(beta + i)));
    }
    if (full < n) {
      const __m512 d = _mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(tail, xr + full), vmean), inv);
      _mm512_mask_storeu_ps(yr + full, tail,
                            _mm512_fmadd_ps(d, _mm512_maskz_loadu_ps(tail, gamma + full),
                                            _mm512_maskz_loadu_ps(tail, beta + full)));
    }
  }
}

void Softmax(const float* x, float* y, int64_t rows, int n) {
  const int full = n & ~15;
  const __mmask16 tail = TailMask(n - full);
  const __m512 neg_inf = _mm512_set1_ps(-INFINITY);
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * n;
    float* yr = y + r * n;
    __m512 vmax = neg_inf;
    for (int i = 0; i < full; i += 16) vmax = _mm512_max_ps(vmax, _mm512_loadu_ps(xr + i));
    if (full < n) vmax = _mm512_max_ps(vmax, _mm512_mask_loadu_ps(neg_inf, tail, xr + full));
    const __m512 m = _mm512_set1_ps(_mm512_reduce_max_ps(vmax));
    __m512 sum = _mm512_setzero_ps();
    for (int i = 0; i < full; i += 16) {
      const __m512 e = Exp(_mm512_sub_ps(_mm512_loadu_ps(xr + i), m));
      _mm512_storeu_ps(yr + i, e);
      sum = _mm512_add_ps(sum, e);
    }
    if (full < n) {
      const __m512 e = _mm512_maskz_mov_ps(tail, Exp(_mm512_sub_ps(_mm512_maskz_loadu_ps(tail, xr + full), m)));
      _mm512_mask_storeu_ps(yr + full, tail, e);
      sum = _mm512_add_ps(sum, e);
    }
    const __m512 inv = _mm512_set1_ps(1.f / _mm512_reduce_add_ps(sum));
    for (int i = 0; i < full; i += 16) _mm512_storeu_ps(yr + i, _mm512_mul_ps(_mm512_loadu_ps(yr + i), inv));
    if (full < n) {
      _mm512_mask_storeu_ps(yr + full, tail, _mm512_mul_ps(_mm512_maskz_loadu_ps(tail, yr + full), inv));
    }
  }
}

// Full vectors use plain loads/stores; only the tail is masked (masked stores are slow on Zen 4).
template <__m512 (*F)(__m512)>
void Eltwise(const float* x, float* y, int64_t n) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, F(_mm512_loadu_ps(x + i)));
  if (i < n) {
    const __mmask16 k = TailMask(n - i);
    _mm512_mask_storeu_ps(y + i, k, F(_mm512_maskz_loadu_ps(k, x + i)));
  }
}

void Add(const float* a, const float* b, float* y, int64_t n) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    _mm512_storeu_ps(y + i, _mm512_add_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i)));
  }
  if (i < n) {
    const __mmask16 k = TailMask(n - i);
    _mm512_mask_storeu_ps(y + i, k, _mm512_add_ps(_mm512_maskz_loadu_ps(k, a + i),
                                                  _mm512_maskz_loadu_ps(k, b + i)));
  }
}

}  // namespace

const FloatKernels& FloatKernelsAvx512() {
  static const FloatKernels k = {"float_islands__avx512", IsaLevel::kAvx512, LayerNorm, Softmax,
                                 Eltwise<GeluErfVec>, Eltwise<GeluTanhVec>, Add};
  return k;
}

}  // namespace adalog
