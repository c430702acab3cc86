// Run-time dispatched float UniformSteBatch without a record (the training path of block
// reconstruction): the reference is ste_batch.h's template; the AVX-512 one (ste_batch__avx512.cc,
// compiled with AVX-512 flags and -ffp-contract=off) performs the same IEEE operations per element
// (a true division x / s, round-to-nearest-even by roundscale, the same subtract / add / multiply
// in the same order, selects for the regions), so it gives the reference's bytes
// (tests/search/block_grad_test.cc, SteBatch.UniformKernelsSameBytes).
#pragma once

#include <cstdint>

namespace adalog::search {

// x[i] = UniformSte(x[i], s, z, cmin, cmax, &dx[i], &ds[i], nullptr, false) for i in [0, n).
using UniformSteBatchF32Fn = void (*)(float* x, int64_t n, float s, int32_t z, int32_t cmin,
                                      int32_t cmax, float* dx, float* ds);

void UniformSteBatchF32Ref(float* x, int64_t n, float s, int32_t z, int32_t cmin, int32_t cmax,
                           float* dx, float* ds);
void UniformSteBatchF32Avx512(float* x, int64_t n, float s, int32_t z, int32_t cmin, int32_t cmax,
                              float* dx, float* ds);

// The fastest implementation the CPU (and ADALOG_ISA) allows.
UniformSteBatchF32Fn SelectUniformSteBatchF32();

}  // namespace adalog::search
