// Reference float UniformSteBatch kernel and the run-time choice; see ste_batch_kernels.h.
#include "search/recon/ste_batch_kernels.h"

#include <vector>

#include "runtime/cpu_features.h"
#include "runtime/kernel_registry.h"
#include "search/recon/ste_batch.h"

namespace adalog::search {

void UniformSteBatchF32Ref(float* x, int64_t n, float s, int32_t z, int32_t cmin, int32_t cmax,
                           float* dx, float* ds) {
  UniformSteBatch<float>(x, n, s, z, cmin, cmax, dx, ds, nullptr);
}

UniformSteBatchF32Fn SelectUniformSteBatchF32() {
  static const std::vector<KernelImpl<UniformSteBatchF32Fn>> list = {
      {"uniform_ste_batch_f32__avx512", IsaLevel::kAvx512, {}, UniformSteBatchF32Avx512},
      {"uniform_ste_batch_f32__ref", IsaLevel::kRef, {}, UniformSteBatchF32Ref},
  };
  static const UniformSteBatchF32Fn f =
      SelectKernel("uniform_ste_batch_f32", list, ActiveIsaLevel()).fn;
  return f;
}

}  // namespace adalog::search
