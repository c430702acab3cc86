// libFuzzer target: arbitrary bytes into the quantized-model-file parser (runtime/model_file.cc).
// Any outcome other than a QuantizedModel or an adalog::Error is a bug. The target is built with
// ADALOG_FUZZING, under which the parser skips its checksum so that mutated files reach the field
// validators; each input is parsed as is and, when it starts with the magic, once more with the
// header's payload length patched to the input's size, so length-changing mutations get past the
// size check too.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>

#include "quant/error.h"
#include "runtime/model_file.h"

namespace {

constexpr size_t kHeaderBytes = 24, kChecksumBytes = 8;  // docs/model_format.md

void ParseOne(const std::string& bytes) {
  try {
    const adalog::QuantizedModel qm = adalog::ParseQuantizedModel(bytes, "fuzz.adalog");
    // A parsed model is consistent: the plan has one entry per block and the dequantized weights
    // have the sizes the dimensions promise (the executors index them without further checks).
    if (qm.plan.blocks.size() != qm.model.blocks.size()) std::abort();
    for (const auto& b : qm.model.blocks) {
      if (b.qkv.weight.size() != static_cast<size_t>(b.qkv.in) * b.qkv.out) std::abort();
      if (b.fc2.weight.size() != static_cast<size_t>(b.fc2.in) * b.fc2.out) std::abort();
    }
    // Swin (format version 3): one plan entry per patch merge.
    size_t merges = 0;
    for (const auto& st : qm.model.swin.stages) merges += st.has_merge ? 1 : 0;
    if (qm.plan.merges.size() != merges) std::abort();
    (void)adalog::CountMacsPerImage(qm.model);
  } catch (const adalog::Error&) {
    // Expected for malformed input.
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string bytes(reinterpret_cast<const char*>(data), size);
  ParseOne(bytes);
  if (size >= kHeaderBytes + kChecksumBytes && std::memcmp(data, "ADALOGQ", 8) == 0) {
    const uint64_t payload = size - kHeaderBytes - kChecksumBytes;
    for (int i = 0; i < 8; ++i) bytes[16 + static_cast<size_t>(i)] = static_cast<char>(payload >> (8 * i));
    if (bytes.compare(0, size, reinterpret_cast<const char*>(data), size) != 0) ParseOne(bytes);
  }
  return 0;
}
