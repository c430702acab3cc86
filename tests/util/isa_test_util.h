// ISA levels in tests: a test (or parameterized instance) per level, skipped visibly when the CPU
// lacks the level, and ADALOG_REQUIRE_ISA=<level> to turn such skips into failures.
//
// Kernels given a cap above what the CPU supports fall back to lower-level code, so a loop over
// levels would silently compare the scalar path with itself on an older CPU and still pass. Tests
// that exercise a level therefore start with ADALOG_REQUIRE_OR_SKIP_ISA(level) (or derive from
// IsaParamTest, whose SetUp does it): the test is reported SKIPPED with the level's name, or
// FAILED when the environment sets ADALOG_REQUIRE_ISA to that level or any level above it (e.g.
// ADALOG_REQUIRE_ISA=avx512vnni on a CI runner that must run every path).
// Header-only: only the runtime test binary links runtime/cpu_features.
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "runtime/cpu_features.h"

namespace adalog::test {

inline constexpr IsaLevel kAllIsaLevels[] = {IsaLevel::kRef, IsaLevel::kAvx2, IsaLevel::kAvx512,
                                             IsaLevel::kAvx512Vnni};

// The level named by ADALOG_REQUIRE_ISA; false when unset or empty. *bad is set when the value is
// not a level name (the macro then fails the test rather than ignore a typo).
inline bool RequiredIsaLevel(IsaLevel* level, bool* bad) {
  *bad = false;
  const char* env = std::getenv("ADALOG_REQUIRE_ISA");
  if (env == nullptr || *env == '\0') return false;
  if (!ParseIsaLevel(env, level)) {
    *bad = true;
    return false;
  }
  return true;
}

// Empty when tests at `level` can run on this CPU; else why not (names the level). A cap set by
// ADALOG_ISA does not count: explicit caps in tests select code by what the CPU supports.
inline std::string MissingIsaReason(IsaLevel level) {
  if (IsaSupported(level)) return "";
  return std::string("ISA level ") + IsaLevelName(level) +
         " not supported by this CPU/OS (detected " + IsaLevelName(DetectedIsaLevel()) + ")";
}

// Whether a missing `level` must fail: ADALOG_REQUIRE_ISA names it or a level above it.
inline bool IsaRequired(IsaLevel level) {
  IsaLevel req;
  bool bad;
  return RequiredIsaLevel(&req, &bad) && static_cast<int>(level) <= static_cast<int>(req);
}

// gtest instance names for IsaLevel parameters: "ref", "avx2", "avx512", "avx512vnni".
inline std::string IsaParamName(const ::testing::TestParamInfo<IsaLevel>& info) {
  return IsaLevelName(info.param);
}

}  // namespace adalog::test

// In a test body or SetUp: returns from it after GTEST_SKIP (naming the level) when the CPU lacks
// `level`, or after a failure when ADALOG_REQUIRE_ISA requires it (or is not a level name).
#define ADALOG_REQUIRE_OR_SKIP_ISA(level)                                                        \
  do {                                                                                           \
    ::adalog::IsaLevel adalog_req_;                                                              \
    bool adalog_bad_;                                                                            \
    ::adalog::test::RequiredIsaLevel(&adalog_req_, &adalog_bad_);                                \
    if (adalog_bad_) {                                                                           \
      FAIL() << "ADALOG_REQUIRE_ISA='" << std::getenv("ADALOG_REQUIRE_ISA")                       \
             << "' is not ref|avx2|avx512|avx512vnni";                                           \
    }                                                                                            \
    const std::string adalog_missing_ = ::adalog::test::MissingIsaReason(level);                 \
    if (!adalog_missing_.empty()) {                                                              \
      if (::adalog::test::IsaRequired(level)) {                                                  \
        FAIL() << adalog_missing_ << ", but ADALOG_REQUIRE_ISA=" << std::getenv("ADALOG_REQUIRE_ISA") \
               << " requires it";                                                                \
      }                                                                                          \
      GTEST_SKIP() << adalog_missing_;                                                           \
    }                                                                                            \
  } while (0)

namespace adalog::test {

// Fixture for tests parameterized by ISA level: SetUp skips (or fails) levels the CPU lacks.
//   class MyIsaTest : public test::IsaParamTest {};
//   TEST_P(MyIsaTest, Foo) { ... GetParam() ... }
//   INSTANTIATE_TEST_SUITE_P(Isa, MyIsaTest, ::testing::Values(...), test::IsaParamName);
class IsaParamTest : public ::testing::TestWithParam<IsaLevel> {
 protected:
  void SetUp() override { ADALOG_REQUIRE_OR_SKIP_ISA(GetParam()); }
};

}  // namespace adalog::test
