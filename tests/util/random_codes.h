// Seeded random integer codes for the integer-kernel tests (the A/B operands of the GEMMs and
// log-code matmuls).
#pragma once

#include <cstdint>
#include <random>
#include <vector>

namespace adalog::test {

// n codes uniform in [0, 2^bits) (bits <= 8).
inline std::vector<uint8_t> RandomCodes(std::mt19937_64& rng, int64_t n, int bits) {
  std::uniform_int_distribution<int> d(0, (1 << bits) - 1);
  std::vector<uint8_t> v(static_cast<size_t>(n));
  for (auto& e : v) e = static_cast<uint8_t>(d(rng));
  return v;
}

}  // namespace adalog::test
