// Plain scalar reference of the log-code GEMM. Never optimized.
#include "runtime/kernels/reference/logcode_ref.h"

#include <cmath>

namespace adalog::intk::ref {
namespace {

int64_t Level(const AdaLogTables& t, int c, int32_t e) {
  const int64_t m = t.mult[static_cast<size_t>(c)];
  if (m == 0) return 0;
  const int32_t s = e - t.shift[static_cast<size_t>(c)];
  if (s >= 0) return m << s;  // s <= headroom <= 32, m < 2^9: fits int64
  if (-s > 31) return 0;
  return m >> -s;
}

}  // namespace

void LogMatmulRef(const AdaLogTables& t, int headroom, const uint8_t* codes, int64_t ld_codes,
                  int m_rows, const uint8_t* u, int64_t ldu, int n, int k, const int32_t* zu,
                  const float* alpha, const float* bias, float* y, int64_t ldy) {
  for (int m = 0; m < m_rows; ++m) {
    const uint8_t* c = codes + m * ld_codes;
    int cmin = 256;
    for (int j = 0; j < k; ++j) cmin = c[j] < cmin ? c[j] : cmin;
    int32_t e = 0;
    if (cmin < 256 && t.mult[static_cast<size_t>(cmin)] != 0) {
      e = t.shift[static_cast<size_t>(cmin)] + headroom;
    }
    for (int o = 0; o < n; ++o) {
      int64_t acc = 0;
      for (int j = 0; j < k; ++j) acc += Level(t, c[j], e) * (u[o * ldu + j] - zu[o]);
      y[m * ldy + o] =
          std::fmaf(std::ldexp(static_cast<float>(acc), -e), alpha[o], bias ? bias[o] : 0.f);
    }
  }
}

void LogMatmulRealRef(const AdaLogTables& t, const uint8_t* codes, int64_t ld_codes, int m_rows,
                      const uint8_t* u, int64_t ldu, int n, int k, const int32_t* zu,
                      const float* alpha, const float* bias, double* y, int64_t ldy) {
  for (int m = 0; m < m_rows; ++m) {
    const uint8_t* c = codes + m * ld_codes;
    for (int o = 0; o < n; ++o) {
      double acc = 0;
      for (int j = 0; j < k; ++j) {
        const double level = t.mult[c[j]] * std::ldexp(1.0, -t.shift[c[j]]);
        acc += level * (u[o * ldu + j] - zu[o]);
      }
      y[m * ldy + o] = double{alpha[o]} * acc + (bias ? bias[o] : 0.0);
    }
  }
}

}  // namespace adalog::intk::ref
