// Plain scalar float islands (reference). Straight loops, float arithmetic, libm exp/erf/tanh.
#include "runtime/kernels/reference/float_kernels_ref.h"

#include <cmath>

#include "runtime/kernels/float_kernels.h"

namespace adalog {
namespace ref {

void LayerNorm(const float* x, float* y, int64_t rows, int n, const float* gamma,
               const float* beta, float eps) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * n;
    float* yr = y + r * n;
    float sum = 0.f;
    for (int i = 0; i < n; ++i) sum += xr[i];
    const float mean = sum / static_cast<float>(n);
    float sq = 0.f;
    for (int i = 0; i < n; ++i) sq += (xr[i] - mean) * (xr[i] - mean);
    const float var = sq / static_cast<float>(n);
    const float inv = 1.f / std::sqrt(var + eps);
    for (int i = 0; i < n; ++i) yr[i] = (xr[i] - mean) * inv * gamma[i] + beta[i];
  }
}

void Softmax(const float* x, float* y, int64_t rows, int n) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * n;
    float* yr = y + r * n;
    float m = xr[0];
    for (int i = 1; i < n; ++i) m = std::fmax(m, xr[i]);
    float sum = 0.f;
    for (int i = 0; i < n; ++i) {
      yr[i] = std::exp(xr[i] - m);
      sum += yr[i];
    }
    const float inv = 1.f / sum;
    for (int i = 0; i < n; ++i) yr[i] *= inv;
  }
}

void GeluErf(const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const float v = x[i];
    y[i] = 0.5f * v * (1.f + std::erf(v * 0.70710678118654752f));
  }
}

void GeluTanh(const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const float v = x[i];
    y[i] = 0.5f * v * (1.f + std::tanh(0.79788456080286536f * (v + 0.044715f * v * v * v)));
  }
}

void Add(const float* a, const float* b, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = a[i] + b[i];
}

}  // namespace ref

const FloatKernels& FloatKernelsReference() {
  static const FloatKernels k = {"float_islands__ref", IsaLevel::kRef, ref::LayerNorm,
                                 ref::Softmax,         ref::GeluErf,   ref::GeluTanh,
                                 ref::Add};
  return k;
}

}  // namespace adalog
