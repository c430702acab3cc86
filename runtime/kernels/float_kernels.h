// The float islands between GEMMs (LayerNorm, Softmax, GELU, residual add): the function table
// every ISA level implements, and run-time selection from an ordered list ending at the reference.
//
// Exact equations (all float32; rows are contiguous, row r starts at r * n):
//   LayerNorm : mean_r = (1/n) sum_i x[r][i];  var_r = (1/n) sum_i (x[r][i] - mean_r)^2  (biased)
//               y[r][i] = (x[r][i] - mean_r) / sqrt(var_r + eps) * gamma[i] + beta[i]
//   Softmax   : m_r = max_i x[r][i];  y[r][i] = exp(x[r][i] - m_r) / sum_j exp(x[r][j] - m_r)
//               (the attention scale is applied by the q@k^T GEMM, not here)
//   GELU erf  : y = 0.5 * x * (1 + erf(x / sqrt(2)))
//   GELU tanh : y = 0.5 * x * (1 + tanh(sqrt(2/pi) * (x + 0.044715 * x^3)))
//   Add       : y[i] = a[i] + b[i]   (y may alias a or b)
// In-place use (y == x) is allowed for every kernel. Kernels are single-threaded; callers split
// rows / elements across threads, so results never depend on the thread count.
//
// Agreement with the reference (tests/runtime/kernels_float_test.cc): Add is bit-exact; the others
// differ only by summation order and by the polynomial exp/erf/tanh (relative error ~2e-7), see
// the tolerances in kernels/float_kernels_tolerance.h.
#pragma once

#include <cstdint>

#include "runtime/cpu_features.h"

namespace adalog {

using LayerNormFn = void (*)(const float* x, float* y, int64_t rows, int n, const float* gamma,
                             const float* beta, float eps);
using SoftmaxFn = void (*)(const float* x, float* y, int64_t rows, int n);
using EltwiseFn = void (*)(const float* x, float* y, int64_t n);
using AddFn = void (*)(const float* a, const float* b, float* y, int64_t n);

struct FloatKernels {
  const char* name;  // e.g. "float_islands__avx512"
  IsaLevel isa;
  LayerNormFn layer_norm;
  SoftmaxFn softmax;
  EltwiseFn gelu_erf;
  EltwiseFn gelu_tanh;
  AddFn add;
};

// Implementations per level (defined in their own translation units).
const FloatKernels& FloatKernelsReference();
const FloatKernels& FloatKernelsAvx2();
const FloatKernels& FloatKernelsAvx512();

// The table for exactly this level, or nullptr when the CPU cannot run it or no table exists for it
// (kAvx512Vnni has none: float islands gain nothing from VNNI).
const FloatKernels* FloatKernelsForLevel(IsaLevel level);

// First implementation (fastest first, reference last) whose level is <= cap and supported.
// With ADALOG_VERBOSE set, prints the choice and why each faster one declined.
const FloatKernels& SelectFloatKernels(IsaLevel cap);
inline const FloatKernels& SelectFloatKernels() { return SelectFloatKernels(ActiveIsaLevel()); }

}  // namespace adalog
