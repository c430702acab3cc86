// a[0..n) += d * double(w[0..n)) with one rounding per multiply and per add (no fused
// multiply-add), so every implementation gives bit-identical results; the AVX2 / AVX-512 ones
// are chosen at run time (runtime/cpu_features.h) and compiled with per-file ISA flags and
// -ffp-contract=off (search/CMakeLists.txt).
#pragma once

#include <cstdint>

namespace adalog::search {

using AxpyF32F64Fn = void (*)(double* a, double d, const float* w, int n);

void AxpyF32F64Ref(double* a, double d, const float* w, int n);
void AxpyF32F64Avx2(double* a, double d, const float* w, int n);
void AxpyF32F64Avx512(double* a, double d, const float* w, int n);

// The fastest implementation the CPU (and ADALOG_ISA) allows.
AxpyF32F64Fn SelectAxpyF32F64();

// Several updates of one row: for e = 0..cnt-1 in order, a[0..n) += d[e] * double(w + k[e] * ldw)
// [0..n). Each element receives its updates in list order with one rounding per multiply and
// per add, so every implementation gives the reference's bits; the AVX-512 one keeps the row in
// registers (a chunk at a time) instead of loading and storing it once per update.
using RowUpdateFn = void (*)(double* a, const float* w, int ldw, const int32_t* k,
                             const double* d, int cnt, int n);
void RowUpdateRef(double* a, const float* w, int ldw, const int32_t* k, const double* d, int cnt,
                  int n);
void RowUpdateAvx512(double* a, const float* w, int ldw, const int32_t* k, const double* d,
                     int cnt, int n);
RowUpdateFn SelectRowUpdate();

// a[0..n) += d * g[0..n) in double, one rounding per multiply and per add (bit-identical).
using AxpyF64Fn = void (*)(double* a, double d, const double* g, int n);
void AxpyF64Ref(double* a, double d, const double* g, int n);
void AxpyF64Avx512(double* a, double d, const double* g, int n);
AxpyF64Fn SelectAxpyF64();

}  // namespace adalog::search
