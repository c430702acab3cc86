// Plain scalar reference of the log-code GEMM (runtime/kernels/int/int_kernels.h, section 3),
// written straight from the definition, from the original codes and tables (no packing, no
// buckets, no compensation). Every design (buckets / s16 / u8) must match it bit for bit given
// its headroom H.
//
//   tmin = T1[min_k c[m][k]]; E = tmin + H (E = 0 when every code of the row is the zero code)
//   L(c) = mult[c] == 0 ? 0 : floor(mult[c] * 2^(E - T1[c]))  (right shifts > 31 give 0)
//   acc  = sum_k L(c[m][k]) * (u[n][k] - zu[n])                 exact, int64
//   y    = fmaf(ldexpf(float(acc), -E), alpha[n], bias ? bias[n] : 0)
#pragma once

#include <cstdint>

#include "quant/log_quantizers.h"

namespace adalog::intk::ref {

void LogMatmulRef(const AdaLogTables& t, int headroom, const uint8_t* codes, int64_t ld_codes,
                  int m_rows, const uint8_t* u, int64_t ldu, int n, int k, const int32_t* zu,
                  const float* alpha, const float* bias, float* y, int64_t ldy);

// The real-valued decode the integer form approximates, in double:
//   y = alpha[n] * sum_k mult[c] 2^-T1[c] * (u[n][k] - zu[n]) + bias[n]
// (AdaLog's level m/D times the scale is folded into alpha = s * ... / D).
void LogMatmulRealRef(const AdaLogTables& t, const uint8_t* codes, int64_t ld_codes, int m_rows,
                      const uint8_t* u, int64_t ldu, int n, int k, const int32_t* zu,
                      const float* alpha, const float* bias, double* y, int64_t ldy);

}  // namespace adalog::intk::ref
