// Float islands (LayerNorm, Softmax, GELU erf/tanh, Add) with AVX-512F: 16 lanes, masked tails.
// Equations and tolerances: runtime/kernels/float_kernels.h, float_kernels_tolerance.h.
// GCC 12 reports its own _mm512_undefined_ps() in intrinsics (min/max/roundscale/scalef) as
// maybe-uninitialized (GCC bug 105593, fixed in GCC 13); the header region is exempted.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <cmath>

#include "runtime/kernels/float_kernels.h"

namespace adalog {
namespace {

inline __mmask16 TailMask(int64_t remaining) {
  return remaining >= 16 ? static_cast<__mmask16>(0xFFFF)
                         : static_cast<__mmask16>((1u << remaining) - 1u);
}

// exp(x): x = n ln2 + r, |r| <= ln2/2, e^r by degree-7 Taylor (rel err < 1e-8 before rounding),
// 2^n applied by scalef (handles underflow to 0 / denormals).
inline __m512 Exp(__m512 x) {
  x = _mm512_min_ps(x, _mm512_set1_ps(88.7228f));
  x = _mm512_max_ps(x, _mm512_set1_ps(-104.f));
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
  __m512 p = _mm512_set1_ps(1.f / 5040.f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.f / 720.f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.f / 120.f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.f / 24.f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.f / 6.f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.f));
  return _mm512_scalef_ps(p, n);
}

// erf(x) by Abramowitz-Stegun 7.1.26 on |x|, sign restored: |abs err| < 1.5e-7.
inline __m512 Erf(__m512 x) {
  const __m512 sign_bit = _mm512_castsi512_ps(_mm512_set1_epi32(static_cast<int>(0x80000000u)));
  const __m512 ax = _mm512_andnot_ps(sign_bit, x);
  const __m512 t = _mm512_div_ps(_mm512_set1_ps(1.f),
                                 _mm512_fmadd_ps(_mm512_set1_ps(0.3275911f), ax, _mm512_set1_ps(1.f)));
  __m512 p = _mm512_set1_ps(1.061405429f);
  p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(-1.453152027f));
  p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(1.421413741f));
  p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(-0.284496736f));
  p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(0.254829592f));
  p = _mm512_mul_ps(p, t);
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
  return _mm512_div_ps(x, _mm512_add_ps(_mm512_set1_ps(1.f), e));
}

void LayerNorm(const float* x, float* y, int64_t rows, int n, const float* gamma,
               const float* beta, float eps) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * n;
    float* yr = y + r * n;
    __m512 acc = _mm512_setzero_ps();
    for (int i = 0; i < n; i += 16) {
      acc = _mm512_add_ps(acc, _mm512_maskz_loadu_ps(TailMask(n - i), xr + i));
    }
    const float mean = _mm512_reduce_add_ps(acc) / static_cast<float>(n);
    const __m512 vmean = _mm512_set1_ps(mean);
    __m512 sq = _mm512_setzero_ps();
    for (int i = 0; i < n; i += 16) {
      const __mmask16 m = TailMask(n - i);
      const __m512 d = _mm512_maskz_sub_ps(m, _mm512_maskz_loadu_ps(m, xr + i), vmean);
      sq = _mm512_fmadd_ps(d, d, sq);
    }
    const float var = _mm512_reduce_add_ps(sq) / static_cast<float>(n);
    const __m512 inv = _mm512_set1_ps(1.f / std::sqrt(var + eps));
    for (int i = 0; i < n; i += 16) {
      const __mmask16 m = TailMask(n - i);
      const __m512 d = _mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, xr + i), vmean), inv);
      const __m512 o = _mm512_fmadd_ps(d, _mm512_maskz_loadu_ps(m, gamma + i),
                                       _mm512_maskz_loadu_ps(m, beta + i));
      _mm512_mask_storeu_ps(yr + i, m, o);
    }
  }
}

void Softmax(const float* x, float* y, int64_t rows, int n) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * n;
    float* yr = y + r * n;
    __m512 vmax = _mm512_set1_ps(-INFINITY);
    for (int i = 0; i < n; i += 16) {
      vmax = _mm512_max_ps(vmax, _mm512_mask_loadu_ps(_mm512_set1_ps(-INFINITY), TailMask(n - i), xr + i));
    }
    const __m512 m = _mm512_set1_ps(_mm512_reduce_max_ps(vmax));
    __m512 sum = _mm512_setzero_ps();
    for (int i = 0; i < n; i += 16) {
      const __mmask16 k = TailMask(n - i);
      const __m512 e = _mm512_maskz_mov_ps(k, Exp(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, xr + i), m)));
      _mm512_mask_storeu_ps(yr + i, k, e);
      sum = _mm512_add_ps(sum, e);
    }
    const __m512 inv = _mm512_set1_ps(1.f / _mm512_reduce_add_ps(sum));
    for (int i = 0; i < n; i += 16) {
      const __mmask16 k = TailMask(n - i);
      _mm512_mask_storeu_ps(yr + i, k, _mm512_mul_ps(_mm512_maskz_loadu_ps(k, yr + i), inv));
    }
  }
}

void GeluErf(const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 k = TailMask(n - i);
    _mm512_mask_storeu_ps(y + i, k, GeluErfVec(_mm512_maskz_loadu_ps(k, x + i)));
  }
}

void GeluTanh(const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 k = TailMask(n - i);
    _mm512_mask_storeu_ps(y + i, k, GeluTanhVec(_mm512_maskz_loadu_ps(k, x + i)));
  }
}

void Add(const float* a, const float* b, float* y, int64_t n) {
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 k = TailMask(n - i);
    _mm512_mask_storeu_ps(y + i, k, _mm512_add_ps(_mm512_maskz_loadu_ps(k, a + i),
                                                  _mm512_maskz_loadu_ps(k, b + i)));
  }
}

}  // namespace

const FloatKernels& FloatKernelsAvx512() {
  static const FloatKernels k = {"float_islands__avx512", IsaLevel::kAvx512, LayerNorm, Softmax,
                                 GeluErf, GeluTanh, Add};
  return k;
}

}  // namespace adalog
