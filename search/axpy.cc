// Reference AxpyF32F64 and the run-time choice; see axpy.h.
#include "search/axpy.h"

#include "runtime/cpu_features.h"

namespace adalog::search {

void AxpyF32F64Ref(double* a, double d, const float* w, int n) {
  for (int i = 0; i < n; ++i) a[i] += d * static_cast<double>(w[i]);
}

AxpyF32F64Fn SelectAxpyF32F64() {
  const IsaLevel l = ActiveIsaLevel();
  if (l >= IsaLevel::kAvx512) return AxpyF32F64Avx512;
  if (l >= IsaLevel::kAvx2) return AxpyF32F64Avx2;
  return AxpyF32F64Ref;
}

}  // namespace adalog::search
