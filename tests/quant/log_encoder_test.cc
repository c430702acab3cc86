// Proves the fast table log encoder (quant/log_encoder.h) equal to the reference code
// (quant/log_reference.h): every decision boundary of every accepted ratio, the exactness margin
// of the reference there, a dense sweep, and exhaustive sweeps over all floats in [1e-15f, 1].
// Tests named Long* run the exhaustive sweep for every ratio (minutes): filter them with
// --gtest_filter=-Long* (ctest: -E '^Long').
#include "quant/log_encoder.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <limits>
#include <set>
#include <thread>

#include "tests/util/expect_error.h"
#include "tests/util/test_util.h"

namespace adalog {
namespace {

using test::BitsOf;
using test::FloatFromBits;
using test::Repro;

struct Ratio {
  int num, den;
};
// Every ratio the library accepts: Log2, LogSqrt2, AdaLog q = 1..255.
std::vector<Ratio> AllRatios() {
  std::vector<Ratio> v = {{1, 1}, {2, 1}};
  for (int q = kAdaLogMinQ; q <= kAdaLogMaxQ; ++q) v.push_back({kAdaLogR, q});
  return v;
}

const uint32_t kLoBits = BitsOf(kLogClampMin);
const uint32_t kHiBits = BitsOf(1.0f);

// Every transition of the raw code between consecutive floats in [1e-15f, 1]: a pair (a, a+1)
// with different codes. Found from the table, then checked against the reference.
TEST(FastLogEncoder, EveryDecisionBoundaryOfEveryRatioMatchesReference) {
  int64_t boundaries = 0, ld_refined = 0, exact_ties = 0;
  for (const Ratio& r : AllRatios()) {
    const LogCodeTable& t = GetLogCodeTable(r.num, r.den);
    std::vector<uint32_t> cand;
    for (int k = 0; k < LogCodeTable::kNumBuckets; ++k) {
      const uint32_t start = (LogCodeTable::kFirstBucket + static_cast<uint32_t>(k)) << 17;
      if (start > kLoBits && start <= kHiBits) cand.push_back(start);
      const float thr = t.thr[static_cast<size_t>(k)];
      if (std::isfinite(thr)) cand.push_back(BitsOf(thr));
    }
    int32_t transitions = 0;
    for (uint32_t b : cand) {
      const float below = FloatFromBits(b - 1), at = FloatFromBits(b);
      const int32_t c_below = LogRawCodeReference(below, r.num, r.den);
      const int32_t c_at = LogRawCodeReference(at, r.num, r.den);
      for (uint32_t d : {b - 2, b - 1, b, b + 1}) {
        if (d < kLoBits || d > kHiBits) continue;
        const float u = FloatFromBits(d);
        ASSERT_EQ(t.RawCode(u), LogRawCodeReference(u, r.num, r.den))
            << u << ' ' << Repro("num", r.num, "den", r.den, "bits", d);
      }
      if (c_below == c_at) continue;
      ASSERT_EQ(c_below, c_at + 1) << Repro("num", r.num, "den", r.den, "bits", b);
      ++transitions;
      // Exactness margin of the reference at both floats: the real t must be decided robustly.
      for (float u : {below, at}) {
        ++boundaries;
        const long double tl = (-std::log2(static_cast<long double>(u)) * r.num) / r.den;
        const long double dist = std::fabs(std::fabs(tl - std::floor(tl)) - 0.5L);
        const double td = (-std::log2(static_cast<double>(u)) * r.num) / r.den;
        const double dd = std::fabs(std::fabs(td - std::floor(td)) - 0.5);
        const bool pow2 = (BitsOf(u) & 0x7fffffu) == 0;
        if (pow2 && dd == 0.0) {
          ++exact_ties;  // 2^-n with n*num/den a half-integer: computed exactly in double
          continue;
        }
        if (dd < 1e-11) ++ld_refined;
        ASSERT_GT(dd, 1e-13) << "double too close to call "
                             << Repro("num", r.num, "den", r.den, "u", u);
        ASSERT_GT(dist, 1e-15L) << Repro("num", r.num, "den", r.den, "u", u);
      }
    }
    // Not vacuous: one transition per level within [1e-15, 1].
    const int32_t expected = LogRawCodeReference(kLogClampMin, r.num, r.den);
    ASSERT_EQ(transitions, expected) << Repro("num", r.num, "den", r.den);
  }
  EXPECT_GT(boundaries, 20000);
  EXPECT_GT(exact_ties, 0);  // e.g. q = 10, u = 2^-5, t = 18.5 -> 18
  std::printf("boundary floats checked: %lld, exact ties: %lld, long-double refined: %lld\n",
              static_cast<long long>(boundaries), static_cast<long long>(exact_ties),
              static_cast<long long>(ld_refined));
}

TEST(FastLogEncoder, ExactTieRoundsHalfToEven) {
  // q = 10: u = 2^-5 gives t = 5 * 37 / 10 = 18.5 exactly -> 18.
  EXPECT_EQ(LogRawCodeReference(std::ldexp(1.0f, -5), 37, 10), 18);
  EXPECT_EQ(GetLogCodeTable(37, 10).RawCode(std::ldexp(1.0f, -5)), 18);
  // q = 74: u = 2^-1 gives t = 0.5 -> 0; u = 2^-3 gives 1.5 -> 2.
  EXPECT_EQ(LogRawCodeReference(0.5f, 37, 74), 0);
  EXPECT_EQ(LogRawCodeReference(0.125f, 37, 74), 2);
}

TEST(FastLogEncoder, DenseSweepEveryRatio) {
  // Every 4099th float in [1e-15f, 1] (about 100k per ratio), for every ratio.
  for (const Ratio& r : AllRatios()) {
    const LogCodeTable& t = GetLogCodeTable(r.num, r.den);
    for (uint32_t b = kLoBits; b <= kHiBits; b += 4099) {
      const float u = FloatFromBits(b);
      ASSERT_EQ(t.RawCode(u), LogRawCodeReference(u, r.num, r.den))
          << Repro("num", r.num, "den", r.den, "u", u);
    }
  }
}

TEST(FastLogEncoder, SpecialInputsMatchReferenceForEveryBitsAndQ) {
  const float inf = std::numeric_limits<float>::infinity();
  const std::vector<float> xs = {0.0f,
                                 -0.0f,
                                 -1.0f,
                                 -inf,
                                 inf,
                                 std::nanf(""),
                                 1e-40f,
                                 -1e-40f,
                                 std::numeric_limits<float>::denorm_min(),
                                 std::numeric_limits<float>::min(),
                                 1e-15f,
                                 9.99e-16f,
                                 1.0f,
                                 1.0000001f,
                                 2.0f,
                                 1e30f,
                                 std::numeric_limits<float>::max()};
  for (int bits = 2; bits <= 8; ++bits) {
    for (int q = 1; q <= kAdaLogMaxQ; ++q) {
      if (bits == 8 && q < kAdaLogMinQ8Bit) continue;
      for (float s : {1.0f, 0.3f, 1e-30f, 1e30f}) {
        const LogParams p{LogKind::kAdaLog, bits, s, q};
        const FastLogEncoder enc(p);
        for (float x : xs) {
          ASSERT_EQ(enc.Encode(x), LogEncodeReference(p, x))
              << x << ' ' << Repro("bits", bits, "q", q, "s", s);
        }
      }
    }
  }
}

TEST(FastLogEncoder, ArrayEncodeEqualsScalarWithAndWithoutUnitScale) {
  auto rng = test::SeededRng(8);
  std::vector<float> xs = test::LogUniformFloats(rng, 5000, 1.0f, 50.0f);
  for (float x : test::UniformFloats(rng, 500, -1.0f, 3.0f)) xs.push_back(x);
  for (float s : {1.0f, 0.7f}) {
    for (int q : {10, 37, 137}) {
      const LogParams p{LogKind::kAdaLog, 4, s, q};
      const FastLogEncoder enc(p);
      std::vector<LogCode> codes(xs.size(), 0xEE);
      enc.Encode(xs.data(), static_cast<int64_t>(xs.size()), codes.data());
      std::set<int> seen;
      for (size_t i = 0; i < xs.size(); ++i) {
        ASSERT_EQ(codes[i], LogEncodeReference(p, xs[i])) << xs[i];
        seen.insert(codes[i]);
      }
      // Not vacuous: all 16 levels and the zero code where reachable (q = 137: codes 0..13).
      const size_t reachable =
          std::min<size_t>(17u, static_cast<size_t>(LogRawCodeReference(kLogClampMin, 37, q)) + 1);
      EXPECT_EQ(seen.size(), reachable);
    }
  }
}

// Exhaustive: every float in [1e-15f, 1] (4.3e8 of them) for one ratio, split over threads.
// Equality of raw codes implies equality for every bit-width (bits only clamp the raw code).
int64_t ExhaustiveMismatches(const Ratio& r) {
  const LogCodeTable& t = GetLogCodeTable(r.num, r.den);
  const unsigned nt = std::max(1u, std::thread::hardware_concurrency());
  std::atomic<int64_t> bad{0};
  std::vector<std::thread> th;
  const uint32_t total = kHiBits - kLoBits + 1;
  for (unsigned i = 0; i < nt; ++i) {
    th.emplace_back([&, i] {
      const uint32_t b0 = kLoBits + static_cast<uint32_t>(uint64_t{total} * i / nt);
      const uint32_t b1 = kLoBits + static_cast<uint32_t>(uint64_t{total} * (i + 1) / nt);
      int64_t local = 0;
      for (uint32_t b = b0; b < b1; ++b) {
        const float u = FloatFromBits(b);
        local += t.RawCode(u) != LogRawCodeReference(u, r.num, r.den);
      }
      bad += local;
    });
  }
  for (auto& x : th) x.join();
  return bad.load();
}

TEST(FastLogEncoderExhaustive, Log2LogSqrt2AndAdaLogQ10) {
  for (const Ratio& r : std::vector<Ratio>{{1, 1}, {2, 1}, {37, 10}}) {
    EXPECT_EQ(ExhaustiveMismatches(r), 0) << Repro("num", r.num, "den", r.den);
  }
}

TEST(LongFastLogEncoder, ExhaustiveEveryAdaLogQ) {
  // The method's range 10..137 first, then the rest of the accepted range.
  std::vector<int> qs;
  for (int q = kAdaLogSpecMinQ; q <= kAdaLogSpecMaxQ; ++q) qs.push_back(q);
  for (int q = kAdaLogMinQ; q <= kAdaLogMaxQ; ++q) {
    if (q < kAdaLogSpecMinQ || q > kAdaLogSpecMaxQ) qs.push_back(q);
  }
  for (int q : qs) {
    const int64_t bad = ExhaustiveMismatches({kAdaLogR, q});
    EXPECT_EQ(bad, 0) << Repro("q", q);
    std::printf("q=%d mismatches=%lld\n", q, static_cast<long long>(bad));
    std::fflush(stdout);
  }
}

TEST(LogCodeTable, RejectsUnsupportedRatios) {
  test::ExpectErrorContaining([] { LogCodeTable::Build(38, 1); }, "ratio 38/1");
  test::ExpectErrorContaining([] { LogCodeTable::Build(37, 0); }, "ratio 37/0");
}

}  // namespace
}  // namespace adalog
