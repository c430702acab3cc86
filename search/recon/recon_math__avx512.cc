// AVX-512 float kernels of the block-reconstruction training math (see recon_math_kernels.h):
// exp and the Abramowitz-Stegun erf of the runtime's float islands (runtime/kernels/
// vec_math__avx512.h), a log by getexp / getmant and an atanh series, true divisions where a
// reciprocal would need d >= 1. Full vectors load and store plainly; only the tail is masked.
// GCC 12 reports its own _mm512_undefined_ps() as maybe-uninitialized (GCC bug 105593); the
// file is compiled with -Wno-maybe-uninitialized (search/CMakeLists.txt).
#include <immintrin.h>

#include <cmath>

#include "quant/adaround.h"
#include "runtime/kernels/vec_math__avx512.h"
#include "search/recon/recon_math_kernels.h"

namespace adalog::search {
namespace {

using vec512::Exp;
using vec512::TailMask;

inline __m512 Set(float v) { return _mm512_set1_ps(v); }

// ln(a) for a > 0 finite: a = m 2^e with m in [1, 2) (getmant / getexp, exact), m halved and e
// raised where m > sqrt 2, then ln m = 2 atanh(f), f = (m - 1) / (m + 1) in (-0.172, 0.172), by
// its series to f^9 (the first omitted term, 2 f^11 / 11, is below 7e-10). |rel err| ~ 2 ulp.
inline __m512 Ln(__m512 a) {
  __m512 m = _mm512_getmant_ps(a, _MM_MANT_NORM_1_2, _MM_MANT_SIGN_zero);
  __m512 e = _mm512_getexp_ps(a);
  const __mmask16 big = _mm512_cmp_ps_mask(m, Set(1.41421356f), _CMP_GT_OQ);
  m = _mm512_mask_mul_ps(m, big, m, Set(0.5f));
  e = _mm512_mask_add_ps(e, big, e, Set(1.f));
  const __m512 f = _mm512_div_ps(_mm512_sub_ps(m, Set(1.f)), _mm512_add_ps(m, Set(1.f)));
  const __m512 f2 = _mm512_mul_ps(f, f);
  __m512 p = Set(2.f / 9.f);
  p = _mm512_fmadd_ps(p, f2, Set(2.f / 7.f));
  p = _mm512_fmadd_ps(p, f2, Set(2.f / 5.f));
  p = _mm512_fmadd_ps(p, f2, Set(2.f / 3.f));
  p = _mm512_fmadd_ps(p, f2, Set(2.f));
  const __m512 ln_m = _mm512_mul_ps(p, f);
  return _mm512_fmadd_ps(e, Set(0.693147180559945309f), ln_m);
}

// sigmoid(alpha) = 1 / (1 + exp(-alpha)) (exp clamps: 0 above alpha = 87.3, so sigmoid 1).
inline __m512 Sigmoid(__m512 alpha) {
  const __m512 e = Exp(_mm512_sub_ps(_mm512_setzero_ps(), alpha));
  return _mm512_div_ps(Set(1.f), _mm512_add_ps(Set(1.f), e));
}

// The unclamped rectified sigmoid sig (zeta - gamma) + gamma (quant/adaround.h AdaRoundH before
// its clamp), and its derivative where the clamp passes (0 elsewhere, inclusive bounds).
struct HOut {
  __m512 h_raw, h_grad;
};
inline HOut RectifiedSigmoid(__m512 alpha) {
  const __m512 sig = Sigmoid(alpha);
  const __m512 zg = Set(static_cast<float>(kAdaRoundZeta - kAdaRoundGamma));
  const __m512 h = _mm512_add_ps(_mm512_mul_ps(sig, zg), Set(static_cast<float>(kAdaRoundGamma)));
  const __mmask16 out = _mm512_cmp_ps_mask(h, _mm512_setzero_ps(), _CMP_LT_OQ) |
                        _mm512_cmp_ps_mask(h, Set(1.f), _CMP_GT_OQ);
  const __m512 g = _mm512_mul_ps(_mm512_mul_ps(sig, _mm512_sub_ps(Set(1.f), sig)), zg);
  return {h, _mm512_mask_blend_ps(out, g, _mm512_setzero_ps())};
}

// GELU and its derivative. a = |v| / sqrt 2, t = 1 / (1 + p a), e = exp(-a^2) = exp(-v^2 / 2);
// erf(a) = 1 - P(t) e, so Phi(v) = 1 - P e / 2 for v >= 0 and P e / 2 for v < 0; the derivative's
// phi(v) = e / sqrt(2 pi) reuses e.
inline void GeluErfVec(__m512 v, __m512* y, __m512* d) {
  const __m512 sign_bit = _mm512_castsi512_ps(_mm512_set1_epi32(static_cast<int>(0x80000000u)));
  const __m512 a = _mm512_andnot_ps(sign_bit, _mm512_mul_ps(v, Set(0.70710678118654752f)));
  const __m512 p = vec512::ErfPoly(vec512::Recip(vec512::ErfDenominator(a)));
  const __m512 e = Exp(_mm512_sub_ps(_mm512_setzero_ps(), _mm512_mul_ps(a, a)));
  const __m512 half_pe = _mm512_mul_ps(_mm512_mul_ps(p, e), Set(0.5f));
  const __mmask16 neg = _mm512_cmp_ps_mask(v, _mm512_setzero_ps(), _CMP_LT_OQ);
  const __m512 cdf = _mm512_mask_blend_ps(neg, _mm512_sub_ps(Set(1.f), half_pe), half_pe);
  *y = _mm512_mul_ps(v, cdf);
  *d = _mm512_fmadd_ps(_mm512_mul_ps(v, Set(0.39894228040143267794f)), e, cdf);
}

}  // namespace

void GeluErfF32Avx512(const float* x, float* y, float* d, int64_t n) {
  int64_t i = 0;
  __m512 vy, vd;
  for (; i + 16 <= n; i += 16) {
    GeluErfVec(_mm512_loadu_ps(x + i), &vy, &vd);
    _mm512_storeu_ps(y + i, vy);
    _mm512_storeu_ps(d + i, vd);
  }
  if (i < n) {
    const __mmask16 k = TailMask(n - i);
    GeluErfVec(_mm512_maskz_loadu_ps(k, x + i), &vy, &vd);
    _mm512_mask_storeu_ps(y + i, k, vy);
    _mm512_mask_storeu_ps(d + i, k, vd);
  }
}

void ScaledSoftmaxF32Avx512(float* p, int64_t rows, int n, float scale) {
  const int full = n & ~15;
  const __mmask16 tail = TailMask(n - full);
  const __m512 vs = Set(scale), neg_inf = Set(-INFINITY);
  for (int64_t r = 0; r < rows; ++r) {
    float* pr = p + r * n;
    __m512 vmax = neg_inf;
    for (int i = 0; i < full; i += 16) {
      const __m512 s = _mm512_mul_ps(_mm512_loadu_ps(pr + i), vs);
      _mm512_storeu_ps(pr + i, s);
      vmax = _mm512_max_ps(vmax, s);
    }
    if (full < n) {
      const __m512 s = _mm512_mul_ps(_mm512_mask_loadu_ps(neg_inf, tail, pr + full), vs);
      _mm512_mask_storeu_ps(pr + full, tail, s);
      vmax = _mm512_mask_max_ps(vmax, tail, vmax, s);
    }
    const __m512 m = Set(_mm512_reduce_max_ps(vmax));
    __m512 sum = _mm512_setzero_ps();
    for (int i = 0; i < full; i += 16) {
      const __m512 e = Exp(_mm512_sub_ps(_mm512_loadu_ps(pr + i), m));
      _mm512_storeu_ps(pr + i, e);
      sum = _mm512_add_ps(sum, e);
    }
    if (full < n) {
      const __m512 e =
          _mm512_maskz_mov_ps(tail, Exp(_mm512_sub_ps(_mm512_maskz_loadu_ps(tail, pr + full), m)));
      _mm512_mask_storeu_ps(pr + full, tail, e);
      sum = _mm512_add_ps(sum, e);
    }
    const __m512 inv = Set(1.f / _mm512_reduce_add_ps(sum));
    for (int i = 0; i < full; i += 16) {
      _mm512_storeu_ps(pr + i, _mm512_mul_ps(_mm512_loadu_ps(pr + i), inv));
    }
    if (full < n) {
      _mm512_mask_storeu_ps(pr + full, tail,
                            _mm512_mul_ps(_mm512_maskz_loadu_ps(tail, pr + full), inv));
    }
  }
}

void AdaRoundSoftRowF32Avx512(const float* w, const float* alpha, int64_t n,
                              const UniformParams& up, float* w_soft, float* dw) {
  const __m512 vs = Set(up.scale), zp = Set(static_cast<float>(up.zero_point));
  const __m512 lo = Set(static_cast<float>(up.CodeMin())), hi = Set(static_cast<float>(up.CodeMax()));
  const __m512 zero = _mm512_setzero_ps();
  auto one = [&](__m512 wv, __m512 av, __m512* ws, __m512* dv) {
    // AdaRoundSoftWeight: c = floor(w / s) + h(alpha) + z; outside [lo, hi] the clamped code and
    // a zero derivative.
    const __m512 fl = _mm512_roundscale_ps(_mm512_div_ps(wv, vs),
                                           _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
    const HOut h = RectifiedSigmoid(av);
    const __m512 hc = _mm512_min_ps(_mm512_max_ps(h.h_raw, zero), Set(1.f));
    const __m512 c = _mm512_add_ps(_mm512_add_ps(fl, hc), zp);
    const __mmask16 below = _mm512_cmp_ps_mask(c, lo, _CMP_LT_OQ);
    const __mmask16 above = _mm512_cmp_ps_mask(c, hi, _CMP_GT_OQ);
    const __m512 cc = _mm512_mask_blend_ps(below, _mm512_mask_blend_ps(above, c, hi), lo);
    *ws = _mm512_mul_ps(_mm512_sub_ps(cc, zp), vs);
    *dv = _mm512_mask_blend_ps(below | above, _mm512_mul_ps(vs, h.h_grad), zero);
  };
  int64_t i = 0;
  __m512 ws, dv;
  for (; i + 16 <= n; i += 16) {
    one(_mm512_loadu_ps(w + i), _mm512_loadu_ps(alpha + i), &ws, &dv);
    _mm512_storeu_ps(w_soft + i, ws);
    _mm512_storeu_ps(dw + i, dv);
  }
  if (i < n) {
    const __mmask16 k = TailMask(n - i);
    one(_mm512_maskz_loadu_ps(k, w + i), _mm512_maskz_loadu_ps(k, alpha + i), &ws, &dv);
    _mm512_mask_storeu_ps(w_soft + i, k, ws);
    _mm512_mask_storeu_ps(dw + i, k, dv);
  }
}

void AdaRoundRegTermsF32Avx512(const float* alpha, int64_t n, double b, double weight,
                               float* grad, float* terms) {
  const float bf = static_cast<float>(b), b1 = static_cast<float>(b - 1.0);
  const __m512 vb = Set(bf), vb1 = Set(b1), neg_b = Set(-bf), wt = Set(static_cast<float>(weight));
  const __m512 zero = _mm512_setzero_ps(), one_v = Set(1.f);
  const __m512 sign_bit = _mm512_castsi512_ps(_mm512_set1_epi32(static_cast<int>(0x80000000u)));
  auto one = [&](__m512 av, __m512* term, __m512* g) {
    const HOut h = RectifiedSigmoid(av);
    const __m512 hc = _mm512_min_ps(_mm512_max_ps(h.h_raw, zero), one_v);
    const __m512 d = _mm512_sub_ps(_mm512_mul_ps(Set(2.f), hc), one_v);
    const __m512 a = _mm512_andnot_ps(sign_bit, d);
    // |d|^b = exp(b ln|d|) for |d| > 0 (Exp gives 0 below e^-87.3); 0^b = 0.
    const __mmask16 pos = _mm512_cmp_ps_mask(a, zero, _CMP_GT_OQ);
    const __m512 ln_a = Ln(_mm512_mask_blend_ps(pos, one_v, a));
    const __m512 pw = _mm512_maskz_mov_ps(pos, Exp(_mm512_mul_ps(vb, ln_a)));
    const __m512 pw1 = _mm512_maskz_mov_ps(pos, Exp(_mm512_mul_ps(vb1, ln_a)));
    *term = _mm512_sub_ps(one_v, pw);
    // weight * (-b |d|^(b-1) sign(d) * 2 h'(alpha)); 0 where d = 0 (sign(0) = 0).
    const __m512 sgn = _mm512_or_ps(one_v, _mm512_and_ps(sign_bit, d));
    __m512 t = _mm512_mul_ps(_mm512_mul_ps(neg_b, pw1), sgn);
    t = _mm512_mul_ps(_mm512_mul_ps(t, Set(2.f)), h.h_grad);
    *g = _mm512_maskz_mul_ps(pos, wt, t);
  };
  int64_t i = 0;
  __m512 term, g;
  for (; i + 16 <= n; i += 16) {
    one(_mm512_loadu_ps(alpha + i), &term, &g);
    _mm512_storeu_ps(terms + i, term);
    if (grad != nullptr) _mm512_storeu_ps(grad + i, _mm512_add_ps(_mm512_loadu_ps(grad + i), g));
  }
  if (i < n) {
    const __mmask16 k = TailMask(n - i);
    one(_mm512_maskz_loadu_ps(k, alpha + i), &term, &g);
    _mm512_mask_storeu_ps(terms + i, k, term);
    if (grad != nullptr) {
      _mm512_mask_storeu_ps(grad + i, k, _mm512_add_ps(_mm512_maskz_loadu_ps(k, grad + i), g));
    }
  }
}

}  // namespace adalog::search
