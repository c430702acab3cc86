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

#include <cstddef>
#include <cstdint>
#include <string>

#include "runtime/quant_plan.h"

namespace adalog {

// The version Save writes for a ViT, and the oldest one Load still reads (docs/model_format.md,
// Versioning). Version 1 checksums from another FNV offset basis and lacks MODL's interpolation /
// channel_order / preprocess_known bytes (read as bilinear, rgb, unknown).
inline constexpr uint32_t kModelFileVersion = 2;
inline constexpr uint32_t kOldestModelFileVersion = 1;
// The version Save writes for a Swin model (and only for one, so ViT files keep their version-2
// bytes): version 2's sections plus a SWIN section and per-block rel_bias / attn_mask.
inline constexpr uint32_t kSwinModelFileVersion = 3;
inline constexpr uint32_t kNewestModelFileVersion = kSwinModelFileVersion;

// FNV-1a 64 (offset basis 14695981039346656037, prime 1099511628211) of n bytes: the checksum of
// version 2 and 3 files.
uint64_t Fnv1a64(const char* data, size_t n);
// The checksum a file of `version` carries over its first n bytes: Fnv1a64 for versions 2-3; for
// version 1 the same loop from the offset basis 1469598103934665603 (the standard basis with its
// last digit lost), which version-1 files were written with and are still checked against.
uint64_t ModelFileChecksum(const char* data, size_t n, uint32_t version);

// In-memory forms. Serialize checks only what it needs to write (array sizes against the model's
// dimensions, and that every uniform quantizer is asymmetric with per-output-row weights, the only
// forms the format stores); parameter ranges are checked by Parse, so a bad plan fails at load.
std::string SerializeQuantizedModel(const QuantizedModel& qm);
// `version`, when given, receives the format version read from the header.
QuantizedModel ParseQuantizedModel(const std::string& bytes, const std::string& source,
                                   uint32_t* version = nullptr);

void SaveQuantizedModel(const QuantizedModel& qm, const std::string& path);
QuantizedModel LoadQuantizedModel(const std::string& path, uint32_t* version = nullptr);

}  // namespace adalog
