// The adalog quantized model file: a versioned, little-endian, checksummed binary holding a
// QuantizedModel (rewritten VitModel + QuantPlan) with weights stored as packed integer codes.
// The format is documented in docs/model_format.md.
//
// Contract: Parse/Load validate everything read from the (untrusted) file and throw adalog::Error
// naming the file and the culprit: bad magic, unsupported version, truncation, checksum
// mismatch, size mismatches, out-of-range quantizer parameters. Save writes atomically (a
// temporary file in the same directory, then rename), so a reader never sees a partial file.
//
// Weights: every Linear / patch-embed weight is stored as b-bit codes under its per-row plan
// parameters; a loaded model's weight arrays hold the DEQUANTIZED values (c - z) * s, which is
// what both executors compute with. Everything else (LayerNorm, biases, tokens, position
// embedding) is stored as FP32.
#pragma once

#include <cstdint>
#include <string>

#include "runtime/quant_plan.h"

namespace adalog {

inline constexpr uint32_t kModelFileVersion = 1;

// In-memory forms. Serialize checks only what it needs to write (array sizes against the model's
// dimensions, and that every uniform quantizer is asymmetric with per-output-row weights, the only
// forms the format stores); parameter ranges are checked by Parse, so a bad plan fails at load.
std::string SerializeQuantizedModel(const QuantizedModel& qm);
QuantizedModel ParseQuantizedModel(const std::string& bytes, const std::string& source);

void SaveQuantizedModel(const QuantizedModel& qm, const std::string& path);
QuantizedModel LoadQuantizedModel(const std::string& path);

}  // namespace adalog
