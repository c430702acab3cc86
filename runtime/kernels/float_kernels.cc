// Run-time selection of the float-island kernels from an ordered list (fastest first).
#include "runtime/kernels/float_kernels.h"

#include <cstdio>

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
  const FloatKernels* (*const candidates[])() = {
      [] { return &FloatKernelsAvx512(); },
      [] { return &FloatKernelsAvx2(); },
      [] { return &FloatKernelsReference(); },
  };
  const bool verbose = DispatchVerbose();
  for (auto get : candidates) {
    const FloatKernels* k = get();
    if (static_cast<int>(k->isa) > static_cast<int>(cap)) {
      if (verbose) {
        std::fprintf(stderr, "adalog: float islands: %s declined: ISA capped at %s\n", k->name,
                     IsaLevelName(cap));
      }
      continue;
    }
    if (!IsaSupported(k->isa)) {
      if (verbose) {
        std::fprintf(stderr, "adalog: float islands: %s declined: CPU lacks %s\n", k->name,
                     IsaLevelName(k->isa));
      }
      continue;
    }
    if (verbose) std::fprintf(stderr, "adalog: float islands: selected %s\n", k->name);
    return *k;
  }
  return FloatKernelsReference();
}

}  // namespace adalog
