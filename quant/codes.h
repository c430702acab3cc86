// Code storage for every quantizer: which integer type holds a code, and the log quantizers'
// reserved exact-zero code.
//
// Uniform asymmetric codes: uint8_t in [0, 2^b - 1].  Uniform symmetric / twin codes: int8_t in
// [-2^(b-1), 2^(b-1) - 1].
//
// Log codes (Log2, LogSqrt2, AdaLog): uint8_t. A b-bit log quantizer has 2^b nonzero levels
// (codes 0 .. 2^b - 1) plus an exact zero (raw code >= 2^b, method §2.3, evaluated before the
// clamp). The zero state is stored as the reserved code kLogZeroCode(b) = 2^b; it costs one
// extra state (b + 1 bits of information, still one byte). Kernels give it multiplier m = 0.
//
// At b = 8 the code 256 does not fit a byte, but the zero state is unreachable there: inputs are
// clamped to u >= 1e-15f before the logarithm, so the raw code is at most
// round(-log2(1e-15f) * 37 / q) = round(49.83 * 37 / q) <= 230 < 256 for q >= 8 (and 50 / 100 for
// Log2 / LogSqrt2). LogParams::Validate() enforces q >= 8 at b = 8, and log_encoder_test checks
// the claim for every accepted (bits, q).
#pragma once

#include <cstdint>

namespace adalog {

using UniformCode = uint8_t;  // asymmetric uniform
using SignedCode = int8_t;    // symmetric uniform, twin uniform
using LogCode = uint8_t;      // log2 / log-sqrt2 / AdaLog, including the zero code

// Reserved exact-zero code of a b-bit log quantizer: 2^b (256 at b = 8, never produced).
constexpr int32_t LogZeroCode(int bits) { return int32_t{1} << bits; }
// Number of entries of a log decode table: 2^b levels plus the zero entry.
constexpr int32_t LogTableSize(int bits) { return (int32_t{1} << bits) + 1; }

}  // namespace adalog
