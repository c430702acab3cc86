// Fused float islands that write log codes directly (no float tensor, no per-element log2):
//   Softmax rows -> AdaLog / Log2 codes of the probabilities (matmul2's A operand),
//   GELU         -> Shift-AdaLog / Shift-Log2 codes of gelu(x) + shift (fc2's input).
// Exact equations (float ops, polynomial exp/erf, order): runtime/kernels/reference/
// logcode_writers_ref.h. Every implementation (avx512, avx2, scalar reference) produces the same
// codes bit for bit; the codes equal quant's LogQuantizer::Encode of the reference's float
// outputs. Against libm's exp/erf the float outputs differ by < 2e-6 relative (tested), which
// can move a value across a code boundary (counted in the test).
#pragma once

#include <cstdint>
#include <vector>

#include "quant/log_encoder.h"
#include "quant/params.h"
#include "runtime/cpu_features.h"

namespace adalog::intk {

inline constexpr int kMaxSoftmaxRow = 1 << 16;

struct LogCodeWriter {
  LogParams params;
  float shift = 0.f;         // GELU: Q(g + shift); softmax: 0
  FastLogEncoder encoder;    // quant's encoder (scalar path, reference)
  std::vector<int32_t> c0;   // the encoder table, widened for 32-bit gathers
  const float* thr = nullptr;
  int32_t zero_code = 0;
  bool unit_scale = true;
  explicit LogCodeWriter(const LogParams& p) : params(p), encoder(p) {}
};
// Validates p (Log2 or AdaLog kinds; throws adalog::Error otherwise).
LogCodeWriter MakeLogCodeWriter(const LogParams& p, float shift = 0.f);

// codes[r][i] for rows x n logits (n <= kMaxSoftmaxRow). Row-parallel by the caller.
void SoftmaxToLogCodes(const LogCodeWriter& w, const float* x, int64_t rows, int n,
                       uint8_t* codes, IsaLevel cap = ActiveIsaLevel());
// codes[i] = Encode(gelu(x[i]) + shift).
void GeluToLogCodes(const LogCodeWriter& w, const float* x, int64_t n, uint8_t* codes,
                    IsaLevel cap = ActiveIsaLevel());
// The implementation the two calls above select under `cap` (softmax_logcodes__avx512, ...).
const char* SoftmaxToLogCodesImplName(IsaLevel cap);
const char* GeluToLogCodesImplName(IsaLevel cap);

// Per-ISA entry points (own translation units).
void SoftmaxToLogCodesAvx512(const LogCodeWriter& w, const float* x, int64_t rows, int n,
                             uint8_t* codes);
void GeluToLogCodesAvx512(const LogCodeWriter& w, const float* x, int64_t n, uint8_t* codes);
void SoftmaxToLogCodesAvx2(const LogCodeWriter& w, const float* x, int64_t rows, int n,
                           uint8_t* codes);
void GeluToLogCodesAvx2(const LogCodeWriter& w, const float* x, int64_t n, uint8_t* codes);
// codes[i] = quant's Encode(x[i] (+ w.shift if add_shift)) through the encoder table (two
// gathers per vector): the large-table path of ThresholdLogEncoder (code_encoders.h).
void LogCodesFromFloatsAvx512(const LogCodeWriter& w, bool add_shift, const float* x, int64_t n,
                              uint8_t* codes);
void LogCodesFromFloatsAvx2(const LogCodeWriter& w, bool add_shift, const float* x, int64_t n,
                            uint8_t* codes);

}  // namespace adalog::intk
