// Small streaming kernels of the objectives, run-time dispatched (reference / AVX-512) and
// bit-identical across implementations:
//   - ThresholdLevels: out[i] = lv[base + #{j : x[i] < thr[j]}] (an integer count, then a table
//     lookup: exact whatever the instruction order);
//   - DotF32F64x2: lin = sum a[i] * b[i], quad = sum a[i] * c[i] in double (float x float is
//     exact in double) over 8 interleaved lanes, lanes combined in a fixed order;
//   - ResidualSq: sum (z[i] - s * a[i])^2 in double over 8 interleaved lanes, no fused
//     multiply-add (the AVX-512 file is compiled with -ffp-contract=off), lanes combined in a
//     fixed order.
#pragma once

#include <cstdint>

namespace adalog::search {

// thr: n_thr thresholds sorted descending (the log code is non-increasing in x: code >= c iff
// x < thr[c - 1 - ...]); lv: the level table, at least base + n_thr + 1 entries.
using ThresholdLevelsFn = void (*)(const float* x, int64_t n, const float* thr, int n_thr,
                                   int base, const float* lv, float* out);
// out[i] = #{j : x[i] >= thr[j]} (thr ascending, n_thr <= 255), as uint8.
using ThresholdCodesFn = void (*)(const float* x, int64_t n, const float* thr, int n_thr,
                                  uint8_t* out);
using DotF32F64x2Fn = void (*)(const float* a, const float* b, const float* c, int64_t n,
                               double* lin, double* quad);
using ResidualSqFn = double (*)(const double* z, double s, const double* a, int64_t n);

void ThresholdLevelsRef(const float* x, int64_t n, const float* thr, int n_thr, int base,
                        const float* lv, float* out);
void ThresholdLevelsAvx512(const float* x, int64_t n, const float* thr, int n_thr, int base,
                           const float* lv, float* out);
void ThresholdCodesRef(const float* x, int64_t n, const float* thr, int n_thr, uint8_t* out);
void ThresholdCodesAvx512(const float* x, int64_t n, const float* thr, int n_thr, uint8_t* out);
void DotF32F64x2Ref(const float* a, const float* b, const float* c, int64_t n, double* lin,
                    double* quad);
void DotF32F64x2Avx512(const float* a, const float* b, const float* c, int64_t n, double* lin,
                       double* quad);
double ResidualSqRef(const double* z, double s, const double* a, int64_t n);
double ResidualSqAvx512(const double* z, double s, const double* a, int64_t n);

struct ScanKernels {
  ThresholdLevelsFn threshold_levels;
  ThresholdCodesFn threshold_codes;
  DotF32F64x2Fn dot2;
  ResidualSqFn residual_sq;
};
// The fastest implementations the CPU (and ADALOG_ISA) allows.
const ScanKernels& SelectScanKernels();
// The reference implementations (tests compare them bit for bit).
const ScanKernels& RefScanKernels();

}  // namespace adalog::search
