// Shared test helpers (tests/util/test_util.h).
#include "tests/util/test_util.h"

#include <cmath>
#include <fstream>
#include <stdexcept>

namespace adalog::test {

std::vector<float> UniformFloats(std::mt19937_64& rng, int64_t n, float lo, float hi) {
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(static_cast<size_t>(n));
  for (auto& e : v) e = d(rng);
  return v;
}

std::vector<float> LogUniformFloats(std::mt19937_64& rng, int64_t n, float s, float max_exp) {
  std::uniform_real_distribution<float> d(0.0f, max_exp);
  std::vector<float> v(static_cast<size_t>(n));
  for (auto& e : v) e = s * std::exp2(-d(rng));
  return v;
}

std::string TestDataPath(const std::string& relative) {
#ifdef ADALOG_SOURCE_DIR
  return std::string(ADALOG_SOURCE_DIR) + "/tests/data/" + relative;
#else
  return "tests/data/" + relative;
#endif
}

std::string ReadTextFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw std::runtime_error("cannot read " + path);
  std::ostringstream os;
  os << f.rdbuf();
  return os.str();
}

}  // namespace adalog::test
