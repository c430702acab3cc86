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

// The log quantizer's code without a log2 per element. LogSte's code r(u) = round(-log2(u) num /
// den) of the clamped u in [1e-15, 1] only steps down as u grows, so it is fixed by thresholds:
// th[k - 1] = the largest float u in [1e-15, 1] with r(u) >= k, for k = 1 .. 2^bits (-1 when there
// is none), and r(u) = #{k : u <= th[k - 1]} while that is below 2^bits (r >= 2^bits, the zero
// region, otherwise). Found by bisection over the float bit patterns with the reference's own
// expression (ste_batch.h's RoundHalfEvenFast of (-std::log2(u) num) / den, so the libm log2f
// that training links). Exact when r is monotone in u at the floats near each threshold, which
// holds for a log2f within an ulp; SteBatch.LogThresholdsGiveTheCode checks every float within
// 2^12 ulps of every threshold and a stride through the whole range against the reference.
void LogSteThresholdsF32(int bits, int num, int den, float* th);

// x[i] = LogSte(x[i], s, bits, num, den, shift, shift_folded, &dx[i], &ds[i], nullptr, false),
// given levels = LogSteLevels(bits, ...) and th = LogSteThresholdsF32(bits, num, den). The
// AVX-512 kernel handles bits <= 4 (16 levels in one register) and gives chunks holding a NaN
// to the reference; other bit widths run the reference.
using LogSteBatchF32Fn = void (*)(float* x, int64_t n, float s, int bits, int num, int den,
                                  float shift, bool shift_folded, const float* levels,
                                  const float* th, float* dx, float* ds);
void LogSteBatchF32Ref(float* x, int64_t n, float s, int bits, int num, int den, float shift,
                       bool shift_folded, const float* levels, const float* th, float* dx,
                       float* ds);
void LogSteBatchF32Avx512(float* x, int64_t n, float s, int bits, int num, int den, float shift,
                          bool shift_folded, const float* levels, const float* th, float* dx,
                          float* ds);
LogSteBatchF32Fn SelectLogSteBatchF32();

}  // namespace adalog::search
