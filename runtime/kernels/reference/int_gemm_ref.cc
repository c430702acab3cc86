// Plain scalar references of the uniform integer GEMMs. Never optimized.
#include "runtime/kernels/reference/int_gemm_ref.h"

#include <cmath>

namespace adalog::intk::ref {

void QLinearRef(const uint8_t* a, int64_t lda, int m_rows, const uint8_t* w, int n, int k,
                const float* sw, const int32_t* zw, float sa, int32_t za, const float* bias,
                float* y, int64_t ldy) {
  for (int m = 0; m < m_rows; ++m) {
    for (int j = 0; j < n; ++j) {
      int64_t acc = 0;
      for (int t = 0; t < k; ++t) {
        acc += int64_t{a[m * lda + t] - za} * (w[int64_t{j} * k + t] - zw[j]);
      }
      const float scale = sa * sw[j];
      y[m * ldy + j] = std::fmaf(static_cast<float>(acc), scale, bias ? bias[j] : 0.f);
    }
  }
}

void Matmul1Ref(const uint8_t* q, int64_t ldq, const uint8_t* k, int64_t ldk, int tq, int tk,
                int d, int32_t zq, int32_t zk, float alpha, float* s, int64_t lds) {
  for (int i = 0; i < tq; ++i) {
    for (int j = 0; j < tk; ++j) {
      int64_t acc = 0;
      for (int t = 0; t < d; ++t) acc += int64_t{q[i * ldq + t] - zq} * (k[j * ldk + t] - zk);
      s[i * lds + j] = std::fmaf(static_cast<float>(acc), alpha, 0.f);
    }
  }
}

}  // namespace adalog::intk::ref
