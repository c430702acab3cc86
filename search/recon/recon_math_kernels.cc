// Reference float kernels of the block-reconstruction training math and the run-time choice; see
// recon_math_kernels.h.
#include "search/recon/recon_math_kernels.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "quant/adaround.h"
#include "runtime/cpu_features.h"
#include "runtime/kernel_registry.h"

namespace adalog::search {

void GeluErfF32Ref(const float* x, float* y, float* d, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = GeluErf(x[i], &d[i]);
}

void ScaledSoftmaxF32Ref(float* p, int64_t rows, int n, float scale) {
  for (int64_t r = 0; r < rows; ++r) {
    float* pr = p + r * n;
    float mx = pr[0] * scale;
    for (int j = 0; j < n; ++j) {
      pr[j] *= scale;
      mx = std::max(mx, pr[j]);
    }
    float sum = 0.f;
    for (int j = 0; j < n; ++j) {
      pr[j] = std::exp(pr[j] - mx);
      sum += pr[j];
    }
    const float inv = 1.f / sum;
    for (int j = 0; j < n; ++j) pr[j] *= inv;
  }
}

void AdaRoundSoftRowF32Ref(const float* w, const float* alpha, int64_t n, const UniformParams& up,
                           float* w_soft, float* dw) {
  for (int64_t i = 0; i < n; ++i) w_soft[i] = AdaRoundSoftWeight<float>(w[i], up, alpha[i], &dw[i]);
}

void AdaRoundRegTermsF32Ref(const float* alpha, int64_t n, double b, double weight, float* grad,
                            float* terms) {
  AdaRoundRegularizerTerms<float>(alpha, n, b, weight, grad, terms);
}

GeluErfF32Fn SelectGeluErfF32() {
  static const std::vector<KernelImpl<GeluErfF32Fn>> list = {
      {"recon_gelu_erf_f32__avx512", IsaLevel::kAvx512, {}, GeluErfF32Avx512},
      {"recon_gelu_erf_f32__ref", IsaLevel::kRef, {}, GeluErfF32Ref},
  };
  static const GeluErfF32Fn f = SelectKernel("recon_gelu_erf_f32", list, ActiveIsaLevel()).fn;
  return f;
}

ScaledSoftmaxF32Fn SelectScaledSoftmaxF32() {
  static const std::vector<KernelImpl<ScaledSoftmaxF32Fn>> list = {
      {"recon_scaled_softmax_f32__avx512", IsaLevel::kAvx512, {}, ScaledSoftmaxF32Avx512},
      {"recon_scaled_softmax_f32__ref", IsaLevel::kRef, {}, ScaledSoftmaxF32Ref},
  };
  static const ScaledSoftmaxF32Fn f =
      SelectKernel("recon_scaled_softmax_f32", list, ActiveIsaLevel()).fn;
  return f;
}

AdaRoundSoftRowF32Fn SelectAdaRoundSoftRowF32() {
  static const std::vector<KernelImpl<AdaRoundSoftRowF32Fn>> list = {
      {"recon_adaround_soft_f32__avx512", IsaLevel::kAvx512, {}, AdaRoundSoftRowF32Avx512},
      {"recon_adaround_soft_f32__ref", IsaLevel::kRef, {}, AdaRoundSoftRowF32Ref},
  };
  static const AdaRoundSoftRowF32Fn f =
      SelectKernel("recon_adaround_soft_f32", list, ActiveIsaLevel()).fn;
  return f;
}

AdaRoundRegTermsF32Fn SelectAdaRoundRegTermsF32() {
  static const std::vector<KernelImpl<AdaRoundRegTermsF32Fn>> list = {
      {"recon_adaround_reg_f32__avx512", IsaLevel::kAvx512, {}, AdaRoundRegTermsF32Avx512},
      {"recon_adaround_reg_f32__ref", IsaLevel::kRef, {}, AdaRoundRegTermsF32Ref},
  };
  static const AdaRoundRegTermsF32Fn f =
      SelectKernel("recon_adaround_reg_f32", list, ActiveIsaLevel()).fn;
  return f;
}

}  // namespace adalog::search
