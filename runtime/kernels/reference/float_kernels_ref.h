// Plain scalar float islands: the reference every vectorized kernel is tested against. Equations
// in runtime/kernels/float_kernels.h. Never optimise this file.
#pragma once

#include <cstdint>

namespace adalog {
namespace ref {

void LayerNorm(const float* x, float* y, int64_t rows, int n, const float* gamma,
               const float* beta, float eps);
void Softmax(const float* x, float* y, int64_t rows, int n);
void GeluErf(const float* x, float* y, int64_t n);
void GeluTanh(const float* x, float* y, int64_t n);
void Add(const float* a, const float* b, float* y, int64_t n);

}  // namespace ref
}  // namespace adalog
