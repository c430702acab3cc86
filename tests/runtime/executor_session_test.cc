// The public runtime API (adalog_runtime.h): input validation, logits, top-1/top-5, model loading
// errors, version string.
#include "runtime/adalog_runtime.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <functional>
#include <fstream>
#include <string>
#include <vector>

#include "quant/error.h"
#include "runtime/kernels/reference/vit_forward_ref.h"
#include "tests/util/exec_random_vit.h"

namespace adalog {
namespace {

std::shared_ptr<const LoadedModel> RandomLoaded(uint32_t seed) {
  auto m = std::make_shared<LoadedModel>();
  testing_util::RandomVitSpec s;
  s.seed = seed;
  m->model = testing_util::MakeRandomVit(s);
  m->path = "<random>";
  return m;
}

std::string ErrorOf(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(ExecutorSessionTest, RunsAndMatchesReference) {
  auto loaded = RandomLoaded(3);
  SessionOptions o;
  o.max_batch = 4;
  Session s(loaded, o);
  EXPECT_EQ(s.input_shape(2), (std::vector<int64_t>{2, 3, 16, 16}));
  const auto images = testing_util::RandomImages(loaded->model, 3, 9);
  const std::vector<float> got = s.Run(images.data(), s.input_shape(3));
  const std::vector<float> want = ref::VitForwardFp32(loaded->model, images.data(), 3);
  ASSERT_EQ(got.size(), want.size());
  float scale = 0.f;
  for (float v : want) scale = std::max(scale, std::fabs(v));
  for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], want[i], 1e-4f * scale);
}

TEST(ExecutorSessionTest, RejectsBadInputs) {
  auto loaded = RandomLoaded(4);
  SessionOptions o;
  o.max_batch = 2;
  Session s(loaded, o);
  auto images = testing_util::RandomImages(loaded->model, 3, 1);
  EXPECT_NE(ErrorOf([&] { s.Run(images.data(), {3, 3, 16, 16}); }).find("outside 1..2"), std::string::npos);
  EXPECT_NE(ErrorOf([&] { s.Run(images.data(), {0, 3, 16, 16}); }).find("batch 0"), std::string::npos);
  EXPECT_NE(ErrorOf([&] { s.Run(images.data(), {1, 3, 32, 16}); }).find("does not match"), std::string::npos);
  EXPECT_NE(ErrorOf([&] { s.Run(images.data(), {1, 3, 16}); }).find("[B,C,H,W]"), std::string::npos);
  images[3 * 256 + 17] = std::nanf("");
  EXPECT_NE(ErrorOf([&] { s.Run(images.data(), {2, 3, 16, 16}); }).find("[1,0,1,1] is NaN"),
            std::string::npos);
  SessionOptions bad;
  bad.max_batch = 0;
  EXPECT_THROW(Session(loaded, bad), Error);
}

TEST(ExecutorSessionTest, TopKAccuracy) {
  // 3 rows, 6 classes.
  const std::vector<float> logits = {0, 1, 2, 3, 4, 5,  //
                                     5, 4, 3, 2, 1, 0,  //
                                     1, 1, 1, 1, 1, 1};
  const std::vector<int64_t> labels = {5, 5, 0};
  EXPECT_EQ(CountTopKCorrect(logits.data(), 3, 6, labels.data(), 1), 2);  // row 3 tie -> class 0
  EXPECT_DOUBLE_EQ(Top1Accuracy(logits.data(), 3, 6, labels.data()), 2.0 / 3);
  EXPECT_DOUBLE_EQ(Top5Accuracy(logits.data(), 3, 6, labels.data()), 2.0 / 3);  // row 2: rank 5
  const std::vector<int64_t> labels2 = {0, 4, 5};
  EXPECT_EQ(CountTopKCorrect(logits.data(), 3, 6, labels2.data(), 5), 1);
  EXPECT_EQ(CountTopKCorrect(logits.data(), 3, 6, labels2.data(), 6), 3);
  const std::vector<int64_t> bad = {0, 6, 0};
  EXPECT_THROW(CountTopKCorrect(logits.data(), 3, 6, bad.data(), 1), Error);
  EXPECT_EQ(Top1Accuracy(logits.data(), 0, 6, labels.data()), 0.0);
}

TEST(ExecutorSessionTest, LoadModelErrors) {
  const std::string dir = ::testing::TempDir() + "adalog_session_test";
  std::filesystem::create_directories(dir);
  EXPECT_NE(ErrorOf([&] { LoadModel(dir + "/missing.onnx"); }).find("missing.onnx"), std::string::npos);
  const std::string q = dir + "/model.adalog";
  std::ofstream(q, std::ios::binary) << kQuantizedModelMagic << "rest";
  // Recognised as a quantized model file by its magic, then rejected by the validating loader.
  EXPECT_NE(ErrorOf([&] { LoadModel(q); }).find("model.adalog"), std::string::npos);
}

TEST(ExecutorSessionTest, VersionStringShowsIsa) {
  const std::string v = RuntimeVersionString();
  EXPECT_NE(v.find("adalog"), std::string::npos);
  EXPECT_NE(v.find("isa: detected"), std::string::npos);
}

}  // namespace
}  // namespace adalog
