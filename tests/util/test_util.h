// Shared test helpers: seeded random data, sentinel-filled buffers, float bit access,
// repro strings for failure messages, and test-data paths. Generic: no quantizer knowledge.
#pragma once

#include <cstdint>
#include <cstring>
#include <random>
#include <sstream>
#include <string>
#include <vector>

namespace adalog::test {

// The one seeded engine for tests; print the seed in failure messages (Repro).
inline std::mt19937_64 SeededRng(uint64_t seed) { return std::mt19937_64(seed); }

// n floats uniform in [lo, hi).
std::vector<float> UniformFloats(std::mt19937_64& rng, int64_t n, float lo, float hi);
// n floats s * 2^-e with e uniform in [0, max_exp): softmax-like magnitudes in (0, s].
std::vector<float> LogUniformFloats(std::mt19937_64& rng, int64_t n, float s, float max_exp);

// Fills a buffer with a value a kernel must overwrite (tests check nothing of it survives).
template <typename T>
void FillSentinel(std::vector<T>& v, T sentinel) {
  for (auto& e : v) e = sentinel;
}
inline constexpr float kFloatSentinel = -12345.678f;

inline uint32_t BitsOf(float f) {
  uint32_t b;
  std::memcpy(&b, &f, sizeof b);
  return b;
}
inline float FloatFromBits(uint32_t b) {
  float f;
  std::memcpy(&f, &b, sizeof f);
  return f;
}
// Bitwise float equality that treats every NaN as equal to every NaN and +0 == -0.
inline bool SameFloat(float a, float b) { return (a != a && b != b) || a == b; }

// Builds a one-line repro: Repro("seed", 5, "bits", 4) -> "[repro: seed=5 bits=4]".
inline void ReproPieces(std::ostringstream&) {}
template <typename K, typename V, typename... Rest>
void ReproPieces(std::ostringstream& os, const K& k, const V& v, const Rest&... rest) {
  os << ' ' << k << '=' << v;
  ReproPieces(os, rest...);
}
template <typename... Args>
std::string Repro(const Args&... args) {
  std::ostringstream os;
  os << "[repro:";
  ReproPieces(os, args...);
  os << " ]";
  return os.str();
}

// Absolute path of a file under tests/data (ADALOG_SOURCE_DIR is set by tests/CMakeLists.txt).
std::string TestDataPath(const std::string& relative);
// Whole file as a string; throws std::runtime_error if it cannot be read.
std::string ReadTextFile(const std::string& path);

}  // namespace adalog::test
