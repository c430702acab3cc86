// Tests of the twin uniform quantizer (quant/twin_uniform.h) against method §2.2 written plainly.
#include "quant/twin_uniform.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <set>

#include "tests/util/expect_error.h"
#include "tests/util/test_util.h"

namespace adalog {
namespace {

// Spec 2.2: x_hat = clamp(round(x/s0), 0, n-1) s0 + clamp(round(x/s1), -n, 0) s1.
float SpecTwin(int bits, float s0, float s1, float x) {
  const float n = static_cast<float>(1 << (bits - 1));
  if (x != x) return x;
  return std::fmin(std::fmax(std::nearbyint(x / s0), 0.0f), n - 1) * s0 +
         std::fmin(std::fmax(std::nearbyint(x / s1), -n), 0.0f) * s1;
}

TEST(TwinUniformQuantizer, MatchesSpecAtAllBits) {
  uint64_t seed = 40;
  for (int bits : {2, 3, 4, 5, 6, 7, 8}) {
    const float n = static_cast<float>(1 << (bits - 1));
    const float s1 = TwinUniformDefaultNegScale(bits), s0 = 3.0f / (n - 0.5f);
    const TwinUniformQuantizer tq({bits, s0, s1});
    auto rng = test::SeededRng(++seed);
    std::vector<float> xs = test::UniformFloats(rng, 20000, -0.2f, 1.2f * n * s0);
    const float inf = std::numeric_limits<float>::infinity();
    for (float x : {0.0f, -0.0f, inf, -inf, 1e-40f, -1e-40f, -1.0f}) xs.push_back(x);
    std::set<int32_t> seen;
    for (float x : xs) {
      const int32_t c = tq.Encode(x);
      seen.insert(c);
      ASSERT_GE(c, -static_cast<int32_t>(n));
      ASSERT_LE(c, static_cast<int32_t>(n) - 1);
      ASSERT_EQ(tq.FakeQuant(x), SpecTwin(bits, s0, s1, x)) << x << test::Repro("bits", bits);
    }
    EXPECT_EQ(static_cast<int32_t>(seen.size()), 2 * static_cast<int32_t>(n));  // every code
    EXPECT_EQ(tq.Encode(std::nanf("")), 0);
    EXPECT_TRUE(std::isnan(tq.FakeQuant(std::nanf(""))));
    std::vector<SignedCode> codes(xs.size());
    std::vector<float> out(xs.size(), test::kFloatSentinel);
    tq.Encode(xs.data(), static_cast<int64_t>(xs.size()), codes.data());
    tq.FakeQuant(xs.data(), static_cast<int64_t>(xs.size()), out.data());
    for (size_t i = 0; i < xs.size(); ++i) {
      ASSERT_EQ(codes[i], tq.Encode(xs[i]));
      ASSERT_EQ(out[i], tq.Decode(codes[i]));
    }
  }
}

TEST(TwinUniformErrors, BadParameters) {
  test::ExpectErrorContaining([] { TwinUniformQuantizer q({4, 0.0f, 0.1f}); }, "scale_pos = 0");
  test::ExpectErrorContaining([] { TwinUniformQuantizer q({4, 0.1f, -1.0f}); }, "scale_neg = -1");
  test::ExpectErrorContaining([] { TwinUniformQuantizer q({10, 0.1f, 0.1f}); }, "bits = 10");
}

}  // namespace
}  // namespace adalog
