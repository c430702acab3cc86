// a[0..n) += d * double(w[0..n)) with one rounding per multiply and per add (no fused
// multiply-add), so every implementation gives bit-identical results; the AVX2 / AVX-512 ones
// are chosen at run time (runtime/cpu_features.h) and compiled with per-file ISA flags and
// -ffp-contract=off (search/CMakeLists.txt).
#pragma once

namespace adalog::search {

using AxpyF32F64Fn = void (*)(double* a, double d, const float* w, int n);

void AxpyF32F64Ref(double* a, double d, const float* w, int n);
void AxpyF32F64Avx2(double* a, double d, const float* w, int n);
void AxpyF32F64Avx512(double* a, double d, const float* w, int n);

// The fastest implementation the CPU (and ADALOG_ISA) allows.
AxpyF32F64Fn SelectAxpyF32F64();

}  // namespace adalog::search
