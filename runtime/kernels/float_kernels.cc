// Run-time selection of the float-island kernels from an ordered list (fastest first), through
// runtime/kernel_registry.h.
#include "runtime/kernels/float_kernels.h"

#include <vector>

#include "runtime/kernel_registry.h"

namespace adalog {

const FloatKernels* FloatKernelsForLevel(IsaLevel level) {
  if (!IsaSupported(level)) return nullptr;
  switch (level) {
    case IsaLevel::kRef: return &FloatKernelsReference();
    case IsaLevel::kAvx2: return &FloatKernelsAvx2();
    case IsaLevel::kAvx512: return &FloatKernelsAvx512();
    case IsaLevel::kAvx512Vnni: return nullptr;
  }
  return nullptr;
}

const FloatKernels& SelectFloatKernels(IsaLevel cap) {
  using Impl = KernelImpl<const FloatKernels* (*)()>;
  static const std::vector<Impl> list = {
      {"float_islands__avx512", IsaLevel::kAvx512, {}, [] { return &FloatKernelsAvx512(); }},
      {"float_islands__avx2", IsaLevel::kAvx2, {}, [] { return &FloatKernelsAvx2(); }},
      {"float_islands__ref", IsaLevel::kRef, {}, [] { return &FloatKernelsReference(); }},
  };
  return *SelectKernel("float_islands", list, cap).fn();
}

}  // namespace adalog
