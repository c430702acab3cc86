// Tests of the log-code writers (runtime/kernels/int/logcode_writers.h): softmax -> AdaLog codes
// and GELU -> Shift-AdaLog codes are bit-identical at every ISA level to the scalar reference,
// whose codes are quant's LogQuantizer::Encode of its float outputs; the polynomial floats stay
// within a named tolerance of libm.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <vector>

#include "quant/log_quantizers.h"
#include "runtime/cpu_features.h"
#include "runtime/kernels/int/logcode_writers.h"
#include "runtime/kernels/reference/logcode_writers_ref.h"
#include "tests/util/isa_test_util.h"
#include "tests/util/test_util.h"

namespace adalog::intk {
namespace {

using test::Repro;

// Named tolerances of the polynomial exp / erf against libm (float outputs).
constexpr float kSoftmaxRelTol = 2e-6f;  // per probability, relative to the row max
constexpr float kGeluAbsTol = 1e-6f;     // A&S 7.1.26 (1.5e-7 on erf) times |x| / 2, x in [-8, 8]

LogParams AdaLog(int bits, int q, float scale) {
  LogParams p;
  p.kind = LogKind::kAdaLog;
  p.bits = bits;
  p.q = q;
  p.scale = scale;
  return p;
}

// One instance per writer level, skipped (named) where the CPU lacks it (isa_test_util.h); the
// reference-vs-libm checks are level-independent and cheap, so every instance repeats them.
const IsaLevel kLevels[] = {IsaLevel::kRef, IsaLevel::kAvx2, IsaLevel::kAvx512};
class LogCodeWritersIsa : public test::IsaParamTest {};
INSTANTIATE_TEST_SUITE_P(Isa, LogCodeWritersIsa, ::testing::ValuesIn(kLevels), test::IsaParamName);

TEST_P(LogCodeWritersIsa, SoftmaxCodesBitExact) {
  const IsaLevel level = GetParam();
  uint64_t seed = 8000;
  int max_distinct = 0;
  int64_t libm_code_diffs = 0, total = 0;
  for (int bits = 3; bits <= 8; ++bits) {
    for (int n : {1, 2, 15, 16, 17, 197, 577}) {
      const int q = n == 577 ? 37 : 10 + static_cast<int>((seed * 13) % 128);
      auto rng = test::SeededRng(seed);
      const int rows = n > 100 ? 3 : 9;
      const float sigma = (seed % 3 == 0) ? 0.5f : (seed % 3 == 1 ? 3.f : 10.f);
      std::vector<float> x(static_cast<size_t>(rows) * n);
      std::normal_distribution<float> nd(0.f, sigma);
      for (auto& v : x) v = nd(rng);
      const std::string repro = Repro("seed", seed, "bits", bits, "n", n, "q", q, "sigma", sigma);
      const LogCodeWriter w = MakeLogCodeWriter(AdaLog(bits, q, 1.f));
      const LogQuantizer quant(AdaLog(bits, q, 1.f));
      // Reference floats -> quant's Encode == the reference codes.
      std::vector<float> probs(x.size());
      ref::SoftmaxPolyRef(x.data(), rows, n, probs.data());
      std::vector<uint8_t> want(x.size());
      for (size_t i = 0; i < x.size(); ++i) want[i] = quant.Encode(probs[i]);
      int distinct = 0;
      std::vector<int> seen(257, 0);
      for (uint8_t c : want) distinct += seen[c]++ == 0;
      if (n > 16) {
        EXPECT_GE(distinct, 2) << "codes do not vary: vacuous " << repro;
      }
      max_distinct = std::max(max_distinct, distinct);
      std::vector<uint8_t> got(x.size(), 0xEE);
      SoftmaxToLogCodes(w, x.data(), rows, n, got.data(), level);
      for (size_t i = 0; i < x.size(); ++i) {
        ASSERT_EQ(int{got[i]}, int{want[i]})
            << "element " << i << " isa=" << IsaLevelName(level) << " " << repro;
      }
      // Polynomial vs libm softmax.
      for (int r = 0; r < rows; ++r) {
        const float* xr = x.data() + r * n;
        double m = xr[0], s = 0;
        for (int i = 0; i < n; ++i) m = std::max<double>(m, xr[i]);
        for (int i = 0; i < n; ++i) s += std::exp(double{xr[i]} - m);
        for (int i = 0; i < n; ++i) {
          const double exact = std::exp(double{xr[i]} - m) / s;
          const float p = probs[static_cast<size_t>(r) * n + i];
          ASSERT_LE(std::abs(p - exact), kSoftmaxRelTol * (1.0 / s) + 1e-30) << repro;
          libm_code_diffs += quant.Encode(static_cast<float>(exact)) != want[r * n + i];
          ++total;
        }
      }
      ++seed;
    }
  }
  EXPECT_GE(max_distinct, 20) << "no case spans many codes";
  if (level == IsaLevel::kRef) {
    std::printf("[ info ] softmax codes differing from Encode(exact softmax): %lld of %lld\n",
                static_cast<long long>(libm_code_diffs), static_cast<long long>(total));
  }
}

TEST_P(LogCodeWritersIsa, GeluShiftCodesBitExact) {
  const IsaLevel level = GetParam();
  uint64_t seed = 9000;
  int64_t libm_code_diffs = 0, total = 0;
  for (int bits = 3; bits <= 8; ++bits) {
    for (float scale : {1.f, 0.37f, 4.5f}) {
      const int q = 10 + static_cast<int>((seed * 29) % 128);
      auto rng = test::SeededRng(seed);
      // Uniform over [-8, 8] covers the tails and both saturated codes, but most of it lands in
      // them (GELU(x) + shift above the scale, or below the smallest level): measured 68-96% per
      // case. So as many inputs again are drawn where the codes are not saturated: v = GELU(x) +
      // shift log-uniform over the levels [s base^-(2^b - 1/2), s], x by bisection on the
      // increasing branch x > -0.7518 (exact erf, double). Levels below 1e-5 are left out: GELU +
      // shift reaches them only within ~1e-3 of its minimum, where the polynomial's 1e-6
      // absolute error decides the code.
      auto x = test::UniformFloats(rng, 1000 + bits, -8.f, 8.f);
      {
        const double log2_base = q / 37.0;
        const double lo = std::max(std::log2(1e-5), std::log2(scale) - log2_base * ((1 << bits) - 0.5));
        const double hi = std::log2(scale);
        std::uniform_real_distribution<double> ud(lo, hi);
        auto gelu = [](double v) { return 0.5 * v * (1.0 + std::erf(v / std::sqrt(2.0))); };
        for (int i = 0; i < 1000 + bits; ++i) {
          const double target = std::exp2(ud(rng)) - kGeluShift;  // GELU(x) wanted
          double a = -0.7517916, b = 16.0;
          for (int it = 0; it < 80; ++it) (gelu(0.5 * (a + b)) < target ? a : b) = 0.5 * (a + b);
          x.push_back(static_cast<float>(0.5 * (a + b)));
        }
      }
      for (float e : {0.f, -0.f, -0.75f, 1e-20f, -1e-20f, 30.f, -30.f, 1e30f, -1e30f}) x.push_back(e);
      const std::string repro = Repro("seed", seed, "bits", bits, "q", q, "scale", scale);
      const LogCodeWriter w = MakeLogCodeWriter(AdaLog(bits, q, scale), kGeluShift);
      const ShiftLogQuantizer quant(AdaLog(bits, q, scale), kGeluShift, true);
      std::vector<uint8_t> want(x.size());
      for (size_t i = 0; i < x.size(); ++i) want[i] = quant.Encode(ref::GeluPoly(x[i]));
      // Not vacuous: at most 60% of the codes saturated (top code 0 or the zero code), and every
      // level of the quantizer down to 2e-5 reached at least once.
      {
        int saturated = 0;
        std::vector<int> seen(256, 0);
        for (uint8_t c : want) {
          saturated += c == 0 || c == w.zero_code;
          ++seen[c];
        }
        EXPECT_LE(saturated, static_cast<int>(0.6 * static_cast<double>(want.size()))) << repro;
        for (int c = 0; c < (1 << bits); ++c) {
          if (std::log2(scale) - (q / 37.0) * c < std::log2(2e-5)) break;
          EXPECT_GT(seen[c], 0) << "code " << c << " " << repro;
        }
      }
      std::vector<uint8_t> got(x.size(), 0xEE);
      GeluToLogCodes(w, x.data(), static_cast<int64_t>(x.size()), got.data(), level);
      for (size_t i = 0; i < x.size(); ++i) {
        ASSERT_EQ(int{got[i]}, int{want[i]}) << "x = " << x[i] << " isa=" << IsaLevelName(level)
                                             << " " << repro;
      }
      for (size_t i = 0; i < x.size(); ++i) {
        if (std::abs(x[i]) > 8.f) continue;
        const double exact = 0.5 * x[i] * (1.0 + std::erf(x[i] / std::sqrt(2.0)));
        ASSERT_LE(std::abs(ref::GeluPoly(x[i]) - exact), kGeluAbsTol) << "x = " << x[i];
        libm_code_diffs += quant.Encode(static_cast<float>(exact)) != want[i];
        ++total;
      }
      ++seed;
    }
  }
  if (level == IsaLevel::kRef) {
    std::printf("[ info ] GELU codes differing from Encode(exact GELU): %lld of %lld\n",
                static_cast<long long>(libm_code_diffs), static_cast<long long>(total));
  }
}

}  // namespace
}  // namespace adalog::intk
