// Plain scalar references of the uniform integer GEMMs (runtime/kernels/int/int_kernels.h),
// computed from the original codes with no packing, no weight re-centering and no compensation
// terms: the optimized kernels must match these bit for bit.
//
// Order of operations (the one the kernels reproduce):
//   acc = sum_k (a - za)(w - zw)        exact, int64
//   y   = fmaf(float(acc), scale, bias) one rounding for float(acc) (half-even), one for fmaf
#pragma once

#include <cstdint>

namespace adalog::intk::ref {

// y[m][n] = fmaf(float(sum_k (a[m][k] - za)(w[n][k] - zw[n])), sa * sw[n], bias ? bias[n] : 0)
// for m in [0, m_rows); sa * sw[n] is one float multiplication.
void QLinearRef(const uint8_t* a, int64_t lda, int m_rows, const uint8_t* w, int n, int k,
                const float* sw, const int32_t* zw, float sa, int32_t za, const float* bias,
                float* y, int64_t ldy);

// s[i][j] = fmaf(float(sum_t (q[i][t] - zq)(k[j][t] - zk)), alpha, 0)
void Matmul1Ref(const uint8_t* q, int64_t ldq, const uint8_t* k, int64_t ldk, int tq, int tk,
                int d, int32_t zq, int32_t zk, float alpha, float* s, int64_t lds);

}  // namespace adalog::intk::ref
