// Logits metrics against hand-computed values: cosine (incl. zero rows), mean / min, top-1
// agreement with ties, and the reference-logits reader's shape and finiteness errors. Top-k
// accuracy is tested in executor_session_test.cc.
#include "runtime/metrics.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <limits>
#include <string>
#include <vector>

#include "quant/error.h"
#include "tests/util/expect_error.h"

namespace adalog {
namespace {

TEST(Metrics, ArgMaxTakesTheFirstOfTies) {
  const float a[] = {1.f, 3.f, 3.f, -2.f};
  EXPECT_EQ(ArgMax(a, 4), 1);
  const float b[] = {-1.f, -5.f, -0.5f};
  EXPECT_EQ(ArgMax(b, 3), 2);
  EXPECT_EQ(ArgMax(b, 1), 0);
}

TEST(Metrics, CompareLogitsHandComputed) {
  // Row by row (3 classes):
  //   0: a = (1,2,2), b = (1,2,2): cos 1, argmax 1 vs 1 (tie -> first)        agree
  //   1: a = (3,0,4), b = (0,5,0): ab 0, cos 0, argmax 2 vs 1                 disagree
  //   2: a = (1,2,0), b = (2,1,0): ab 4, |a|^2 = |b|^2 = 5, cos 0.8, 1 vs 0   disagree
  //   3: a = (0,0,0), b = (0,0,0): both zero -> cos 1, argmax 0 vs 0          agree
  //   4: a = (0,0,0), b = (0,0,1): one zero -> cos 0, argmax 0 vs 2           disagree
  const std::vector<float> a = {1, 2, 2, 3, 0, 4, 1, 2, 0, 0, 0, 0, 0, 0, 0};
  const std::vector<float> b = {1, 2, 2, 0, 5, 0, 2, 1, 0, 0, 0, 0, 0, 0, 1};
  const LogitsFidelity f = CompareLogits(a.data(), b.data(), 5, 3);
  EXPECT_NEAR(f.mean_cosine, (1 + 0 + 0.8 + 1 + 0) / 5, 1e-15);
  EXPECT_EQ(f.min_cosine, 0.0);
  EXPECT_DOUBLE_EQ(f.top1_agreement, 2.0 / 5);
  // The first three rows only: min is 0 (row 1); rows 0 and 2 alone: min 0.8.
  EXPECT_NEAR(CompareLogits(a.data(), b.data(), 3, 3).mean_cosine, 1.8 / 3, 1e-15);
  const std::vector<float> a02 = {1, 2, 2, 1, 2, 0}, b02 = {1, 2, 2, 2, 1, 0};
  const LogitsFidelity g = CompareLogits(a02.data(), b02.data(), 2, 3);
  EXPECT_NEAR(g.min_cosine, 0.8, 1e-15);
  EXPECT_DOUBLE_EQ(g.top1_agreement, 0.5);
  // Cosine ignores scale; sign flips it.
  const std::vector<float> c = {2, 4, 4}, d = {-1, -2, -2};
  EXPECT_NEAR(CompareLogits(c.data(), a.data(), 1, 3).mean_cosine, 1.0, 1e-15);
  EXPECT_NEAR(CompareLogits(d.data(), a.data(), 1, 3).min_cosine, -1.0, 1e-15);
  // No rows: the documented neutral values.
  const LogitsFidelity z = CompareLogits(a.data(), b.data(), 0, 3);
  EXPECT_EQ(z.mean_cosine, 0.0);
  EXPECT_EQ(z.min_cosine, 1.0);
  EXPECT_EQ(z.top1_agreement, 0.0);
}

TEST(Metrics, ReadReferenceLogitsChecksShapeAndValues) {
  const std::string dir = ::testing::TempDir() + "adalog_metrics_test";
  std::filesystem::create_directories(dir);
  std::vector<float> v(4 * 3);
  for (size_t i = 0; i < v.size(); ++i) v[i] = 0.5f * static_cast<float>(i) - 2.f;
  WriteNpyFloat32(dir + "/r.npy", v.data(), {4, 3});
  const NpyFloatArray r = ReadReferenceLogits(dir + "/r.npy", 3, 3);  // more rows than needed: fine
  EXPECT_EQ(r.shape, (std::vector<int64_t>{4, 3}));
  EXPECT_EQ(r.data, v);
  test::ExpectErrorContaining([&] { ReadReferenceLogits(dir + "/r.npy", 5, 3); },
                              "r.npy: reference logits must be float32 [N,3] with N >= 5 (the images "
                              "evaluated), got shape [4,3]");
  test::ExpectErrorContaining([&] { ReadReferenceLogits(dir + "/r.npy", 2, 4); }, "got shape [4,3]");
  WriteNpyFloat32(dir + "/r1.npy", v.data(), {12});
  test::ExpectErrorContaining([&] { ReadReferenceLogits(dir + "/r1.npy", 2, 3); }, "got shape [12]");
  v[7] = std::numeric_limits<float>::infinity();
  WriteNpyFloat32(dir + "/inf.npy", v.data(), {4, 3});
  test::ExpectErrorContaining([&] { ReadReferenceLogits(dir + "/inf.npy", 1, 3); }, "[2,1]");
}

}  // namespace
}  // namespace adalog
