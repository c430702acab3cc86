// Quantizer parameter types: bit-width, scale, zero point, log base, and the granularity
// (per-tensor, per-channel along an explicit axis, per-head) each set of parameters applies at.
//
// Contract: a parameter struct is plain data. It is checked by Validate() (or by the quantizer
// constructors, which call it) and every violation throws adalog::Error naming the parameter
// and its value. After validation, encode/decode never fail.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace adalog {

// Bit-widths the quantizers support (method §1: 3, 4, 6 in the configs; 2..8 allowed).
inline constexpr int kMinBits = 2;
inline constexpr int kMaxBits = 8;

// ---------------------------------------------------------------------------------------------
// Uniform (method §2.1)
// ---------------------------------------------------------------------------------------------
enum class UniformMode {
  // c = clamp(round(x/s) + z, 0, 2^b - 1);  x_hat = (c - z) * s;  z integer in [0, 2^b - 1].
  kAsymmetric,
  // c = clamp(round(x/s), -2^(b-1), 2^(b-1) - 1);  x_hat = c * s;  z must be 0.
  kSymmetric,
};

// One (scale, zero point) pair: the parameters of a single quantization group.
struct UniformParams {
  int bits = 8;
  float scale = 1.0f;
  int32_t zero_point = 0;
  UniformMode mode = UniformMode::kAsymmetric;

  int32_t CodeMin() const { return mode == UniformMode::kAsymmetric ? 0 : -(1 << (bits - 1)); }
  int32_t CodeMax() const {
    return mode == UniformMode::kAsymmetric ? (1 << bits) - 1 : (1 << (bits - 1)) - 1;
  }
  // Throws adalog::Error if bits is outside 2..8, scale is not positive and finite, or the
  // zero point is outside [0, 2^b - 1] (asymmetric) / not 0 (symmetric).
  void Validate() const;
};

// One set of parameters for the whole tensor.
struct UniformPerTensor {
  UniformParams params;
  void Validate() const { params.Validate(); }
};

// One (scale, zero point) per index along `axis` of a row-major tensor: weights use axis 0
// ([out, in]: one pair per output row). scales and zero_points have dims[axis] entries.
struct UniformPerChannel {
  int bits = 8;
  UniformMode mode = UniformMode::kAsymmetric;
  int axis = 0;
  std::vector<float> scales;
  std::vector<int32_t> zero_points;

  int64_t num_channels() const { return static_cast<int64_t>(scales.size()); }
  UniformParams channel(int64_t c) const {
    return UniformParams{bits, scales[static_cast<size_t>(c)], zero_points[static_cast<size_t>(c)],
                         mode};
  }
  // Validates every channel and that scales and zero_points have the same non-zero size.
  void Validate() const;
};

// One (scale, zero point) per attention head, for tensors laid out (B, H, N, d) or (B, H, d, N):
// the head axis is always 1 (method §3.2: q, k, v of the attention matmuls).
struct UniformPerHead {
  static constexpr int kHeadAxis = 1;
  int bits = 8;
  UniformMode mode = UniformMode::kAsymmetric;
  std::vector<float> scales;
  std::vector<int32_t> zero_points;

  int64_t num_heads() const { return static_cast<int64_t>(scales.size()); }
  UniformParams head(int64_t h) const {
    return UniformParams{bits, scales[static_cast<size_t>(h)], zero_points[static_cast<size_t>(h)],
                         mode};
  }
  void Validate() const;
};

// ---------------------------------------------------------------------------------------------
// Twin uniform (PTQ4ViT, method §2.2), per tensor.
// x_hat = clamp(round(x/s0), 0, n-1) * s0 + clamp(round(x/s1), -n, 0) * s1,  n = 2^(b-1).
// ---------------------------------------------------------------------------------------------
struct TwinUniformParams {
  int bits = 8;
  float scale_pos = 1.0f;  // s0, for x >= 0
  float scale_neg = 1.0f;  // s1, for x < 0
  void Validate() const;
};

// ---------------------------------------------------------------------------------------------
// Log quantizers (method §2.3-2.5). All are per tensor in the method (granularity: PerTensor).
// The code is c = round(-log2(u) * kRatioNum / kRatioDen), u = clamp(x/s, 1e-15, 1); the
// step between levels is a factor 2^(den/num): Log2 (1/1), LogSqrt2 (2/1 -> sqrt 2), AdaLog
// (37/q -> base 2^(q/37)).
// ---------------------------------------------------------------------------------------------
enum class LogKind { kLog2, kLogSqrt2, kAdaLog };

const char* LogKindName(LogKind k);

// AdaLog denominator r (method §1: hard-coded 37).
inline constexpr int kAdaLogR = 37;
// The method's q search range (10..137, method §1 and 8.4).
inline constexpr int kAdaLogSpecMinQ = 10;
inline constexpr int kAdaLogSpecMaxQ = 137;
// The range this library accepts: a wider, documented range (bases 2^(1/37) .. 2^(255/37)),
// because the method's lower edge q = 10 was reported (outside this repository) to bind at 6 bits.
// At 8 bits q must be >= kAdaLogMinQ8Bit so that the exact-zero state stays unreachable (see
// codes.h).
inline constexpr int kAdaLogMinQ = 1;
inline constexpr int kAdaLogMaxQ = 255;
inline constexpr int kAdaLogMinQ8Bit = 8;

// Lower clamp of u = x/s before the logarithm (method §1, "log clamp"), as float32 (torch clamps
// a float32 tensor with the scalar converted to float32).
inline constexpr float kLogClampMin = 1e-15f;

struct LogParams {
  LogKind kind = LogKind::kAdaLog;
  int bits = 4;
  float scale = 1.0f;
  int q = kAdaLogR;  // AdaLog only; ignored (and not validated) for kLog2 / kLogSqrt2

  // Ratio r/q of the code formula c = round(-log2(u) * num / den).
  int RatioNum() const {
    return kind == LogKind::kAdaLog ? kAdaLogR : (kind == LogKind::kLog2 ? 1 : 2);
  }
  int RatioDen() const { return kind == LogKind::kAdaLog ? q : 1; }
  // Throws adalog::Error for bits outside 2..8, scale not positive/finite, q outside
  // [kAdaLogMinQ, kAdaLogMaxQ], or q < kAdaLogMinQ8Bit at 8 bits; for Log2/LogSqrt2 at 8 bits
  // too (their zero state is unreachable there as well, see codes.h).
  void Validate() const;
};

// Default post-GELU shift (method §1): -min_x GELU(x) for exact-erf GELU.
inline constexpr float kGeluShift = 0.16997124254703522f;

}  // namespace adalog
