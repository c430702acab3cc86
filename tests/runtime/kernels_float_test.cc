// Every vectorized float island vs the scalar reference, at every ISA level this CPU runs, on
// random shapes including vector-width edges; named tolerances from float_kernels_tolerance.h.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "runtime/cpu_features.h"
#include "runtime/kernels/float_kernels.h"
#include "runtime/kernels/float_kernels_tolerance.h"
#include "tests/util/isa_test_util.h"

namespace adalog {
namespace {

const int kLengths[] = {1, 2, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 197, 384, 1000, 1536};
constexpr float kSentinel = -12345.f;

// One instance per vector level (tests/util/isa_test_util.h: skipped, named, where the CPU lacks
// it; the tests' loops then run over the one kernel set of that level, which must exist).
class FloatKernelsIsa : public test::IsaParamTest {};
INSTANTIATE_TEST_SUITE_P(Isa, FloatKernelsIsa,
                         ::testing::Values(IsaLevel::kAvx2, IsaLevel::kAvx512), test::IsaParamName);

std::vector<const FloatKernels*> VectorLevels(IsaLevel level) {
  const FloatKernels* k = FloatKernelsForLevel(level);
  EXPECT_NE(k, nullptr) << "no float kernels for " << IsaLevelName(level);
  if (k == nullptr) return {};
  EXPECT_EQ(k->isa, level);
  return {k};
}

std::vector<float> Random(size_t n, float lo, float hi, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = u(rng);
  return v;
}

// Checks |got - want| <= abs + rel * |want| everywhere; also that outputs are not vacuous.
void ExpectClose(const std::vector<float>& got, const std::vector<float>& want,
                 FloatIslandTolerance tol, const std::string& repro) {
  ASSERT_EQ(got.size(), want.size());
  size_t nonzero = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    ASSERT_NE(got[i], kSentinel) << "element " << i << " not written; " << repro;
    const float bound = tol.abs + tol.rel * std::fabs(want[i]);
    ASSERT_LE(std::fabs(got[i] - want[i]), bound)
        << "element " << i << ": got " << got[i] << " want " << want[i] << "; " << repro;
    nonzero += want[i] != 0.f;
  }
  EXPECT_GT(nonzero, want.size() / 2) << "mostly-zero outputs make the test vacuous; " << repro;
}

TEST(KernelsFloatTest, ReferenceIsAlwaysAvailableAndSelectionHonoursCap) {
  EXPECT_NE(FloatKernelsForLevel(IsaLevel::kRef), nullptr);
  EXPECT_EQ(SelectFloatKernels(IsaLevel::kRef).isa, IsaLevel::kRef);
  const FloatKernels& best = SelectFloatKernels(IsaLevel::kAvx512Vnni);
  EXPECT_TRUE(IsaSupported(best.isa));
  if (IsaSupported(IsaLevel::kAvx2)) {
    EXPECT_EQ(SelectFloatKernels(IsaLevel::kAvx2).isa, IsaLevel::kAvx2);
  }
  IsaLevel parsed;
  EXPECT_TRUE(ParseIsaLevel("avx512", &parsed));
  EXPECT_EQ(parsed, IsaLevel::kAvx512);
  EXPECT_FALSE(ParseIsaLevel("sse9", &parsed));
  EXPECT_NE(DescribeCpu().find("isa: detected"), std::string::npos);
}

TEST_P(FloatKernelsIsa, LayerNormMatchesReference) {
  const FloatKernels& ref = FloatKernelsReference();
  for (const FloatKernels* k : VectorLevels(GetParam())) {
    uint32_t seed = 1;
    for (int n : kLengths) {
      for (int rows : {1, 3}) {
        const auto x = Random(static_cast<size_t>(rows) * n, -3.f, 5.f, ++seed);
        const auto gamma = Random(n, 0.5f, 2.f, ++seed);
        const auto beta = Random(n, -1.f, 1.f, ++seed);
        std::vector<float> want(x.size(), kSentinel), got(x.size(), kSentinel);
        ref.layer_norm(x.data(), want.data(), rows, n, gamma.data(), beta.data(), 1e-6f);
        k->layer_norm(x.data(), got.data(), rows, n, gamma.data(), beta.data(), 1e-6f);
        const std::string repro = std::string(k->name) + " layer_norm rows=" +
                                  std::to_string(rows) + " n=" + std::to_string(n) +
                                  " seed=" + std::to_string(seed);
        if (n == 1) {  // a single element normalises to exactly beta
          for (int r = 0; r < rows; ++r) EXPECT_EQ(got[r], beta[0]) << repro;
          continue;
        }
        ExpectClose(got, want, kLayerNormTol, repro);
        // In place.
        std::vector<float> inplace = x;
        k->layer_norm(inplace.data(), inplace.data(), rows, n, gamma.data(), beta.data(), 1e-6f);
        EXPECT_EQ(inplace, got) << "in-place differs; " << repro;
      }
    }
  }
}

TEST_P(FloatKernelsIsa, SoftmaxMatchesReference) {
  const FloatKernels& ref = FloatKernelsReference();
  for (const FloatKernels* k : VectorLevels(GetParam())) {
    uint32_t seed = 100;
    for (int n : kLengths) {
      for (float spread : {1.f, 8.f, 40.f}) {
        const int rows = 2;
        const auto x = Random(static_cast<size_t>(rows) * n, -spread, spread, ++seed);
        std::vector<float> want(x.size(), kSentinel), got(x.size(), kSentinel);
        ref.softmax(x.data(), want.data(), rows, n);
        k->softmax(x.data(), got.data(), rows, n);
        const std::string repro = std::string(k->name) + " softmax n=" + std::to_string(n) +
                                  " spread=" + std::to_string(spread) + " seed=" + std::to_string(seed);
        for (size_t i = 0; i < want.size(); ++i) {
          ASSERT_NE(got[i], kSentinel) << repro;
          ASSERT_LE(std::fabs(got[i] - want[i]), kSoftmaxTol.abs + kSoftmaxTol.rel * want[i])
              << "element " << i << " got " << got[i] << " want " << want[i] << "; " << repro;
        }
        for (int r = 0; r < rows; ++r) {
          double sum = 0;
          for (int i = 0; i < n; ++i) sum += got[static_cast<size_t>(r) * n + i];
          EXPECT_NEAR(sum, 1.0, 1e-5) << repro;
        }
      }
    }
  }
}

TEST_P(FloatKernelsIsa, SoftmaxHandlesExtremeRows) {
  for (const FloatKernels* k : VectorLevels(GetParam())) {
    // Very negative entries underflow to 0 exactly as in the reference; a single hot entry -> 1.
    std::vector<float> x(33, -1000.f), y(33, kSentinel);
    x[17] = 5.f;
    k->softmax(x.data(), y.data(), 1, 33);
    for (int i = 0; i < 33; ++i) EXPECT_EQ(y[i], i == 17 ? 1.f : 0.f) << k->name << " i=" << i;
    // Equal entries -> uniform.
    std::vector<float> e(20, 3.f), u(20);
    k->softmax(e.data(), u.data(), 1, 20);
    for (float p : u) EXPECT_NEAR(p, 0.05f, 1e-7f) << k->name;
  }
}

void CheckEltwise(IsaLevel level, EltwiseFn (*pick)(const FloatKernels&), const char* what) {
  const FloatKernels& ref = FloatKernelsReference();
  for (const FloatKernels* k : VectorLevels(level)) {
    uint32_t seed = 200;
    for (int n : kLengths) {
      for (float range : {0.1f, 3.f, 12.f}) {
        const auto x = Random(n, -range, range, ++seed);
        std::vector<float> want(n, kSentinel), got(n, kSentinel);
        pick(ref)(x.data(), want.data(), n);
        pick(*k)(x.data(), got.data(), n);
        const std::string repro = std::string(k->name) + " " + what + " n=" + std::to_string(n) +
                                  " range=" + std::to_string(range) + " seed=" + std::to_string(seed);
        for (int i = 0; i < n; ++i) {
          ASSERT_NE(got[i], kSentinel) << repro;
          // GELU error is relative to the input's size (0.5 * x * erf-error), not the output's.
          const float bound = kGeluTol.abs + kGeluTol.rel * std::fabs(x[i]);
          ASSERT_LE(std::fabs(got[i] - want[i]), bound)
              << "x=" << x[i] << " got " << got[i] << " want " << want[i] << "; " << repro;
        }
      }
    }
    // Special values: 0 -> 0, large |x| saturates like the reference.
    const std::vector<float> special = {0.f, -0.f, 30.f, -30.f, 1e4f, -1e4f, 1e-30f};
    std::vector<float> want(special.size()), got(special.size());
    pick(ref)(special.data(), want.data(), static_cast<int64_t>(special.size()));
    pick(*k)(special.data(), got.data(), static_cast<int64_t>(special.size()));
    for (size_t i = 0; i < special.size(); ++i) {
      EXPECT_NEAR(got[i], want[i], 1e-6f * (1.f + std::fabs(special[i])))
          << k->name << " " << what << " x=" << special[i];
    }
  }
}

TEST_P(FloatKernelsIsa, GeluErfMatchesReference) {
  CheckEltwise(GetParam(), [](const FloatKernels& k) { return k.gelu_erf; }, "gelu_erf");
}

TEST_P(FloatKernelsIsa, GeluTanhMatchesReference) {
  CheckEltwise(GetParam(), [](const FloatKernels& k) { return k.gelu_tanh; }, "gelu_tanh");
}

TEST_P(FloatKernelsIsa, AddIsBitExact) {
  const FloatKernels& ref = FloatKernelsReference();
  for (const FloatKernels* k : VectorLevels(GetParam())) {
    uint32_t seed = 300;
    for (int n : kLengths) {
      const auto a = Random(n, -10.f, 10.f, ++seed);
      const auto b = Random(n, -10.f, 10.f, ++seed);
      std::vector<float> want(n, kSentinel), got(n, kSentinel);
      ref.add(a.data(), b.data(), want.data(), n);
      k->add(a.data(), b.data(), got.data(), n);
      EXPECT_EQ(got, want) << k->name << " n=" << n;
      std::vector<float> acc = a;
      k->add(acc.data(), b.data(), acc.data(), n);
      EXPECT_EQ(acc, want) << k->name << " in place n=" << n;
    }
  }
}

TEST_P(FloatKernelsIsa, TailsDoNotWritePastTheEnd) {
  for (const FloatKernels* k : VectorLevels(GetParam())) {
    for (int n : {1, 7, 9, 15, 17, 31}) {
      std::vector<float> x = Random(n, -1.f, 1.f, 7), g(n, 1.f), b(n, 0.f);
      std::vector<float> y(n + 16, kSentinel);
      k->gelu_erf(x.data(), y.data(), n);
      k->gelu_tanh(x.data(), y.data(), n);
      k->softmax(x.data(), y.data(), 1, n);
      k->layer_norm(x.data(), y.data(), 1, n, g.data(), b.data(), 1e-5f);
      k->add(x.data(), x.data(), y.data(), n);
      for (int i = n; i < n + 16; ++i) EXPECT_EQ(y[i], kSentinel) << k->name << " n=" << n;
    }
  }
}

}  // namespace
}  // namespace adalog
