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

// The fc2 log A-out sweep (search/log_act_out.h), one row and one chunk of kSweepChunk output
// columns at a time, in two steps:
//  - SweepSnapshots: m = m0 + m1, both start at 0; for each event e in order, the row elements
//    with position rp[r] < g[e] are added first (m_{r mod 2} += double(wc[rk[r]][.]), in row
//    order: two partial sums halve the add latency chain); then, if m changed
//    since the last snapshot, m is stored as snapshot S[ns++]; sid[e] = the latest snapshot, or
//    -1 while no element has been added (m == 0). Returns ns (<= min(nev, K)).
//  - SweepCombine: out = l0 * cs + sum_i a[i] * S[sid[ev[i]]] over i = 0..cnt-1 in order
//    (terms with sid -1 skipped).
// wc: [K][kSweepChunk] floats (zero padded), S: [..][kSweepChunk]. One rounding per multiply and
// per add in the stated order: every implementation gives the same bits.
constexpr int kSweepChunk = 64;
using SweepSnapshotsFn = int (*)(const int64_t* g, int64_t nev, const uint32_t* rp, const int32_t* rk,
                                 int K, const float* wc, double* S, int32_t* sid);
using SweepCombineFn = void (*)(double l0, const double* cs, const double* a, const int32_t* ev,
                                int cnt, const int32_t* sid, const double* S, double* out);
int SweepSnapshotsRef(const int64_t* g, int64_t nev, const uint32_t* rp, const int32_t* rk, int K,
                      const float* wc, double* S, int32_t* sid);
int SweepSnapshotsAvx512(const int64_t* g, int64_t nev, const uint32_t* rp, const int32_t* rk, int K,
                         const float* wc, double* S, int32_t* sid);
void SweepCombineRef(double l0, const double* cs, const double* a, const int32_t* ev, int cnt,
                     const int32_t* sid, const double* S, double* out);
void SweepCombineAvx512(double l0, const double* cs, const double* a, const int32_t* ev, int cnt,
                        const int32_t* sid, const double* S, double* out);
// W-out's sweep (search/weight_out.h), one chunk of kSweepChunk source columns, fused: m = m0 +
// m1 over the rows of the sorted order as in SweepSnapshots (rp = 0, 1, 2, ...: the rows r <
// g[e] are added first, m_{r mod 2} += double(wc[rk[r]][.])); then acc[item[e]][.] -= m, events
// in order. acc: [items][kSweepChunk]. The same bits as SweepSnapshots + SweepCombine with
// coefficients -1 (whose per-item sums run in the same event order); no snapshot buffer.
using SweepSubtractFn = void (*)(const int64_t* g, const int32_t* item, int64_t nev, const int32_t* rk,
                                 int K, const float* wc, double* acc);
void SweepSubtractRef(const int64_t* g, const int32_t* item, int64_t nev, const int32_t* rk, int K,
                      const float* wc, double* acc);
void SweepSubtractAvx512(const int64_t* g, const int32_t* item, int64_t nev, const int32_t* rk, int K,
                         const float* wc, double* acc);
struct SweepKernels {
  SweepSnapshotsFn snapshots;
  SweepCombineFn combine;
  SweepSubtractFn subtract;
};
const SweepKernels& SelectSweepKernels();
const SweepKernels& RefSweepKernels();

}  // namespace adalog::search
