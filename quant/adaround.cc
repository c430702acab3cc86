// AdaRound math (see adaround.h): alpha's initialisation, the hard code, the regulariser, the
// exponent schedule.
#include "quant/adaround.h"

#include <algorithm>
#include <cmath>

namespace adalog {

float AdaRoundInitAlpha(float w, float scale) {
  const float t = w / scale;
  const float rest = t - std::floor(t);  // [0, 1)
  const float zg = static_cast<float>(kAdaRoundZeta - kAdaRoundGamma);
  const float g = static_cast<float>(kAdaRoundGamma);
  return -std::log(zg / (rest - g) - 1.0f);
}

int32_t AdaRoundHardCode(float w, const UniformParams& p, float alpha) {
  const int64_t c = static_cast<int64_t>(std::floor(w / p.scale)) + (alpha >= 0.f ? 1 : 0) +
                    p.zero_point;
  return static_cast<int32_t>(std::clamp<int64_t>(c, p.CodeMin(), p.CodeMax()));
}

template <typename T>
void AdaRoundRegularizerTerms(const T* alpha, int64_t n, double b, double weight, T* grad,
                              T* terms) {
  for (int64_t i = 0; i < n; ++i) {
    const T h = AdaRoundH(alpha[i]);
    const T d = T(2) * h - T(1);
    const T a = std::fabs(d);
    terms[i] = T(1) - std::pow(a, static_cast<T>(b));
    if (grad != nullptr && d != T(0)) {
      // d/dalpha (1 - |d|^b) = -b |d|^(b-1) sign(d) * 2 h'(alpha)
      const T sign = d > T(0) ? T(1) : T(-1);
      grad[i] += static_cast<T>(weight) * (-static_cast<T>(b) * std::pow(a, static_cast<T>(b - 1.0)) *
                                           sign * T(2) * AdaRoundHGrad(alpha[i]));
    }
  }
}

template <typename T>
double AdaRoundRegularizer(const T* alpha, int64_t n, double b, double weight, T* grad) {
  double sum = 0.0;
  T term;
  for (int64_t i = 0; i < n; ++i) {
    AdaRoundRegularizerTerms(alpha + i, 1, b, weight, grad == nullptr ? nullptr : grad + i, &term);
    sum += static_cast<double>(term);
  }
  return sum;
}

template double AdaRoundRegularizer<float>(const float*, int64_t, double, double, float*);
template double AdaRoundRegularizer<double>(const double*, int64_t, double, double, double*);
template void AdaRoundRegularizerTerms<float>(const float*, int64_t, double, double, float*,
                                              float*);
template void AdaRoundRegularizerTerms<double>(const double*, int64_t, double, double, double*,
                                               double*);

double AdaRoundExponent(int64_t count, int64_t iters, double warmup, double start_b, double end_b) {
  const double start_decay = warmup * static_cast<double>(iters);
  const double t = static_cast<double>(count);
  if (t < start_decay) return start_b;
  const double rel = (t - start_decay) / (static_cast<double>(iters) - start_decay);
  return end_b + (start_b - end_b) * std::max(0.0, 1.0 - rel);
}

bool AdaRoundRegularizerOn(int64_t count, int64_t iters, double warmup) {
  return !(static_cast<double>(count) < warmup * static_cast<double>(iters));
}

}  // namespace adalog
