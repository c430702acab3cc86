// Vector encoders for the float islands of the integer executor: float activations -> the codes
// quant/ defines, bit for bit, without a per-element log2, division or table gather.
//
// Log kinds (LogQuantizer, ShiftLogQuantizer: softmax probabilities, shifted GELU outputs).
// quant's code is a monotone non-increasing function of the float input x over the finite
// floats (the exact rounding of a decreasing real function of x, clamped; the shift is one
// float add, which is monotone too). So with
//     t_c = the smallest finite float x with code(x) <= c     (c = 0 .. C - 1, C = code(-FLT_MAX))
// every finite x has
//     code(x) = #{ c : x < t_c }
// and, t being non-increasing, the count is a prefix length found by a branch-free binary search
// over a table padded to a power of two P >= C with -inf (never counted). The thresholds are
// found once, by bisection over the ordered float bit patterns, on quant's own scalar Encode;
// the builder re-checks the equation at every threshold and its neighbours and throws
// adalog::Error (internal error) if quant's code were not monotone. Non-finite inputs take
// quant's scalar Encode (no threshold can express NaN, and +-inf are not finite).
//
// Quantizers built from a LogQuantizer / ShiftLogQuantizer with at most 64 codes take the
// key-bucket table below where it fits (one or two compares instead of the search; every bit
// width 2-6 of the tests does). The search: lookups per 16 lanes: P <= 16 one vpermps, P <= 64
// vpermi2ps (+ a blend for 64); AVX2 (8 lanes): vpermps over 8-entry registers + blends up to
// P = 32, gathers above; log2(P) + 1 steps. Larger tables (7 and 8 bits) would need a gather per step (measured 41% of a W8A8
// DeiT-S run), so quantizers of the Log2 / AdaLog kinds there take the exponent table below
// (AVX-512) or quant's bucket table (AVX2: LogCodesFromFloats*, two gathers per vector, the
// fused writers' exact encode). Speeds: bench_int_kernels BM_LogEncode, bench/RESULTS.md.
//
// Uniform asymmetric kind (UniformQuantizer with uint8 codes): the same float operations as
// quant's Encode (IEEE division, NaN -> 0, clamp, round half to even, + z), 16 or 8 lanes.
#pragma once

#include <cstdint>
#include <cstring>
#include <functional>
#include <optional>
#include <vector>

#include "quant/log_quantizers.h"
#include "quant/uniform.h"
#include "runtime/cpu_features.h"
#include "runtime/kernels/int/logcode_writers.h"

namespace adalog::intk {

// Large tables (Log2 / AdaLog at 7 and 8 bits), AVX-512: y = x (+ shift) as quant computes it,
// then the code of y > 0 from its float exponent e: the thresholds of quant's code over y are
// geometric (at most 4 per octave for q >= 10), so with B_i = 2^(e0 + i - 127),
//   code(y) = base[i] - #{k : thr[k][i] <= y},   i = clamp(e - e0, 0, 63)
//   base[i] = #{c : t_c > B_i},  thr[.][i] = the thresholds inside (B_i, B_i+1), +inf padded;
// every y <= 0 has the code of 0. Built from the exact thresholds and re-checked like them.
struct ExponentCodeTable {
  static constexpr int kBuckets = 64;
  static constexpr int kPerBucket = 4;
  int32_t e0 = 0;
  int32_t code_nonpos = 0;
  float shift = 0.f;
  bool add_shift = false;
  alignas(64) int32_t base[kBuckets] = {};
  alignas(64) float thr[kPerBucket][kBuckets] = {};
};

// Small tables (at most 64 codes: every bit width below 7), AVX2 and AVX-512: the idea of
// ExponentCodeTable with finer buckets, so that one compare finishes the code. y = x (+ shift) as
// quant computes it; for y > 0 the bucket is the float's exponent and its top M mantissa bits,
//   i = clamp((bits(y) >> (23 - M)) - k0, 0, 31),   code(y) = base[i] - #{k : thr[k][i] <= y}
//   base[i] = #{c : t_c >= lower edge of bucket i},  thr[.][i] = the thresholds inside bucket i
// (ascending, +inf padded); every y <= 0 has the code of 0. The builder takes the smallest M
// (0..7) for which the thresholds span at most 32 buckets and no bucket holds more than one
// threshold, else the smallest with at most two; otherwise the table is not built. Lookups are
// register permutes (AVX2: 4 vpermps + 3 blends per table, AVX-512: one vpermi2ps). Built from
// the exact thresholds and re-checked at every threshold's neighbourhood and bucket edge.
struct KeyBucketTable {
  static constexpr int kBuckets = 32;
  static constexpr int kMaxPerBucket = 2;
  int32_t k0 = 0;
  int32_t key_shift = 23;  // 23 - M
  int per_bucket = 1;      // 1 or 2 threshold lookups
  int32_t code_nonpos = 0;
  float shift = 0.f;
  bool add_shift = false;
  alignas(64) int32_t base[kBuckets] = {};
  alignas(64) float thr[kMaxPerBucket][kBuckets] = {};
};

class ThresholdLogEncoder {
 public:
  // From quant's scalar code function (must be monotone non-increasing in x over the finite
  // floats, codes 0..255). Throws adalog::Error if the built table does not reproduce it.
  ThresholdLogEncoder(std::function<int32_t(float)> code, IsaLevel cap = ActiveIsaLevel());
  explicit ThresholdLogEncoder(const LogQuantizer& q, IsaLevel cap = ActiveIsaLevel());
  explicit ThresholdLogEncoder(const ShiftLogQuantizer& q, IsaLevel cap = ActiveIsaLevel());

