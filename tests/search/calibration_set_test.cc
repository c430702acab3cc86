// The calibration-set choice: ChooseCalibrationIndices against a plain partial Fisher-Yates
// written here from its contract, determinism and seed sensitivity, validation; LoadCalibrationSet
// from an .npy (the chosen images, bit for bit) and from an image folder (as the model's eval
// transform decodes them), with its errors; the one default seed.
#include "search/calibration_set.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <limits>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "quant/error.h"
#include "runtime/data/image_folder.h"
#include "runtime/data/npy.h"
#include "search/calibrate.h"
#include "tests/util/exec_random_vit.h"
#include "tests/util/expect_error.h"
#include "tests/util/test_util.h"

namespace adalog::search {
namespace {

namespace fs = std::filesystem;
using testing_util::MakeRandomVit;
using testing_util::RandomVitSpec;

// The contract, written plainly: swap position i with a uniform pick from [i, n) for the first
// `want` positions (mt19937(seed), uniform_int_distribution<int64_t>), keep them, sort.
std::vector<int64_t> PlainChoice(int64_t n, int64_t want, uint32_t seed) {
  std::vector<int64_t> all;
  for (int64_t i = 0; i < n; ++i) all.push_back(i);
  if (want == n) return all;
  std::mt19937 rng(seed);
  for (int64_t i = 0; i < want; ++i) {
    std::uniform_int_distribution<int64_t> d(i, n - 1);
    const int64_t j = d(rng);
    std::swap(all[i], all[j]);
  }
  std::vector<int64_t> chosen(all.begin(), all.begin() + want);
  std::sort(chosen.begin(), chosen.end());
  return chosen;
}

TEST(CalibrationSet, ChoiceIsTheSeededPartialShuffle) {
  for (uint32_t seed : {0u, 1u, 5u, 4294967295u}) {
    for (auto [n, want] : {std::pair<int64_t, int64_t>{256, 32}, {10, 9}, {7, 1}, {1000, 500}}) {
      const std::vector<int64_t> got = ChooseCalibrationIndices(n, want, seed);
      EXPECT_EQ(got, PlainChoice(n, want, seed)) << test::Repro("seed", seed, "n", n, "want", want);
      EXPECT_EQ(got, ChooseCalibrationIndices(n, want, seed));  // deterministic
      ASSERT_EQ(static_cast<int64_t>(got.size()), want);
      EXPECT_TRUE(std::is_sorted(got.begin(), got.end()));
      EXPECT_EQ(std::set<int64_t>(got.begin(), got.end()).size(), got.size());  // distinct
      EXPECT_GE(got.front(), 0);
      EXPECT_LT(got.back(), n);
    }
  }
  // The seed matters (not a fixed prefix), and all are taken when want == available.
  EXPECT_NE(ChooseCalibrationIndices(256, 32, 0), ChooseCalibrationIndices(256, 32, 1));
  std::vector<int64_t> first32(32);
  for (int i = 0; i < 32; ++i) first32[static_cast<size_t>(i)] = i;
  EXPECT_NE(ChooseCalibrationIndices(256, 32, 0), first32);
  EXPECT_EQ(ChooseCalibrationIndices(32, 32, 0), first32);
  EXPECT_EQ(ChooseCalibrationIndices(32, 32, 99), first32);
}

TEST(CalibrationSet, ChoiceValidation) {
  test::ExpectErrorContaining([] { ChooseCalibrationIndices(10, 11, 0); }, "cannot choose 11 of 10 images");
  test::ExpectErrorContaining([] { ChooseCalibrationIndices(10, 0, 0); }, "cannot choose 0 of 10 images");
  test::ExpectErrorContaining([] { ChooseCalibrationIndices(0, 1, 0); }, "cannot choose 1 of 0 images");
}

TEST(CalibrationSet, OneDefaultSeed) {
  EXPECT_EQ(CalibOptions{}.seed, kDefaultCalibrationSeed);
  EXPECT_EQ(kDefaultCalibrationSeed, 0u);  // the CLI's historical default (--seed 0)
}

std::string FreshDir(const std::string& name) {
  const fs::path dir = fs::path(::testing::TempDir()) / ("adalog_calibset_" + name);
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir.string();
}

RandomVitSpec Spec(int image) {
  RandomVitSpec s;
  s.dim = 16;
  s.heads = 2;
  s.depth = 1;
  s.image = image;
  s.patch = 4;
  return s;
}

TEST(CalibrationSet, LoadsTheChosenNpyImages) {
  const VitModel m = MakeRandomVit(Spec(8));
  const int64_t per = 3 * 8 * 8, n = 12;
  std::vector<float> x(static_cast<size_t>(n * per));
  for (size_t k = 0; k < x.size(); ++k) x[k] = static_cast<float>(k % 977) * 0.01f - 3.f + static_cast<float>(k / per);
  const std::string dir = FreshDir("npy");
  WriteNpyFloat32(dir + "/x.npy", x.data(), {n, 3, 8, 8});
  const CalibrationSet set = LoadCalibrationSet(dir + "/x.npy", m, 5, 7);
  EXPECT_EQ(set.available, n);
  EXPECT_EQ(set.count(), 5);
  EXPECT_EQ(set.selected, ChooseCalibrationIndices(n, 5, 7));
  ASSERT_EQ(static_cast<int64_t>(set.images.size()), 5 * per);
  for (int i = 0; i < 5; ++i)
    for (int64_t j = 0; j < per; ++j)
      ASSERT_EQ(set.images[static_cast<size_t>(i * per + j)], x[static_cast<size_t>(set.selected[i] * per + j)])
          << i << " " << j;
  // Same (source, size, seed), same set; the default seed is kDefaultCalibrationSeed.
  EXPECT_EQ(LoadCalibrationSet(dir + "/x.npy", m, 5, 7).images, set.images);
  EXPECT_EQ(LoadCalibrationSet(dir + "/x.npy", m, 5).selected, ChooseCalibrationIndices(n, 5, 0));
  EXPECT_EQ(LoadCalibrationSet(dir + "/x.npy", m, 12, 3).selected, ChooseCalibrationIndices(12, 12, 0));
}

TEST(CalibrationSet, NpyErrors) {
  const VitModel m = MakeRandomVit(Spec(8));
  const std::string dir = FreshDir("npy_errors");
  std::vector<float> x(static_cast<size_t>(4 * 3 * 8 * 8), 0.5f);
  WriteNpyFloat32(dir + "/x.npy", x.data(), {4, 3, 8, 8});
  test::ExpectErrorContaining([&] { LoadCalibrationSet(dir + "/x.npy", m, 5, 0); },
                              "calibration set " + dir + "/x.npy has 4 images, --calib-size asks for 5");
  WriteNpyFloat32(dir + "/small.npy", x.data(), {4, 3, 4, 16});
  test::ExpectErrorContaining([&] { LoadCalibrationSet(dir + "/small.npy", m, 2, 0); },
                              "small.npy: calibration images are [4,3,4,16] but the model expects [N,3,8,8]");
  WriteNpyFloat32(dir + "/r2.npy", x.data(), {4, 192});
  test::ExpectErrorContaining([&] { LoadCalibrationSet(dir + "/r2.npy", m, 2, 0); },
                              "r2.npy: calibration images must be float32 [N,C,H,W], got shape [4,192]");
  x[3 * 64 + 9] = std::numeric_limits<float>::quiet_NaN();  // image 1, channel 0, (1, 1)
  WriteNpyFloat32(dir + "/nan.npy", x.data(), {4, 3, 8, 8});
  test::ExpectErrorContaining([&] { LoadCalibrationSet(dir + "/nan.npy", m, 1, 0); },
                              "nan.npy: calibration images");
  test::ExpectErrorContaining([&] { LoadCalibrationSet(dir + "/nan.npy", m, 1, 0); }, "[1,0,1,1]");
}

TEST(CalibrationSet, FolderImagesAsTheModelDecodesThem) {
  const VitModel m = MakeRandomVit(Spec(8));
  const std::string root = FreshDir("folder");
  const std::vector<std::string> src = {test::TestDataPath("images/gradient_8x8.jpg"),
                                        test::TestDataPath("images/solid200_16x16.jpg")};
  for (int i = 0; i < 5; ++i) {
    fs::create_directories(root + "/c" + std::to_string(i % 2));
    fs::copy_file(src[static_cast<size_t>(i % 2)], root + "/c" + std::to_string(i % 2) + "/" + std::to_string(i) + ".jpg");
  }
  const CalibrationSet set = LoadCalibrationSet(root, m, 3, 2);
  EXPECT_EQ(set.available, 5);
  ASSERT_EQ(set.selected, ChooseCalibrationIndices(5, 3, 2));
  const ImageFolder folder = ScanImageFolder(root);
  const ImagePreprocessOptions pre = PreprocessOptionsFor(m);
  const size_t per = 3 * 8 * 8;
  for (size_t i = 0; i < 3; ++i) {
    std::vector<float> want(per);
    LoadImageChw(folder.items[static_cast<size_t>(set.selected[i])].path, pre, want.data());
    EXPECT_EQ(std::vector<float>(set.images.begin() + static_cast<int64_t>(i * per),
                                 set.images.begin() + static_cast<int64_t>((i + 1) * per)),
              want)
        << i;
  }
  test::ExpectErrorContaining([&] { LoadCalibrationSet(root, m, 6, 0); }, "has 5 images, --calib-size asks for 6");
  RandomVitSpec one = Spec(8);
  one.channels = 1;
  test::ExpectErrorContaining([&] { LoadCalibrationSet(root, MakeRandomVit(one), 1, 0); },
                              "image folders give 3-channel images, the model expects 1 channels");
  test::ExpectErrorContaining([&] { LoadCalibrationSet(root + "/none", m, 1, 0); }, "not a directory");
}

}  // namespace
}  // namespace adalog::search
