// Tests of the log2 / log-sqrt2 / AdaLog quantizers, their tables, the shift variants and the
// bias fold (quant/log_quantizers.h) against the method §2.3-2.6 formulas written plainly.
#include "quant/log_quantizers.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <set>

#include "quant/uniform.h"
#include "tests/util/expect_error.h"
#include "tests/util/test_util.h"

namespace adalog {
namespace {

using test::ExpectErrorContaining;
using test::Repro;
using test::SameFloat;

// Spec 2.3-2.5 written plainly (double evaluation of the code; the inputs below are random, so
// none sits within 1e-13 of a decision threshold where double and exact could differ).
// Returns the code, 2^b meaning exact zero. NaN: adalog treats it as 0.0.
int32_t SpecLogCode(LogKind kind, int bits, float s, int q, float x) {
  if (x != x) x = 0.0f;
  float u = x / s;
  u = std::fmin(std::fmax(u, 1e-15f), 1.0f);
  const double ratio = kind == LogKind::kLog2 ? 1.0 : kind == LogKind::kLogSqrt2 ? 2.0 : 37.0 / q;
  const double c = std::nearbyint(-std::log2(static_cast<double>(u)) * ratio);
  return c >= std::ldexp(1.0, bits) ? (1 << bits) : static_cast<int32_t>(c);
}
// x_hat for a code, spec formulas, float32 in torch's order.
float SpecLogDecode(LogKind kind, int bits, float s, int q, int32_t c) {
  if (c == (1 << bits)) return 0.0f;
  if (kind == LogKind::kLog2) return std::exp2f(static_cast<float>(-c)) * s;
  if (kind == LogKind::kLogSqrt2) {
    return std::exp2f(-std::ceil(static_cast<float>(c) / 2.0f)) *
           ((c % 2) ? static_cast<float>(std::sqrt(2.0)) : 1.0f) * s;
  }
  const int D = (1 << (bits + 1)) - 2;
  const float t1 = std::floor(static_cast<float>(c * q) / 37.0f);
  const float t2 =
      static_cast<float>(std::nearbyint(std::pow(2.0, -((c * q) % 37) / 37.0) * D) / D);
  return std::exp2f(-t1) * t2 * s;
}

struct Cfg {
  LogKind kind;
  int bits;
  int q;
};
std::vector<Cfg> Configs() {
  std::vector<Cfg> v;
  for (int bits : {2, 3, 4, 5, 6, 7, 8}) {
    v.push_back({LogKind::kLog2, bits, 37});
    v.push_back({LogKind::kLogSqrt2, bits, 37});
    for (int q : {10, 18, 19, 30, 37, 50, 100, 137}) v.push_back({LogKind::kAdaLog, bits, q});
  }
  return v;
}

TEST(LogQuantizer, MatchesSpecFormulaAtAllBitsOnRandomAndEdgeInputs) {
  uint64_t seed = 100;
  const float inf = std::numeric_limits<float>::infinity();
  for (const Cfg& cfg : Configs()) {
    for (float s : {1.0f, 0.37f, 5.5f}) {
      auto rng = test::SeededRng(++seed);
      const LogQuantizer lq({cfg.kind, cfg.bits, s, cfg.q});
      const double ratio = lq.params().RatioNum() / static_cast<double>(lq.params().RatioDen());
      const float span = static_cast<float>(std::min(52.0, ((1 << cfg.bits) + 2) / ratio));
      std::vector<float> xs = test::LogUniformFloats(rng, 6000, s, span);
      for (float x : test::UniformFloats(rng, 200, -s, 3 * s)) xs.push_back(x);
      for (float x : {0.0f, -0.0f, -1.0f, 1e-40f, -1e-40f, inf, -inf, s, 2 * s, 1e30f,
                      std::numeric_limits<float>::denorm_min(), std::nanf("")}) {
        xs.push_back(x);
      }
      std::set<int32_t> seen;
      for (float x : xs) {
        const int32_t c = lq.Encode(x);
        const int32_t want = SpecLogCode(cfg.kind, cfg.bits, s, cfg.q, x);
        seen.insert(c);
        ASSERT_EQ(c, want) << x << ' '
                           << Repro("seed", seed, "kind", LogKindName(cfg.kind), "bits", cfg.bits,
                                    "q", cfg.q, "s", s);
        ASSERT_EQ(lq.Decode(c), SpecLogDecode(cfg.kind, cfg.bits, s, cfg.q, want)) << c;
        ASSERT_TRUE(SameFloat(lq.FakeQuant(x), x != x ? x : lq.Decode(c)));
      }
      // Not vacuous: most levels are hit, and the zero state whenever it is reachable.
      const bool zero_reachable =
          SpecLogCode(cfg.kind, cfg.bits, 1.0f, cfg.q, 0.0f) == (1 << cfg.bits);
      EXPECT_EQ(seen.count(1 << cfg.bits) == 1, zero_reachable);
      const int32_t max_code =
          std::min<int32_t>((1 << cfg.bits) - 1, SpecLogCode(cfg.kind, 8, 1.0f, cfg.q, 0.0f));
      EXPECT_GE(static_cast<int32_t>(seen.size()), (max_code + 1) * 9 / 10)
          << Repro("kind", LogKindName(cfg.kind), "bits", cfg.bits, "q", cfg.q);
    }
  }
}

TEST(LogQuantizer, ArrayFormsEqualScalarForms) {
  auto rng = test::SeededRng(5);
  for (const Cfg& cfg : Configs()) {
    const LogQuantizer lq({cfg.kind, cfg.bits, 0.8f, cfg.q});
    std::vector<float> xs = test::LogUniformFloats(rng, 777, 1.0f, 40.0f);
    xs.push_back(std::nanf(""));
    xs.push_back(-3.0f);
    const int64_t n = static_cast<int64_t>(xs.size());
    std::vector<LogCode> codes(xs.size(), 0xEE);
    std::vector<float> dec(xs.size(), test::kFloatSentinel), fq(xs.size(), test::kFloatSentinel);
    lq.Encode(xs.data(), n, codes.data());
    lq.Decode(codes.data(), n, dec.data());
    lq.FakeQuant(xs.data(), n, fq.data());
    for (size_t i = 0; i < xs.size(); ++i) {
      ASSERT_EQ(codes[i], lq.Encode(xs[i]));
      ASSERT_EQ(dec[i], lq.Decode(codes[i]));
      ASSERT_TRUE(SameFloat(fq[i], lq.FakeQuant(xs[i])));
    }
  }
}

TEST(LogQuantizer, NaNEncodesAsZeroInputAndFakeQuantIsNaN) {
  const LogQuantizer lq({LogKind::kAdaLog, 4, 1.0f, 30});
  EXPECT_EQ(lq.Encode(std::nanf("")), lq.Encode(0.0f));
  EXPECT_EQ(lq.Encode(0.0f), lq.zero_code());
  EXPECT_EQ(lq.Decode(lq.zero_code()), 0.0f);
  EXPECT_TRUE(std::isnan(lq.FakeQuant(std::nanf(""))));
}

TEST(AdaLogTables, SpecExample4Bit30) {
  const AdaLogTables t = MakeAdaLogTables(4, 30);
  EXPECT_EQ(t.D, 30);
  const std::vector<int32_t> t1 = {0, 0, 1, 2, 3, 4, 4, 5, 6, 7, 8, 8, 9, 10, 11, 12, 0};
  const std::vector<int32_t> m = {30, 17, 19, 22, 25, 29, 16, 19, 21,
                                  24, 28, 16, 18, 21, 24, 27, 0};
  EXPECT_EQ(t.shift, t1);
  EXPECT_EQ(t.mult, m);
}

TEST(AdaLogTables, MultipliersInRangeAndIntegerDecodeEqualsFloatDecode) {
  for (int bits = 2; bits <= 8; ++bits) {
    for (int q = kAdaLogMinQ; q <= kAdaLogMaxQ; ++q) {
      if (bits == 8 && q < kAdaLogMinQ8Bit) continue;
      const AdaLogTables t = MakeAdaLogTables(bits, q);
      const LogQuantizer lq({LogKind::kAdaLog, bits, 1.0f, q});
      ASSERT_EQ(t.D, (1 << (bits + 1)) - 2);
      for (int c = 0; c < (1 << bits); ++c) {
        const int32_t m = t.mult[static_cast<size_t>(c)], sh = t.shift[static_cast<size_t>(c)];
        ASSERT_GE(2 * m, t.D);
        ASSERT_LE(m, t.D);
        ASSERT_EQ(sh, c * q / 37);
        // m is the half-even rounding of 2^-frac * D, also when evaluated in long double.
        const long double exact =
            std::pow(2.0L, -static_cast<long double>((c * q) % 37) / 37.0L) * t.D;
        ASSERT_EQ(m, static_cast<int32_t>(std::nearbyint(exact)))
            << Repro("bits", bits, "q", q, "c", c);
        ASSERT_GT(std::fabs(exact - std::floor(exact) - 0.5L), 1e-9L);
        // Integer decode s * 2^-T1 * m / D (exact in double, one final rounding) == float decode.
        if (sh <= 100) {
          ASSERT_EQ(static_cast<float>(std::ldexp(static_cast<double>(m) / t.D, -sh)),
                    lq.levels()[static_cast<size_t>(c)])
              << Repro("bits", bits, "q", q, "c", c);
        }
      }
      ASSERT_EQ(t.mult.back(), 0);
      ASSERT_EQ(lq.levels().back(), 0.0f);
    }
  }
}

TEST(AdaLogQuantizer, Q37EqualsLog2Exactly) {
  auto rng = test::SeededRng(37);
  for (int bits = 2; bits <= 8; ++bits) {
    const LogQuantizer ada({LogKind::kAdaLog, bits, 0.9f, 37});
    const LogQuantizer l2({LogKind::kLog2, bits, 0.9f, 0});
    EXPECT_EQ(ada.levels(), l2.levels());
    const AdaLogTables ta = ada.IntegerTables(), tl = l2.IntegerTables();
    EXPECT_EQ(ta.shift, tl.shift);
    EXPECT_EQ(ta.mult, tl.mult);
    for (int c = 0; c < (1 << bits); ++c) {
      EXPECT_EQ(ta.shift[static_cast<size_t>(c)], c);
      EXPECT_EQ(ta.mult[static_cast<size_t>(c)], ta.D);
    }
    for (float x : test::LogUniformFloats(rng, 20000, 1.0f, 52.0f)) {
      ASSERT_EQ(ada.Encode(x), l2.Encode(x)) << x;
      ASSERT_EQ(ada.FakeQuant(x), l2.FakeQuant(x)) << x;
    }
  }
}

TEST(LogSqrt2Quantizer, DecodeIsSqrt2PowerAndHasNoIntegerTables) {
  const LogQuantizer lq({LogKind::kLogSqrt2, 4, 1.0f, 0});
  for (int c = 0; c < 16; ++c) {
    EXPECT_NEAR(lq.Decode(c), std::pow(std::sqrt(2.0), -c), 1e-7 * std::pow(std::sqrt(2.0), -c));
  }
  ExpectErrorContaining([&] { lq.IntegerTables(); }, "logsqrt2");
}

TEST(LogQuantizer, EightBitZeroStateUnreachableForAcceptedQ) {
  // The claim of quant/codes.h: at b = 8, with u >= 1e-15f, the raw code stays < 256.
  for (int q = kAdaLogMinQ8Bit; q <= kAdaLogMaxQ; ++q) {
    const int32_t raw = LogRawCodeReference(kLogClampMin, 37, q);
    ASSERT_LT(raw, 256) << q;
    const LogQuantizer lq({LogKind::kAdaLog, 8, 1.0f, q});
    ASSERT_EQ(lq.Encode(0.0f), raw);
  }
  EXPECT_EQ(LogRawCodeReference(kLogClampMin, 37, 8), 230);
  EXPECT_GE(LogRawCodeReference(kLogClampMin, 37, 7), 256);  // why q >= 8 is required
  EXPECT_EQ(LogRawCodeReference(kLogClampMin, 1, 1), 50);
  EXPECT_EQ(LogRawCodeReference(kLogClampMin, 2, 1), 100);
  // At b <= 7 the zero state is reachable for the spec range, e.g. 7-bit q = 10.
  EXPECT_EQ(LogQuantizer({LogKind::kAdaLog, 7, 1.0f, 10}).Encode(0.0f), 128);
}

TEST(ShiftLogQuantizer, ShiftsAndUnshiftsUnlessReparamed) {
  auto rng = test::SeededRng(11);
  const LogParams p{LogKind::kAdaLog, 4, 3.0f, 25};
  ShiftLogQuantizer sq(p);
  EXPECT_EQ(sq.shift(), kGeluShift);
  EXPECT_EQ(kGeluShift, 0.16997124254703522f);
  const LogQuantizer base(p);
  std::vector<float> xs = test::UniformFloats(rng, 2000, -0.17f, 3.5f);
  std::vector<float> out(xs.size());
  for (float x : xs) {
    ASSERT_EQ(sq.Encode(x), base.Encode(x + kGeluShift));
    ASSERT_EQ(sq.FakeQuant(x), base.FakeQuant(x + kGeluShift) - kGeluShift);
  }
  sq.set_bias_reparamed(true);
  sq.FakeQuant(xs.data(), static_cast<int64_t>(xs.size()), out.data());
  for (size_t i = 0; i < xs.size(); ++i) ASSERT_EQ(out[i], base.FakeQuant(xs[i] + kGeluShift));
  ExpectErrorContaining([&] { ShiftLogQuantizer(p, std::nanf("")); }, "shift = nan");
}

TEST(BiasFold, PreservesTheLayerFunctionToFloatRounding) {
  // W_hat * Q(x + d) + bias' == W_hat * (Q(x + d) - d) + bias in exact arithmetic. Both sides are
  // evaluated in float with left-to-right sums of K terms; by the standard recursive-summation
  // bound each side is within gamma_K * sum_j |terms| (gamma_K = K u / (1 - K u), u = 2^-24) of its
  // exact value, and the fold itself adds one rounding of bias'. Tolerance: 2 gamma_(K+2) * M with
  // M = sum_j |W_hat_oj| (|y_j| + d) + |bias_o| (the magnitude both sides are built from).
  auto rng = test::SeededRng(2024);
  const int64_t out = 24, in = 96, tokens = 16;
  const UniformQuantizer wq({4, 0.02f, 7, UniformMode::kAsymmetric});
  std::vector<float> w = test::UniformFloats(rng, out * in, -0.15f, 0.15f), w_hat(w.size());
  wq.FakeQuant(w.data(), static_cast<int64_t>(w.size()), w_hat.data());
  const std::vector<float> bias = test::UniformFloats(rng, out, -0.5f, 0.5f);
  const std::vector<float> folded =
      FoldShiftIntoBias(w_hat.data(), out, in, bias.data(), kGeluShift);
  ShiftLogQuantizer plain({LogKind::kAdaLog, 4, 2.5f, 30}),
      reparam({LogKind::kAdaLog, 4, 2.5f, 30});
  reparam.set_bias_reparamed(true);
  const double u = std::ldexp(1.0, -24), gamma = (in + 2) * u / (1 - (in + 2) * u);
  double worst_ratio = 0.0;
  for (int64_t t = 0; t < tokens; ++t) {
    std::vector<float> x = test::UniformFloats(rng, in, -0.17f, 2.0f);
    for (int64_t o = 0; o < out; ++o) {
      float lhs = 0.0f, rhs = 0.0f;
      double mag = std::fabs(bias[static_cast<size_t>(o)]);
      for (int64_t j = 0; j < in; ++j) {
        const float wv = w_hat[static_cast<size_t>(o * in + j)];
        const float y = reparam.FakeQuant(x[static_cast<size_t>(j)]);
        lhs += wv * y;
        rhs += wv * plain.FakeQuant(x[static_cast<size_t>(j)]);
        mag += std::fabs(wv) * (std::fabs(y) + kGeluShift);
      }
      lhs += folded[static_cast<size_t>(o)];
      rhs += bias[static_cast<size_t>(o)];
      const double tol = 2 * gamma * mag;
      ASSERT_LE(std::fabs(static_cast<double>(lhs) - rhs), tol) << Repro("token", t, "row", o);
      worst_ratio = std::max(worst_ratio, std::fabs(static_cast<double>(lhs) - rhs) / tol);
    }
  }
  // Not vacuous: the fold changed the bias.
  double moved = 0.0;
  for (int64_t o = 0; o < out; ++o)
    moved += std::fabs(folded[static_cast<size_t>(o)] - bias[static_cast<size_t>(o)]);
  EXPECT_GT(moved, 1e-3);
  ExpectErrorContaining([&] { FoldShiftIntoBias(w_hat.data(), -1, in, nullptr, 0.1f); },
                        "bad weight shape");
}

TEST(LogErrors, BadParametersNameTheParameterAndValue) {
  const auto make = [](LogParams p) { return [p] { LogQuantizer q(p); }; };
  ExpectErrorContaining(make({LogKind::kAdaLog, 1, 1.0f, 30}), "bits = 1");
  ExpectErrorContaining(make({LogKind::kLog2, 9, 1.0f, 0}), "bits = 9");
  ExpectErrorContaining(make({LogKind::kAdaLog, 4, 0.0f, 30}), "scale = 0");
  ExpectErrorContaining(make({LogKind::kAdaLog, 4, -2.0f, 30}), "scale = -2");
  ExpectErrorContaining(make({LogKind::kAdaLog, 4, std::nanf(""), 30}), "scale = nan");
  ExpectErrorContaining(make({LogKind::kAdaLog, 4, 1.0f, 0}), "q = 0");
  ExpectErrorContaining(make({LogKind::kAdaLog, 4, 1.0f, 256}), "q = 256");
  ExpectErrorContaining(make({LogKind::kAdaLog, 8, 1.0f, 7}), "q = 7");
  ExpectErrorContaining([] { MakeAdaLogTables(4, 300); }, "q = 300");
  ExpectErrorContaining([] { MakeAdaLogTables(12, 30); }, "bits = 12");
}

}  // namespace
}  // namespace adalog