  // codes[i] = code(x[i]) for i < n.
  void Encode(const float* x, int64_t n, uint8_t* codes) const;

  // Table: thr[0..padded) (non-increasing, -inf padded), padded a power of two >= max_code.
  const std::vector<float>& thresholds() const { return thr_; }
  int max_code() const { return max_code_; }
  int padded() const { return padded_; }
  int32_t Scalar(float x) const { return code_(x); }  // quant's code (reference)
  IsaLevel isa() const { return isa_; }
  // The path Encode takes: "scalar", "permute", "threshold-gather", "key-bucket", "exponent",
  // "bucket-gather".
  const char* path() const;
  // The small-table path's table where built (tests, DescribeKernels), else nullptr.
  const KeyBucketTable* key_table() const { return key_table_ ? &*key_table_ : nullptr; }

 private:
  std::function<int32_t(float)> code_;
  std::optional<LogCodeWriter> table_;  // large tables: quant's bucket table instead
  std::optional<ExponentCodeTable> exp_table_;  // large tables, AVX-512 (preferred)
  std::optional<KeyBucketTable> key_table_;     // small tables (preferred where built)
  bool add_shift_ = false;
  float shift_ = 0.f;
  void BuildLargeTablePaths(const LogQuantizer& base, bool add_shift, float shift);
  void BuildKeyBucketPath(const LogQuantizer& base, bool add_shift, float shift);
  std::vector<float> thr_;
  int max_code_ = 0;
  int padded_ = 1;
  int log2_padded_ = 0;
  IsaLevel isa_ = IsaLevel::kRef;
};

// quant's UniformQuantizer::Encode (asymmetric, uint8 codes) on n floats, at the given ISA.
class VectorUniformEncoder {
 public:
  explicit VectorUniformEncoder(const UniformQuantizer& q, IsaLevel cap = ActiveIsaLevel());
  void Encode(const float* x, int64_t n, uint8_t* codes) const;
  const UniformQuantizer& quantizer() const { return q_; }
  const UniformParams& params() const { return q_.params(); }
  IsaLevel isa() const { return isa_; }
  float clamp_lo() const { return lo_; }  // CodeMin - z (bound of x / s)
  float clamp_hi() const { return hi_; }  // CodeMax - z

