// Minimal .npy reader for tests (little-endian float32, C order): reference inputs and outputs of
// the exported tiny models. Named distinctly from runtime/data so the two never clash.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace adalog::test {

struct NpyF32 {
  std::vector<int64_t> shape;
  std::vector<float> data;
};

// Throws std::runtime_error on anything but a C-order '<f4' array.
NpyF32 ReadNpyF32ForTest(const std::string& path);

}  // namespace adalog::test
