// Reference AxpyF32F64 and the run-time choice; see axpy.h.
#include "search/axpy.h"

#include <vector>

#include "runtime/cpu_features.h"
#include "runtime/kernel_registry.h"

namespace adalog::search {

void AxpyF32F64Ref(double* a, double d, const float* w, int n) {
  for (int i = 0; i < n; ++i) a[i] += d * static_cast<double>(w[i]);
}

void RowUpdateRef(double* a, const float* w, int ldw, const int32_t* k, const double* d, int cnt,
                  int n) {
  for (int e = 0; e < cnt; ++e) AxpyF32F64Ref(a, d[e], w + static_cast<int64_t>(k[e]) * ldw, n);
}

void AxpyF64Ref(double* a, double d, const double* g, int n) {
  for (int i = 0; i < n; ++i) {
    const double p = d * g[i];
    a[i] += p;
  }
}

int SweepSnapshotsRef(const int64_t* g, int64_t nev, const uint32_t* rp, const int32_t* rk, int K,
                      const float* wc, double* S, int32_t* sid) {
  constexpr int C = kSweepChunk;
  double m[2][C] = {};  // partial sums of the elements of even / odd row rank
  int r = 0, ns = 0, r_snap = 0;
  for (int64_t e = 0; e < nev; ++e) {
    while (r < K && rp[r] < g[e]) {
      const float* w = wc + static_cast<int64_t>(rk[r]) * C;
      for (int o = 0; o < C; ++o) m[r & 1][o] += static_cast<double>(w[o]);
      ++r;
    }
    if (r > r_snap) {
      for (int o = 0; o < C; ++o) S[static_cast<int64_t>(ns) * C + o] = m[0][o] + m[1][o];
      ++ns;
      r_snap = r;
    }
    sid[e] = ns - 1;
  }
  return ns;
}

void SweepCombineRef(double l0, const double* cs, const double* a, const int32_t* ev, int cnt,
                     const int32_t* sid, const double* S, double* out) {
  constexpr int C = kSweepChunk;
  for (int o = 0; o < C; ++o) out[o] = l0 * cs[o];
  for (int i = 0; i < cnt; ++i) {
    const int32_t s = sid[ev[i]];
    if (s < 0) continue;
    const double* p = S + static_cast<int64_t>(s) * C;
    for (int o = 0; o < C; ++o) {
      const double t = a[i] * p[o];
      out[o] += t;
    }
  }
}

void SweepSubtractRef(const int64_t* g, const int32_t* item, int64_t nev, const int32_t* rk, int K,
                      const float* wc, double* acc) {
  constexpr int C = kSweepChunk;
  double m[2][C] = {};
  int r = 0;
  for (int64_t e = 0; e < nev; ++e) {
    while (r < K && r < g[e]) {
      const float* w = wc + static_cast<int64_t>(rk[r]) * C;
      for (int o = 0; o < C; ++o) m[r & 1][o] += static_cast<double>(w[o]);
      ++r;
    }
    double* a = acc + static_cast<int64_t>(item[e]) * C;
    for (int o = 0; o < C; ++o) a[o] -= m[0][o] + m[1][o];
  }
}

const SweepKernels& RefSweepKernels() {
  static const SweepKernels k{SweepSnapshotsRef, SweepCombineRef, SweepSubtractRef};
  return k;
}

// Ordered lists (runtime/kernel_registry.h), chosen once per process at ActiveIsaLevel().
const SweepKernels& SelectSweepKernels() {
  static const SweepKernels avx512{SweepSnapshotsAvx512, SweepCombineAvx512, SweepSubtractAvx512};
  static const std::vector<KernelImpl<const SweepKernels*>> list = {
      {"sweep__avx512", IsaLevel::kAvx512, {}, &avx512},
      {"sweep__ref", IsaLevel::kRef, {}, &RefSweepKernels()},
  };
  static const SweepKernels* k = SelectKernel("sweep", list, ActiveIsaLevel()).fn;
  return *k;
}

AxpyF64Fn SelectAxpyF64() {
  static const std::vector<KernelImpl<AxpyF64Fn>> list = {
      {"axpy_f64__avx512", IsaLevel::kAvx512, {}, AxpyF64Avx512},
      {"axpy_f64__ref", IsaLevel::kRef, {}, AxpyF64Ref},
  };
  static const AxpyF64Fn f = SelectKernel("axpy_f64", list, ActiveIsaLevel()).fn;
  return f;
}

RowUpdateFn SelectRowUpdate() {
  static const std::vector<KernelImpl<RowUpdateFn>> list = {
      {"row_update_f32f64__avx512", IsaLevel::kAvx512, {}, RowUpdateAvx512},
      {"row_update_f32f64__ref", IsaLevel::kRef, {}, RowUpdateRef},
  };
  static const RowUpdateFn f = SelectKernel("row_update_f32f64", list, ActiveIsaLevel()).fn;
  return f;
}

AxpyF32F64Fn SelectAxpyF32F64() {
  static const std::vector<KernelImpl<AxpyF32F64Fn>> list = {
      {"axpy_f32f64__avx512", IsaLevel::kAvx512, {}, AxpyF32F64Avx512},
      {"axpy_f32f64__avx2", IsaLevel::kAvx2, {}, AxpyF32F64Avx2},
      {"axpy_f32f64__ref", IsaLevel::kRef, {}, AxpyF32F64Ref},
  };
  static const AxpyF32F64Fn f = SelectKernel("axpy_f32f64", list, ActiveIsaLevel()).fn;
  return f;
}

}  // namespace adalog::search