 private:
  UniformQuantizer q_;
  float lo_, hi_;  // clamp bounds of x / s: CodeMin - z, CodeMax - z
  IsaLevel isa_ = IsaLevel::kRef;
};

// Rows of consecutive segments, each encoded by its own VectorUniformEncoder (the integer
// executor's q / k / v codes: 3 x heads segments of head_dim floats per qkv output row, in one
// call per row range instead of one per segment). codes[r][j] = the segment's Encode of
// x[r][j], bit for bit. With AVX-512 and every segment a multiple of 16 floats, each 16-lane
// vector takes its segment's parameters (the same operations as EncodeUniformU8Avx512);
// otherwise the segments' own Encode runs.
class SegmentedUniformEncoder {
 public:
  SegmentedUniformEncoder() = default;
  // segments[i] covers `lengths[i]` floats, in row order.
  SegmentedUniformEncoder(const std::vector<const VectorUniformEncoder*>& segments,
                          const std::vector<int>& lengths);
  // rows x [rows][row_length()] (ldx floats apart) -> codes (ldc bytes apart).
  void Encode(const float* x, int64_t ldx, int64_t rows, uint8_t* codes, int64_t ldc) const;
  int row_length() const { return row_; }
  bool vectorized() const { return vectorized_; }

 private:
  std::vector<const VectorUniformEncoder*> seg_;
  std::vector<int> len_;
  int row_ = 0;
  bool vectorized_ = false;
  // Per 16-lane vector (vectorized path): scale, clamp bounds of x / s, zero point.
  std::vector<float> scale_, lo_, hi_;
  std::vector<int32_t> zero_;
};

// Per-ISA entry points (own translation units). The log ones encode n elements with the table
// thr (1 << log2_padded entries) and return true if any x was non-finite; those elements hold
// an unspecified code, which the caller overwrites with quant's scalar Encode.
bool EncodeLogThresholdsAvx512(const float* thr, int log2_padded, const float* x, int64_t n,
                               uint8_t* codes);
bool EncodeLogExponentAvx512(const ExponentCodeTable& t, const float* x, int64_t n,
                             uint8_t* codes);
bool EncodeLogThresholdsAvx2(const float* thr, int log2_padded, const float* x, int64_t n,
                             uint8_t* codes);
bool EncodeLogKeyBucketsAvx512(const KeyBucketTable& t, const float* x, int64_t n, uint8_t* codes);
bool EncodeLogKeyBucketsAvx2(const KeyBucketTable& t, const float* x, int64_t n, uint8_t* codes);
// KeyBucketTable's equation for one finite y = x (+ shift): the kernels' tails and the builder's check.
inline int32_t KeyBucketCode(const KeyBucketTable& t, float y) {
  if (!(y > 0.0f)) return t.code_nonpos;
  int32_t b;
  std::memcpy(&b, &y, sizeof b);
  int32_t i = (b >> t.key_shift) - t.k0;
  i = i < 0 ? 0 : (i > KeyBucketTable::kBuckets - 1 ? KeyBucketTable::kBuckets - 1 : i);
  int32_t c = t.base[i];
  for (int k = 0; k < t.per_bucket; ++k) c -= static_cast<int32_t>(t.thr[k][i] <= y);
  return c;
}
// The same binary search, one element (finite x only): the tails of the vector kernels.
inline int32_t ThresholdCount(const float* thr, int log2_padded, float x) {
  int32_t pos = 0;
  for (int32_t step = (int32_t{1} << log2_padded) >> 1; step >= 1; step >>= 1) {
    if (x < thr[pos + step - 1]) pos += step;
  }
  return pos + static_cast<int32_t>(x < thr[pos]);
}
// Vectors of 16 floats with per-vector parameters (SegmentedUniformEncoder): row r, vector v
// encodes x[r * ldx + 16 v ..] with scale[v], lo[v], hi[v], zero[v].
void EncodeUniformU8VectorsAvx512(const float* scale, const float* lo, const float* hi,
                                  const int32_t* zero, int nvec, const float* x, int64_t ldx,
                                  int64_t rows, uint8_t* codes, int64_t ldc);
void EncodeUniformU8Avx512(float scale, float lo, float hi, int32_t zero_point, const float* x,
                           int64_t n, uint8_t* codes);
void EncodeUniformU8Avx2(float scale, float lo, float hi, int32_t zero_point, const float* x,
                         int64_t n, uint8_t* codes);

}  // namespace adalog::intk
