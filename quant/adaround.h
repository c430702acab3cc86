// AdaRound, the learned weight rounding of block reconstruction (docs/method.md "Block
// reconstruction"): the rectified sigmoid, alpha's initialisation, the soft / hard rounded weight,
// the rounding regulariser and its exponent schedule. Math only; the optimiser lives in search/.
//
// Source of the method: the official AdaLog code, quantizers/adaround.py (AdaRoundQuantizer:
// get_soft_targets, init_alpha, forward, get_hard_value) and utils/block_recon.py (LossFunction,
// LinearTempDecay). Templates on the float type T (float for training, double for the gradient
// checks of tests/search/block_grad_test.cc).
#pragma once

#include <cmath>
#include <cstdint>

#include "quant/params.h"

namespace adalog {

// Stretch of the rectified sigmoid (adaround.py: self.gamma, self.zeta).
inline constexpr double kAdaRoundGamma = -0.1;
inline constexpr double kAdaRoundZeta = 1.1;

// h(alpha) = clamp(sigmoid(alpha) * (zeta - gamma) + gamma, 0, 1)   (get_soft_targets)
template <typename T>
T AdaRoundH(T alpha) {
  const T sig = T(1) / (T(1) + std::exp(-alpha));
  const T h = sig * T(kAdaRoundZeta - kAdaRoundGamma) + T(kAdaRoundGamma);
  return h < T(0) ? T(0) : (h > T(1) ? T(1) : h);
}

// dh/dalpha: sigmoid' * (zeta - gamma) where the clamp passes its input, 0 where it saturates.
// The clamp bounds are inclusive, as torch.clamp's backward (grad where min <= x <= max).
template <typename T>
T AdaRoundHGrad(T alpha) {
  const T sig = T(1) / (T(1) + std::exp(-alpha));
  const T h = sig * T(kAdaRoundZeta - kAdaRoundGamma) + T(kAdaRoundGamma);
  if (h < T(0) || h > T(1)) return T(0);
  return sig * (T(1) - sig) * T(kAdaRoundZeta - kAdaRoundGamma);
}

// alpha such that h(alpha) equals the rounding rest w/s - floor(w/s), in float32 as the official
// init_alpha evaluates it: alpha = -log((zeta - gamma) / (rest - gamma) - 1). (The official
// comment says "sigmoid(alpha) = rest"; the formula gives h(alpha) = rest, which is what it does.)
// rest is in [0, 1), so alpha is finite (rest 0 gives -log(11)).
float AdaRoundInitAlpha(float w, float scale);

// The soft-rounded weight of one element of an asymmetric (or symmetric, z = 0) per-channel
// uniform weight quantizer (adaround.py forward, learned_hard_sigmoid, soft_targets = True):
//   c~ = clamp(floor(w/s) + h(alpha) + z, cmin, cmax);  w~ = (c~ - z) * s
// *dw_dalpha gets dw~/dalpha = s * h'(alpha) where the clamp passes (inclusive bounds), else 0.
// floor(w/s) is evaluated in float32 from the FP32 weight, as the official code does.
template <typename T>
T AdaRoundSoftWeight(float w, const UniformParams& p, T alpha, T* dw_dalpha) {
  const T fl = static_cast<T>(std::floor(w / p.scale));
  const T c = fl + AdaRoundH(alpha) + static_cast<T>(p.zero_point);
  const T lo = static_cast<T>(p.CodeMin()), hi = static_cast<T>(p.CodeMax());
  const T s = static_cast<T>(p.scale);
  if (c < lo || c > hi) {
    if (dw_dalpha) *dw_dalpha = T(0);
    return ((c < lo ? lo : hi) - static_cast<T>(p.zero_point)) * s;
  }
  if (dw_dalpha) *dw_dalpha = s * AdaRoundHGrad(alpha);
  return (c - static_cast<T>(p.zero_point)) * s;
}

// The hard rounding at the end (soft_targets = False; get_hard_value then the nearest-rounding
// forward): the code clamp(floor(w/s) + [alpha >= 0] + z, cmin, cmax). The official
// get_hard_value writes (floor(w/s) + [alpha >= 0]) * s unclamped into the weight and the later
// nearest-rounding forward clamps it; the code is the same.
int32_t AdaRoundHardCode(float w, const UniformParams& p, float alpha);

// The rounding regulariser of one tensor (LossFunction, round_loss = 'relaxation', before the
// weight factor): sum over elements of 1 - |2 h(alpha) - 1|^b. If grad is non-null, grad[i] +=
// weight * d/dalpha_i of the term: -b |2h-1|^(b-1) sign(2h-1) * 2 h'(alpha) (sign(0) = 0, as torch's
// abs backward). Returns the unweighted sum (double accumulation, sequential: deterministic).
template <typename T>
double AdaRoundRegularizer(const T* alpha, int64_t n, double b, double weight, T* grad);
// The same per element: terms[i] = 1 - |2 h(alpha_i) - 1|^b (the summands, in the type T the
// sum above converts to double one by one) and grad[i] += the same term's gradient, so that a
// caller may split [0, n) into pieces (threads) and add the terms up in index order afterwards
// with the same bytes as AdaRoundRegularizer.
template <typename T>
void AdaRoundRegularizerTerms(const T* alpha, int64_t n, double b, double weight, T* grad,
                              T* terms);

// The exponent b of the regulariser at iteration `count` (1-based, the official LossFunction
// increments its counter before use) of `iters` (LinearTempDecay with decay start at
// warmup * iters): start_b before the decay start, then linear to end_b at count = iters.
double AdaRoundExponent(int64_t count, int64_t iters, double warmup = 0.2, double start_b = 20.0,
                        double end_b = 2.0);
// Whether the regulariser is on at `count`: the official LossFunction zeroes it while
// count < warmup * iters (loss_start).
bool AdaRoundRegularizerOn(int64_t count, int64_t iters, double warmup = 0.2);

}  // namespace adalog
