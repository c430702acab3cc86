// libFuzzer target: arbitrary bytes into the .npy reader (runtime/data/npy.cc), as float32 array
// and as label vector. Any outcome other than a parsed array or an adalog::Error is a bug.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "quant/error.h"
#include "runtime/data/npy.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  try {
    const adalog::NpyFloatArray a = adalog::ParseNpyFloat32(bytes, "fuzz.npy");
    // The reader's contract: the payload holds exactly prod(shape) values.
    int64_t n = 1;
    for (int64_t d : a.shape) n *= d;
    if (static_cast<size_t>(n) != a.data.size()) std::abort();
  } catch (const adalog::Error&) {
  }
  try {
    const std::vector<int64_t> labels = adalog::ParseNpyLabels(bytes, "fuzz.npy");
    const adalog::NpyHeader h = adalog::ParseNpyHeader(bytes, "fuzz.npy");
    if (h.shape.size() != 1 || static_cast<int64_t>(labels.size()) != h.shape[0]) std::abort();
  } catch (const adalog::Error&) {
  }
  return 0;
}
