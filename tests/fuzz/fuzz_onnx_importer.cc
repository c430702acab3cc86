// libFuzzer target: arbitrary bytes into the ONNX importer. Any outcome other than a VitModel or
// an adalog::Error (crash, sanitizer report, other exception, hang) is a bug.
#include <cstddef>
#include <cstdint>
#include <string>

#include "quant/error.h"
#include "runtime/onnx_importer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  try {
    adalog::ImportReport report;
    adalog::VitModel m = adalog::ImportOnnxVitFromBytes(bytes, &report, "fuzz.onnx");
    (void)adalog::CountMacsPerImage(m);
  } catch (const adalog::Error&) {
    // Expected for malformed input.
  }
  return 0;
}
