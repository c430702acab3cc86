// Reference AxpyF32F64 and the run-time choice; see axpy.h.
#include "search/axpy.h"

#include "runtime/cpu_features.h"

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

AxpyF64Fn SelectAxpyF64() {
  return ActiveIsaLevel() >= IsaLevel::kAvx512 ? AxpyF64Avx512 : AxpyF64Ref;
}

RowUpdateFn SelectRowUpdate() {
  return ActiveIsaLevel() >= IsaLevel::kAvx512 ? RowUpdateAvx512 : RowUpdateRef;
}

AxpyF32F64Fn SelectAxpyF32F64() {
  const IsaLevel l = ActiveIsaLevel();
  if (l >= IsaLevel::kAvx512) return AxpyF32F64Avx512;
  if (l >= IsaLevel::kAvx2) return AxpyF32F64Avx2;
  return AxpyF32F64Ref;
}

}  // namespace adalog::search
