// Row preparation (decode of log codes to fixed-point levels) and the bucket design's row kernel,
// written once as inline templates and compiled twice: baseline (logcode.cc) and AVX-512
// (logcode__avx512vnni.cc, auto-vectorized). Internal to runtime/kernels/int.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

#include "runtime/kernels/int/int_kernels.h"

namespace adalog::intk::detail {
// Internal linkage on purpose: this header is compiled with different -m flags in different
// translation units; shared inline (vague-linkage) copies could let the linker pick the AVX-512
// one for the baseline caller (an ODR trap that ends in SIGILL on older CPUs).
namespace {

// Row lengths of the decoded levels in LogScratch: u8 rows padded to 64, s16 rows to 32.
inline int PaddedK8(int k) { return (k + 63) / 64 * 64; }
inline int PaddedK16(int k) { return (k + 31) / 32 * 32; }

// The epilogue every log-code row kernel applies: the matmul's column scale / bias and the
// scratch's row exponents (filled by the kernel as it decodes each row).
inline Epilogue RowEpilogue(const LogMatmul& p, LogScratch* s) {
  Epilogue ep;
  ep.col_scale = p.col_scale.data();
  ep.col_bias = p.col_bias.data();
  ep.row_exp = s->row_exp.data();
  return ep;
}

// lut[c] = L_E(c) for c in 0 .. 2^b (see int_kernels.h).
template <typename T>
inline void BuildLevelLut(const AdaLogTables& t, int32_t e, T* lut) {
  const int size = LogTableSize(t.bits);
  for (int c = 0; c < size; ++c) lut[c] = static_cast<T>(LogLevelFixed(t, c, e));
}

// Minimum code of a row (the row's largest level).
inline int MinCode(const uint8_t* c, int k) {
  uint8_t mn = 255;
  for (int j = 0; j < k; ++j) mn = c[j] < mn ? c[j] : mn;
  return mn;
}

// Decodes one row of codes to levels (T = uint8_t or int16_t); pad entries up to kp are zeroed.
template <typename T>
inline void DecodeRow(const uint8_t* c, int k, int kp, const T* lut, T* out) {
  for (int j = 0; j < k; ++j) out[j] = lut[c[j]];
  for (int j = k; j < kp; ++j) out[j] = 0;
}

// Bucket design, one row: buckets[c][n] = sum over k with code c of b16[k][n] (int32), only for
// codes present (touched); acc[n] = sum_c lut64[c] * buckets[c][n]; then the epilogue.
inline void BucketRow(const LogMatmul& p, const uint8_t* c, int32_t e, int32_t* buckets,
                      int64_t* lut64, int64_t* acc, float* y) {
  const int n = p.n;
  const int size = LogTableSize(p.bits);
  uint8_t touched_flag[257];
  std::memset(touched_flag, 0, sizeof touched_flag);
  int touched[257];
  int nt = 0;
  for (int j = 0; j < p.k; ++j) {
    const int code = c[j];
    if (p.tables.mult[static_cast<size_t>(code)] == 0) continue;
    int32_t* __restrict bk = buckets + static_cast<int64_t>(code) * n;
    const int16_t* __restrict src = p.b16.data() + static_cast<int64_t>(j) * n;
    if (!touched_flag[code]) {
      touched_flag[code] = 1;
      touched[nt++] = code;
      for (int o = 0; o < n; ++o) bk[o] = src[o];
    } else {
      for (int o = 0; o < n; ++o) bk[o] += src[o];
    }
  }
  (void)size;
  for (int o = 0; o < n; ++o) acc[o] = 0;
  for (int i = 0; i < nt; ++i) {
    const int code = touched[i];
    const int64_t l = LogLevelFixed(p.tables, code, e);
    lut64[code] = l;
    const int32_t* __restrict bk = buckets + static_cast<int64_t>(code) * n;
    int64_t* __restrict a = acc;
    for (int o = 0; o < n; ++o) a[o] += l * bk[o];
  }
  for (int o = 0; o < n; ++o) {
    y[o] = std::fmaf(std::ldexp(static_cast<float>(acc[o]), -e), p.col_scale[o], p.col_bias[o]);
  }
}

}  // namespace
}  // namespace adalog::intk::detail
