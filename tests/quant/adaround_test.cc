// AdaRound math (quant/adaround.h) and the straight-through training-mode quantizers
// (quant/ste.h) against hand-computed values.
#include "quant/adaround.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "quant/log_quantizers.h"
#include "quant/ste.h"

namespace adalog {
namespace {

TEST(AdaRound, RectifiedSigmoidHandValues) {
  // sigmoid(0) = 0.5 -> 0.5 * 1.2 - 0.1 = 0.5; sigmoid(log 3) = 0.75 -> 0.8.
  EXPECT_NEAR(AdaRoundH(0.0), 0.5, 1e-15);
  EXPECT_NEAR(AdaRoundH(std::log(3.0)), 0.8, 1e-15);
  EXPECT_EQ(AdaRoundH(10.0), 1.0);   // 1.2 * sigmoid(10) - 0.1 > 1: clamped
  EXPECT_EQ(AdaRoundH(-10.0), 0.0);  // < 0: clamped
  // h' = sigmoid (1 - sigmoid) * 1.2 inside, 0 where clamped.
  EXPECT_NEAR(AdaRoundHGrad(0.0), 0.25 * 1.2, 1e-15);
  EXPECT_NEAR(AdaRoundHGrad(std::log(3.0)), 0.75 * 0.25 * 1.2, 1e-15);
  EXPECT_EQ(AdaRoundHGrad(10.0), 0.0);
  EXPECT_EQ(AdaRoundHGrad(-10.0), 0.0);
}

TEST(AdaRound, InitAlphaGivesTheRoundingRest) {
  // w / s = 3.7: rest 0.7, so h(alpha) = 0.7 (float32 evaluation, as the official init_alpha).
  const float a = AdaRoundInitAlpha(0.37f, 0.1f);
  const float t = 0.37f / 0.1f;
  EXPECT_NEAR(AdaRoundH(static_cast<double>(a)), t - std::floor(t), 1e-6);
  EXPECT_NEAR(AdaRoundH(static_cast<double>(a)), 0.7, 1e-5);
  // rest 0 -> alpha = -log(1.2 / 0.1 - 1) = -log 11, h = 0.
  EXPECT_NEAR(AdaRoundInitAlpha(0.5f, 0.25f), -std::log(11.0), 1e-6);
  // Negative weight: -0.37 / 0.1 = -3.7, floor -4, rest 0.3.
  EXPECT_NEAR(AdaRoundH(static_cast<double>(AdaRoundInitAlpha(-0.37f, 0.1f))), 0.3, 1e-5);
}

TEST(AdaRound, SoftWeightHardCodeAndClamp) {
  UniformParams p;
  p.bits = 4;
  p.scale = 0.1f;
  p.zero_point = 3;
  // At the initial alpha the soft weight reproduces w (h = rest): c~ = 3 + 0.7 + 3.
  double d = -1;
  const double a = AdaRoundInitAlpha(0.37f, 0.1f);
  EXPECT_NEAR(AdaRoundSoftWeight(0.37f, p, a, &d), 0.37, 1e-6);
  EXPECT_NEAR(d, static_cast<double>(0.1f) * AdaRoundHGrad(a), 1e-15);  // s as stored: float 0.1
  EXPECT_GT(d, 0.0);
  // Above the top code: (15 - 3) * 0.1, no gradient.
  EXPECT_NEAR(AdaRoundSoftWeight(2.0f, p, 0.0, &d), 1.2, 1e-6);
  EXPECT_EQ(d, 0.0);
  // Hard code: floor(3.7) + [alpha >= 0] + z, clamped to 0..15.
  EXPECT_EQ(AdaRoundHardCode(0.37f, p, 0.5f), 7);
  EXPECT_EQ(AdaRoundHardCode(0.37f, p, 0.0f), 7);
  EXPECT_EQ(AdaRoundHardCode(0.37f, p, -0.5f), 6);
  EXPECT_EQ(AdaRoundHardCode(5.0f, p, -0.5f), 15);
  EXPECT_EQ(AdaRoundHardCode(-5.0f, p, 0.5f), 0);
}

TEST(AdaRound, RegularizerValuesAndGradient) {
  // h = 0.5, 1, 0.8: terms 1 - 0^b, 1 - 1, 1 - 0.6^b.
  const std::vector<double> alpha = {0.0, 10.0, std::log(3.0)};
  std::vector<double> g(3, 0.0);
  EXPECT_NEAR(AdaRoundRegularizer(alpha.data(), 3, 2.0, 0.01, g.data()), 1.0 + 0.0 + 0.64, 1e-12);
  EXPECT_NEAR(AdaRoundRegularizer(alpha.data(), 3, 20.0, 0.01, static_cast<double*>(nullptr)),
              1.0 + 1.0 - std::pow(0.6, 20.0), 1e-12);
  // Hand gradient at alpha = log 3, b = 2: -b |d|^(b-1) * 2 h' = -2 * 0.6 * 2 * 0.225, times 0.01.
  EXPECT_NEAR(g[2], 0.01 * -2.0 * 0.6 * 2.0 * 0.225, 1e-12);
  EXPECT_NEAR(g[0], 0.0, 1e-15);  // d = 0 up to the rounding of 0.5 * 1.2 - 0.1
  EXPECT_EQ(g[1], 0.0);  // h clamped
  // Central differences at random alphas, b = 2 and b = 7.3.
  std::mt19937 rng(3);
  std::uniform_real_distribution<double> u(-2.0, 2.0);
  for (double b : {2.0, 7.3}) {
    std::vector<double> a(16);
    for (double& x : a) x = u(rng);
    std::vector<double> grad(16, 0.0);
    AdaRoundRegularizer(a.data(), 16, b, 0.01, grad.data());
    for (int i = 0; i < 16; ++i) {
      const double eps = 1e-6;
      std::vector<double> ap = a, am = a;
      ap[i] += eps;
      am[i] -= eps;
      const double fd = 0.01 * (AdaRoundRegularizer(ap.data(), 16, b, 1.0, static_cast<double*>(nullptr)) -
                                AdaRoundRegularizer(am.data(), 16, b, 1.0, static_cast<double*>(nullptr))) / (2 * eps);
      EXPECT_NEAR(grad[i], fd, 1e-8 + 1e-6 * std::fabs(fd)) << "b " << b << " i " << i;
    }
  }
}

TEST(AdaRound, ExponentSchedule) {
  // 100 iterations, warmup 0.2: off while count < 20, b = 20 at 20, linear to 2 at 100.
  EXPECT_FALSE(AdaRoundRegularizerOn(1, 100));
  EXPECT_FALSE(AdaRoundRegularizerOn(19, 100));
  EXPECT_TRUE(AdaRoundRegularizerOn(20, 100));
  EXPECT_DOUBLE_EQ(AdaRoundExponent(1, 100), 20.0);
  EXPECT_DOUBLE_EQ(AdaRoundExponent(20, 100), 20.0);
  EXPECT_DOUBLE_EQ(AdaRoundExponent(60, 100), 11.0);  // rel 0.5: 2 + 18 * 0.5
  EXPECT_DOUBLE_EQ(AdaRoundExponent(100, 100), 2.0);
  // The official defaults: 20,000 iterations, decay from 4,000.
  EXPECT_DOUBLE_EQ(AdaRoundExponent(12000, 20000), 11.0);
}

TEST(Ste, UniformHandValues) {
  double dx, ds;
  // x = 0.26, s = 0.1, z = 2: t = 2.6, round 3, code 5 (inside 0..15): x^ = 0.3,
  // dx^/dx = 1, dx^/ds = round(t) - t = 0.4.
  EXPECT_NEAR(UniformSte(0.26, 0.1, 2, 0, 15, &dx, &ds), 0.3, 1e-15);
  EXPECT_EQ(dx, 1.0);
  EXPECT_NEAR(ds, 0.4, 1e-12);
  // Above: t = 20, code 22 > 15: x^ = 13 * 0.1, dx^/dx = 0, dx^/ds = 13.
  EXPECT_NEAR(UniformSte(2.0, 0.1, 2, 0, 15, &dx, &ds), 1.3, 1e-15);
  EXPECT_EQ(dx, 0.0);
  EXPECT_EQ(ds, 13.0);
  // Below: code -3 < 0: x^ = -2 * 0.1, dx^/ds = -2.
  EXPECT_NEAR(UniformSte(-0.5, 0.1, 2, 0, 15, &dx, &ds), -0.2, 1e-15);
  EXPECT_EQ(dx, 0.0);
  EXPECT_EQ(ds, -2.0);
  // The clamp passes its bounds (torch.clamp's backward is inclusive): code exactly 15.
  EXPECT_NEAR(UniformSte(1.3, 0.1, 2, 0, 15, &dx, &ds), 1.3, 1e-12);
  EXPECT_EQ(dx, 1.0);
  // Half to even, as torch.round: t = 2.5 -> 2.
  EXPECT_NEAR(UniformSte(0.25, 0.1, 0, 0, 15, &dx, &ds), 0.2, 1e-12);
}

TEST(Ste, LogHandValues) {
  double dx, ds;
  // AdaLog q = 30, 4 bits, s = 1, x = 0.3: c = round(-log2(0.3) * 37 / 30) = round(2.142) = 2,
  // x^ = 2^(-2 * 30 / 37): the exact level, no table.
  const double xq = LogSte(0.3, 1.0, 4, 37, 30, 0.0, false, &dx, &ds);
  EXPECT_NEAR(xq, std::exp2(-60.0 / 37.0), 1e-15);
  EXPECT_NEAR(dx, xq / 0.3, 1e-12);  // x^ / (u s)
  EXPECT_EQ(ds, 0.0);
  // Above the scale: u clamps to 1, c = 0, x^ = s; only the direct scale term: dx^/ds = 1.
  EXPECT_NEAR(LogSte(1.5, 1.0, 4, 37, 30, 0.0, false, &dx, &ds), 1.0, 1e-15);
  EXPECT_EQ(dx, 0.0);
  EXPECT_EQ(ds, 1.0);
  // Tiny: c = round(19.93 * 37 / 30) = 25 >= 16: exact zero, no gradient.
  EXPECT_EQ(LogSte(1e-6, 1.0, 4, 37, 30, 0.0, false, &dx, &ds), 0.0);
  EXPECT_EQ(dx, 0.0);
  EXPECT_EQ(ds, 0.0);
  // Shift, not folded: Q(x + d) - d; folded: Q(x + d).
  const double d = kGeluShift;
  const double y = LogSte(0.1, 2.0, 4, 1, 1, d, false, &dx, &ds);
  const double yf = LogSte(0.1, 2.0, 4, 1, 1, d, true, &dx, &ds);
  EXPECT_NEAR(yf - y, d, 1e-15);
  // Log2: c = round(-log2((0.1 + d) / 2)) = round(2.56) = 3, level 2 * 2^-3.
  EXPECT_NEAR(yf, 0.25, 1e-15);
}

// The training-mode code is the inference code (same round(-log2(u) r / q), same zero rule):
// only the dequantized level differs (exact 2^(-c q / r) against AdaLog's integer tables).
TEST(Ste, LogTrainingCodesMatchTheInferenceEncoder) {
  std::mt19937 rng(11);
  std::uniform_real_distribution<float> u(-12.f, 0.5f);
  int zeros = 0, inside = 0;
  for (int bits : {3, 4}) {
    for (int q : {23, 37}) {
      LogParams lp{LogKind::kAdaLog, bits, 0.8f, q};
      const LogQuantizer lq(lp);
      for (int i = 0; i < 2000; ++i) {
        const float x = std::exp2(u(rng));
        float dx, ds;
        const float y = LogSte(x, lp.scale, bits, kAdaLogR, q, 0.f, false, &dx, &ds);
        const int32_t c = lq.Encode(x);
        if (c == lq.zero_code()) {
          EXPECT_EQ(y, 0.f) << x;
          ++zeros;
        } else {
          EXPECT_FLOAT_EQ(y, std::exp2((-static_cast<float>(c) * q) / kAdaLogR) * lp.scale) << x;
          ++inside;
        }
      }
    }
  }
  EXPECT_GT(zeros, 100);
  EXPECT_GT(inside, 1000);
}

}  // namespace
}  // namespace adalog
