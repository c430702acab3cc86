// Run-time dispatched float math of the block-reconstruction training path: GELU (erf form) with
// its derivative, the scaled softmax of attention rows, the AdaRound soft weights of one output
// channel, and the rounding regulariser's per-element terms and gradients. The references call
// the scalar code this path had before (block_grad.cc's Gelu, quant/adaround.h, libm erf / exp /
// pow); the AVX-512 kernels (recon_math__avx512.cc) use the runtime's vector exp and
// Abramowitz-Stegun erf (runtime/kernels/vec_math__avx512.h) and a vector log, so they do NOT give
// the references' bytes: they agree within the tolerances checked by tests/search/
// block_grad_test.cc (ReconMath.*). Each kernel works element by element (softmax: row by row),
// so its bytes do not depend on how the caller splits the work over threads.
#pragma once

#include <cmath>
#include <cstdint>

#include "quant/params.h"

namespace adalog::search {

// The exact GELU v Phi(v), Phi(v) = (1 + erf(v / sqrt 2)) / 2, and *deriv = Phi(v) + v phi(v) in
// the type T with libm's erf and exp: the double path (gradient checks) and the float reference.
template <typename T>
T GeluErf(T v, T* deriv) {
  const T kInvSqrt2 = T(0.70710678118654752440);
  const T kInvSqrt2Pi = T(0.39894228040143267794);
  const T cdf = T(0.5) * (T(1) + std::erf(v * kInvSqrt2));
  *deriv = cdf + v * kInvSqrt2Pi * std::exp(T(-0.5) * v * v);
  return v * cdf;
}

// y[i] = x[i] Phi(x[i]) and d[i] = Phi(x[i]) + x[i] phi(x[i]) (the exact, erf GELU and its
// derivative) for i in [0, n).
using GeluErfF32Fn = void (*)(const float* x, float* y, float* d, int64_t n);
void GeluErfF32Ref(const float* x, float* y, float* d, int64_t n);
void GeluErfF32Avx512(const float* x, float* y, float* d, int64_t n);
GeluErfF32Fn SelectGeluErfF32();

// In place, each of `rows` rows of n: p[j] = exp(s p[j] - max) / sum over the row.
using ScaledSoftmaxF32Fn = void (*)(float* p, int64_t rows, int n, float scale);
void ScaledSoftmaxF32Ref(float* p, int64_t rows, int n, float scale);
void ScaledSoftmaxF32Avx512(float* p, int64_t rows, int n, float scale);
ScaledSoftmaxF32Fn SelectScaledSoftmaxF32();

// For i in [0, n): w_soft[i] = AdaRoundSoftWeight<float>(w[i], up, alpha[i], &dw[i]), the soft
// weights of one output channel (quant/adaround.h).
using AdaRoundSoftRowF32Fn = void (*)(const float* w, const float* alpha, int64_t n,
                                      const UniformParams& up, float* w_soft, float* dw);
void AdaRoundSoftRowF32Ref(const float* w, const float* alpha, int64_t n, const UniformParams& up,
                           float* w_soft, float* dw);
void AdaRoundSoftRowF32Avx512(const float* w, const float* alpha, int64_t n,
                              const UniformParams& up, float* w_soft, float* dw);
AdaRoundSoftRowF32Fn SelectAdaRoundSoftRowF32();

// AdaRoundRegularizerTerms<float>(alpha, n, b, weight, grad, terms) (quant/adaround.h): terms[i] =
// 1 - |2h - 1|^b, grad[i] += weight d/dalpha of it (grad non-null).
using AdaRoundRegTermsF32Fn = void (*)(const float* alpha, int64_t n, double b, double weight,
                                       float* grad, float* terms);
void AdaRoundRegTermsF32Ref(const float* alpha, int64_t n, double b, double weight, float* grad,
                            float* terms);
void AdaRoundRegTermsF32Avx512(const float* alpha, int64_t n, double b, double weight,
                               float* grad, float* terms);
AdaRoundRegTermsF32Fn SelectAdaRoundRegTermsF32();

}  // namespace adalog::search
