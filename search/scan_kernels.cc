// Reference scan kernels and the run-time choice; see scan_kernels.h.
#include "search/scan_kernels.h"

#include <vector>

#include "runtime/cpu_features.h"
#include "runtime/kernel_registry.h"

namespace adalog::search {

void ThresholdLevelsRef(const float* x, int64_t n, const float* thr, int n_thr, int base,
                        const float* lv, float* out) {
  constexpr int64_t kChunk = 256;
  int32_t code[kChunk];
  for (int64_t i0 = 0; i0 < n; i0 += kChunk) {
    const int64_t m = n - i0 < kChunk ? n - i0 : kChunk;
    const float* xr = x + i0;
    for (int64_t k = 0; k < m; ++k) code[k] = base;
    for (int j = 0; j < n_thr; ++j) {
      const float th = thr[j];
#pragma omp simd
      for (int64_t k = 0; k < m; ++k) code[k] += xr[k] < th ? 1 : 0;
    }
    for (int64_t k = 0; k < m; ++k) out[i0 + k] = lv[code[k]];
  }
}

void ThresholdCodesRef(const float* x, int64_t n, const float* thr, int n_thr, uint8_t* out) {
  constexpr int64_t kChunk = 256;
  int32_t code[kChunk];
  for (int64_t i0 = 0; i0 < n; i0 += kChunk) {
    const int64_t m = n - i0 < kChunk ? n - i0 : kChunk;
    const float* xr = x + i0;
    for (int64_t k = 0; k < m; ++k) code[k] = 0;
    for (int j = 0; j < n_thr; ++j) {
      const float th = thr[j];
#pragma omp simd
      for (int64_t k = 0; k < m; ++k) code[k] += xr[k] >= th ? 1 : 0;
    }
    for (int64_t k = 0; k < m; ++k) out[i0 + k] = static_cast<uint8_t>(code[k]);
  }
}

void DotF32F64x2Ref(const float* a, const float* b, const float* c, int64_t n, double* lin,
                    double* quad) {
  double l[8] = {0, 0, 0, 0, 0, 0, 0, 0}, q[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int j = 0; j < 8; ++j) {
      const double av = a[i + j];
      l[j] += av * static_cast<double>(b[i + j]);
      q[j] += av * static_cast<double>(c[i + j]);
    }
  for (int j = 0; i < n; ++i, ++j) {
    const double av = a[i];
    l[j] += av * static_cast<double>(b[i]);
    q[j] += av * static_cast<double>(c[i]);
  }
  *lin = ((l[0] + l[4]) + (l[1] + l[5])) + ((l[2] + l[6]) + (l[3] + l[7]));
  *quad = ((q[0] + q[4]) + (q[1] + q[5])) + ((q[2] + q[6]) + (q[3] + q[7]));
}

double ResidualSqRef(const double* z, double s, const double* a, int64_t n) {
  double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int j = 0; j < 8; ++j) {
      const double p = s * a[i + j];
      const double r = z[i + j] - p;
      const double rr = r * r;
      acc[j] += rr;
    }
  for (int j = 0; i < n; ++i, ++j) {
    const double p = s * a[i];
    const double r = z[i] - p;
    const double rr = r * r;
    acc[j] += rr;
  }
  return ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
}

const ScanKernels& RefScanKernels() {
  static const ScanKernels k{ThresholdLevelsRef, ThresholdCodesRef, DotF32F64x2Ref, ResidualSqRef};
  return k;
}

// Ordered list (runtime/kernel_registry.h), chosen once per process at ActiveIsaLevel().
const ScanKernels& SelectScanKernels() {
  static const ScanKernels avx512{ThresholdLevelsAvx512, ThresholdCodesAvx512, DotF32F64x2Avx512,
                                  ResidualSqAvx512};
  static const std::vector<KernelImpl<const ScanKernels*>> list = {
      {"scan__avx512", IsaLevel::kAvx512, {}, &avx512},
      {"scan__ref", IsaLevel::kRef, {}, &RefScanKernels()},
  };
  static const ScanKernels* k = SelectKernel("scan", list, ActiveIsaLevel()).fn;
  return *k;
}

}  // namespace adalog::search
