// Tests of the uniform quantizer (quant/uniform.h) against the method §2.1 formula written plainly.
#include "quant/uniform.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <set>

#include "quant/error.h"
#include "tests/util/expect_error.h"
#include "tests/util/test_util.h"

namespace adalog {
namespace {

using test::ExpectErrorContaining;
using test::Repro;
using test::SameFloat;

// Spec 2.1, plainly: asym c = clamp(round(x/s) + z, 0, 2^b-1), x_hat = (c - z) s;
// sym c = clamp(round(x/s), -2^(b-1), 2^(b-1)-1), x_hat = c s. float32, half-to-even.
// NaN: adalog's decision is code(NaN) = code(0.0).
float SpecFakeQuant(const UniformParams& p, float x) {
  if (x != x) return x;  // torch carries NaN through
  const float r = std::nearbyint(x / p.scale);
  if (p.mode == UniformMode::kAsymmetric) {
    const float c = std::fmin(std::fmax(r + static_cast<float>(p.zero_point), 0.0f),
                              static_cast<float>((1 << p.bits) - 1));
    return (c - static_cast<float>(p.zero_point)) * p.scale;
  }
  const float c = std::fmin(std::fmax(r, -static_cast<float>(1 << (p.bits - 1))),
                            static_cast<float>((1 << (p.bits - 1)) - 1));
  return c * p.scale;
}
int32_t SpecCode(const UniformParams& p, float x) {
  if (x != x) x = 0.0f;
  const float r = std::nearbyint(x / p.scale);
  const float lo = static_cast<float>(p.CodeMin()), hi = static_cast<float>(p.CodeMax());
  const float c = p.mode == UniformMode::kAsymmetric ? r + static_cast<float>(p.zero_point) : r;
  return static_cast<int32_t>(std::fmin(std::fmax(c, lo), hi));
}

std::vector<UniformParams> AllConfigs() {
  std::vector<UniformParams> v;
  for (int bits : {2, 3, 4, 5, 6, 7, 8}) {
    for (float s : {0.0371f, 0.25f, 1.7e-3f, 3.0f}) {
      v.push_back({bits, s, 0, UniformMode::kAsymmetric});
      v.push_back({bits, s, (1 << (bits - 1)) - 1, UniformMode::kAsymmetric});
      v.push_back({bits, s, (1 << bits) - 1, UniformMode::kAsymmetric});
      v.push_back({bits, s, 0, UniformMode::kSymmetric});
    }
  }
  return v;
}

std::vector<float> EdgeInputs(float s) {
  const float inf = std::numeric_limits<float>::infinity();
  return {0.0f,
          -0.0f,
          -1.0f,
          s,
          -s,
          1e-40f,
          -1e-40f,
          inf,
          -inf,
          1000.0f * s,
          -1000.0f * s,
          std::numeric_limits<float>::max(),
          std::numeric_limits<float>::lowest(),
          std::numeric_limits<float>::denorm_min()};
}

TEST(RoundHalfEvenSmall, EqualsNearbyintOnDenseRangeAndAllHalves) {
  for (int k = -(1 << 12); k <= (1 << 12); ++k) {
    const float h = static_cast<float>(k) + 0.5f;
    ASSERT_EQ(RoundHalfEvenSmall(h), std::nearbyint(h)) << h;
  }
  auto rng = test::SeededRng(1);
  for (float x : test::UniformFloats(rng, 200000, -4194304.0f, 4194304.0f)) {
    ASSERT_EQ(RoundHalfEvenSmall(x), std::nearbyint(x)) << x;
  }
  EXPECT_EQ(RoundHalfEvenSmall(2.5f), 2.0f);
  EXPECT_EQ(RoundHalfEvenSmall(-2.5f), -2.0f);
  EXPECT_EQ(RoundHalfEvenSmall(3.5f), 4.0f);
}

TEST(UniformQuantizer, MatchesSpecFormulaOnRandomAndEdgeInputs) {
  uint64_t seed = 7;
  for (const UniformParams& p : AllConfigs()) {
    auto rng = test::SeededRng(++seed);
    const UniformQuantizer q(p);
    const float range = static_cast<float>(1 << p.bits) * p.scale;
    std::vector<float> xs = test::UniformFloats(rng, 20000, -1.3f * range, 1.3f * range);
    for (float e : EdgeInputs(p.scale)) xs.push_back(e);
    std::set<int32_t> seen;
    for (float x : xs) {
      const int32_t c = q.Encode(x);
      seen.insert(c);
      ASSERT_EQ(c, SpecCode(p, x))
          << x << ' ' << Repro("seed", seed, "bits", p.bits, "s", p.scale, "z", p.zero_point);
      ASSERT_TRUE(SameFloat(q.FakeQuant(x), SpecFakeQuant(p, x))) << x;
      ASSERT_EQ(q.Decode(c), SpecFakeQuant(p, x)) << x;
    }
    // Not vacuous: every code of the range is hit.
    EXPECT_EQ(static_cast<int32_t>(seen.size()), p.CodeMax() - p.CodeMin() + 1);
  }
}

TEST(UniformQuantizer, HalfWayPointsRoundToEven) {
  // s = 0.25: x = (k + 0.5) * s is exact and x / s == k + 0.5 exactly.
  const UniformQuantizer q({4, 0.25f, 8, UniformMode::kAsymmetric});
  for (int k = -8; k < 8; ++k) {
    const float x = (static_cast<float>(k) + 0.5f) * 0.25f;
    const int32_t even = (k % 2 == 0) ? k : k + 1;
    EXPECT_EQ(q.Encode(x), std::min(std::max(even + 8, 0), 15)) << k;
  }
}

TEST(UniformQuantizer, NaNEncodesAsZeroAndFakeQuantPropagates) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const UniformQuantizer a({4, 0.1f, 5, UniformMode::kAsymmetric});
  EXPECT_EQ(a.Encode(nan), 5);
  EXPECT_EQ(a.Decode(a.Encode(nan)), 0.0f);
  EXPECT_TRUE(std::isnan(a.FakeQuant(nan)));
  float out = 0.0f;
  a.FakeQuant(&nan, 1, &out);
  EXPECT_TRUE(std::isnan(out));
  const UniformQuantizer s({4, 0.1f, 0, UniformMode::kSymmetric});
  EXPECT_EQ(s.Encode(nan), 0);
}

TEST(UniformQuantizer, ArrayFormsEqualScalarForms) {
  auto rng = test::SeededRng(99);
  for (const UniformParams& p : AllConfigs()) {
    const UniformQuantizer q(p);
    const float range = static_cast<float>(1 << p.bits) * p.scale;
    std::vector<float> xs = test::UniformFloats(rng, 1001, -1.3f * range, 1.3f * range);
    // Edges at both ends, so the vector body and the scalar tail both see them.
    std::vector<float> edges = EdgeInputs(p.scale);
    edges.push_back(std::numeric_limits<float>::quiet_NaN());
    xs.insert(xs.begin(), edges.begin(), edges.end());
    for (float e : edges) xs.push_back(e);
    const int64_t n = static_cast<int64_t>(xs.size());
    std::vector<float> fq(xs.size()), dec(xs.size());
    test::FillSentinel(fq, test::kFloatSentinel);
    test::FillSentinel(dec, test::kFloatSentinel);
    q.FakeQuant(xs.data(), n, fq.data());
    if (p.mode == UniformMode::kAsymmetric) {
      std::vector<UniformCode> codes(xs.size(), 0xAB);
      q.Encode(xs.data(), n, codes.data());
      q.Decode(codes.data(), n, dec.data());
      for (int64_t i = 0; i < n; ++i)
        ASSERT_EQ(codes[static_cast<size_t>(i)], q.Encode(xs[static_cast<size_t>(i)]));
      std::vector<SignedCode> wrong(xs.size());
      EXPECT_THROW(q.Encode(xs.data(), n, wrong.data()), Error);
    } else {
      std::vector<SignedCode> codes(xs.size(), 0x5B);
      q.Encode(xs.data(), n, codes.data());
      q.Decode(codes.data(), n, dec.data());
      for (int64_t i = 0; i < n; ++i)
        ASSERT_EQ(codes[static_cast<size_t>(i)], q.Encode(xs[static_cast<size_t>(i)]));
    }
    for (size_t i = 0; i < xs.size(); ++i) {
      ASSERT_TRUE(SameFloat(fq[i], q.FakeQuant(xs[i]))) << xs[i];
      if (xs[i] == xs[i]) {
        ASSERT_EQ(dec[i], fq[i]) << xs[i];
      }
    }
  }
}

TEST(UniformGranularity, PerChannelAxis0And1AndPerHead) {
  auto rng = test::SeededRng(3);
  const std::vector<int64_t> shape = {3, 4, 5};
  std::vector<float> x = test::UniformFloats(rng, 60, -2.0f, 2.0f);
  std::vector<float> out(60, test::kFloatSentinel);
  for (int axis : {0, 1, 2}) {
    UniformPerChannel pc;
    pc.bits = 4;
    pc.axis = axis;
    for (int64_t c = 0; c < shape[static_cast<size_t>(axis)]; ++c) {
      pc.scales.push_back(0.05f + 0.03f * static_cast<float>(c));
      pc.zero_points.push_back(static_cast<int32_t>(3 + c));
    }
    FakeQuantize(pc, x.data(), shape, out.data());
    std::vector<UniformCode> codes(60, 0xEE);
    Encode(pc, x.data(), shape, codes.data());
    for (int64_t i = 0; i < 3; ++i) {
      for (int64_t j = 0; j < 4; ++j) {
        for (int64_t k = 0; k < 5; ++k) {
          const int64_t idx = (i * 4 + j) * 5 + k;
          const int64_t c = axis == 0 ? i : (axis == 1 ? j : k);
          const UniformQuantizer q(pc.channel(c));
          ASSERT_EQ(out[static_cast<size_t>(idx)], q.FakeQuant(x[static_cast<size_t>(idx)]));
          ASSERT_EQ(codes[static_cast<size_t>(idx)], q.Encode(x[static_cast<size_t>(idx)]));
        }
      }
    }
  }
  UniformPerHead ph;
  ph.bits = 3;
  ph.scales = {0.1f, 0.2f};
  ph.zero_points = {2, 5};
  const std::vector<int64_t> s4 = {2, 2, 3, 5};
  std::vector<float> y(60);
  FakeQuantize(ph, x.data(), s4, y.data());
  for (int64_t i = 0; i < 60; ++i) {
    const int64_t h = (i / 15) % 2;
    ASSERT_EQ(y[static_cast<size_t>(i)],
              UniformQuantizer(ph.head(h)).FakeQuant(x[static_cast<size_t>(i)]));
  }
  UniformPerTensor pt{{8, 0.01f, 128, UniformMode::kAsymmetric}};
  FakeQuantize(pt, x.data(), shape, y.data());
  for (size_t i = 0; i < 60; ++i) ASSERT_EQ(y[i], UniformQuantizer(pt.params).FakeQuant(x[i]));
}

TEST(UniformErrors, BadParametersNameTheParameterAndValue) {
  const auto make = [](UniformParams p) { return [p] { UniformQuantizer q(p); }; };
  ExpectErrorContaining(make({1, 0.1f, 0, UniformMode::kAsymmetric}), "bits = 1");
  ExpectErrorContaining(make({9, 0.1f, 0, UniformMode::kAsymmetric}), "bits = 9");
  ExpectErrorContaining(make({4, 0.0f, 0, UniformMode::kAsymmetric}), "scale = 0");
  ExpectErrorContaining(make({4, -1.0f, 0, UniformMode::kAsymmetric}), "scale = -1");
  ExpectErrorContaining(make({4, std::nanf(""), 0, UniformMode::kAsymmetric}), "scale = nan");
  ExpectErrorContaining(
      make({4, std::numeric_limits<float>::infinity(), 0, UniformMode::kAsymmetric}),
      "scale = inf");
  ExpectErrorContaining(make({4, 0.1f, 16, UniformMode::kAsymmetric}), "zero_point = 16");
  ExpectErrorContaining(make({4, 0.1f, -1, UniformMode::kAsymmetric}), "zero_point = -1");
  ExpectErrorContaining(make({4, 0.1f, 3, UniformMode::kSymmetric}), "zero_point = 3");
  std::vector<float> x(6), y(6);
  UniformPerChannel pc{4, UniformMode::kAsymmetric, 1, {0.1f, 0.1f}, {0, 0}};
  ExpectErrorContaining([&] { FakeQuantize(pc, x.data(), {2, 3}, y.data()); }, "dims[1] = 3");
  pc.axis = 2;
  ExpectErrorContaining([&] { FakeQuantize(pc, x.data(), {2, 3}, y.data()); }, "axis 2");
  UniformPerChannel bad{4, UniformMode::kAsymmetric, 0, {0.1f, -0.1f}, {0, 0}};
  ExpectErrorContaining([&] { FakeQuantize(bad, x.data(), {2, 3}, y.data()); }, "group 1");
  UniformPerHead ph{4, UniformMode::kAsymmetric, {0.1f}, {0}};
  ExpectErrorContaining([&] { FakeQuantize(ph, x.data(), {6}, y.data()); }, "rank-4");
}

}  // namespace
}  // namespace adalog
