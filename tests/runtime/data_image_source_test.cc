// ImageSource: .npy images with and without labels, image folders (the committed JPEGs), loading
// by range and by index against the underlying readers, and the loader's errors.
#include "runtime/data/image_source.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "quant/error.h"
#include "tests/util/expect_error.h"
#include "tests/util/test_util.h"

namespace adalog {
namespace {

namespace fs = std::filesystem;

std::string FreshDir(const std::string& name) {
  const fs::path dir = fs::path(::testing::TempDir()) / ("adalog_source_" + name);
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir.string();
}

// n images [C][H][W]; image i, element j holds 100 i + j (distinct everywhere).
std::vector<float> Numbered(int64_t n, int64_t per) {
  std::vector<float> v(static_cast<size_t>(n * per));
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < per; ++j) v[static_cast<size_t>(i * per + j)] = static_cast<float>(100 * i + j);
  return v;
}

TEST(ImageSource, NpyRangesIndicesAndLabels) {
  const std::string dir = FreshDir("npy");
  const std::vector<float> x = Numbered(5, 2 * 3 * 4);
  WriteNpyFloat32(dir + "/x.npy", x.data(), {5, 2, 3, 4});
  const std::vector<int64_t> y = {3, 1, 4, 1, 5};
  WriteNpyInt64(dir + "/y.npy", y.data(), {5});

  const ImageSource plain = ImageSource::Open(dir + "/x.npy");
  EXPECT_TRUE(plain.is_npy());
  EXPECT_FALSE(plain.has_labels());
  EXPECT_EQ(plain.size(), 5);
  EXPECT_EQ(plain.image_shape(), (std::vector<int64_t>{2, 3, 4}));
  EXPECT_EQ(plain.image_floats(), 24);
  EXPECT_NO_THROW(plain.CheckNotEmpty());

  std::vector<float> got(3 * 24, test::kFloatSentinel);
  plain.Load(1, 3, got.data());
  for (size_t k = 0; k < got.size(); ++k) EXPECT_EQ(got[k], x[24 + k]) << k;
  std::vector<float> picked(2 * 24, test::kFloatSentinel);
  plain.LoadIndices({4, 0}, picked.data());
  for (int j = 0; j < 24; ++j) {
    EXPECT_EQ(picked[static_cast<size_t>(j)], 400.f + j);
    EXPECT_EQ(picked[static_cast<size_t>(24 + j)], static_cast<float>(j));
  }
  test::ExpectErrorContaining([&] { plain.Load(3, 3, got.data()); }, "x.npy: images [3, 6) outside 0..5");
  test::ExpectErrorContaining([&] { plain.LoadIndices({5}, got.data()); }, "image index 5 outside 0..4");
  int64_t lab = -7;
  test::ExpectErrorContaining([&] { plain.Load(0, 1, got.data(), &lab); }, "no labels to load");
  EXPECT_EQ(lab, -7);

  ImageSourceOptions o;
  o.labels = dir + "/y.npy";
  o.num_classes = 6;
  const ImageSource labelled = ImageSource::Open(dir + "/x.npy", o);
  EXPECT_TRUE(labelled.has_labels());
  std::vector<int64_t> labels(2, -1);
  labelled.Load(2, 2, got.data(), labels.data());
  EXPECT_EQ(labels, (std::vector<int64_t>{4, 1}));
  EXPECT_EQ(got[0], 200.f);
  labelled.LoadLabels(0, 2, labels.data());
  EXPECT_EQ(labels, (std::vector<int64_t>{3, 1}));
  // The name does not decide for OpenNpy.
  fs::copy_file(dir + "/x.npy", dir + "/x.bin");
  EXPECT_EQ(ImageSource::OpenNpy(dir + "/x.bin").size(), 5);
}

TEST(ImageSource, NpyErrors) {
  const std::string dir = FreshDir("npy_errors");
  const std::vector<float> x = Numbered(4, 6);
  WriteNpyFloat32(dir + "/r3.npy", x.data(), {4, 2, 3});
  test::ExpectErrorContaining([&] { ImageSource::Open(dir + "/r3.npy"); },
                              "r3.npy: images must be float32 [N,C,H,W], got shape [4,2,3]");
  ImageSourceOptions calib;
  calib.what = "calibration images";
  test::ExpectErrorContaining([&] { ImageSource::Open(dir + "/r3.npy", calib); },
                              "r3.npy: calibration images must be float32 [N,C,H,W], got shape [4,2,3]");
  test::ExpectErrorContaining([&] { ImageSource::Open(dir + "/missing.npy"); }, "missing.npy");

  WriteNpyFloat32(dir + "/empty.npy", x.data(), {0, 1, 2, 3});
  const ImageSource empty = ImageSource::Open(dir + "/empty.npy");
  EXPECT_EQ(empty.size(), 0);
  test::ExpectErrorContaining([&] { empty.CheckNotEmpty(); }, "empty.npy: no images (shape [0,1,2,3])");

  WriteNpyFloat32(dir + "/x.npy", x.data(), {4, 1, 2, 3});
  const std::vector<int64_t> three = {0, 1, 2};
  WriteNpyInt64(dir + "/y3.npy", three.data(), {3});
  ImageSourceOptions o;
  o.labels = dir + "/y3.npy";
  test::ExpectErrorContaining([&] { ImageSource::Open(dir + "/x.npy", o); }, "label count mismatch");
  const std::vector<int64_t> four = {0, 1, 9, 2};
  WriteNpyInt64(dir + "/y4.npy", four.data(), {4});
  o.labels = dir + "/y4.npy";
  o.num_classes = 5;
  test::ExpectErrorContaining([&] { ImageSource::Open(dir + "/x.npy", o); }, "label 2 is 9, outside 0..4");
  o.num_classes = 10;
  EXPECT_EQ(ImageSource::Open(dir + "/x.npy", o).size(), 4);
  std::vector<float> nan = x;
  nan[7] = std::numeric_limits<float>::quiet_NaN();
  WriteNpyFloat32(dir + "/nan.npy", nan.data(), {4, 1, 2, 3});
  test::ExpectErrorContaining([&] { ImageSource::Open(dir + "/nan.npy", o); }, "[1,0,0,1]");
}

TEST(ImageSource, FolderLoadsAsTheImageReader) {
  const std::string root = FreshDir("folder");
  fs::create_directories(root + "/a");
  fs::create_directories(root + "/b");
  const std::string grad = test::TestDataPath("images/gradient_8x8.jpg");
  const std::string solid = test::TestDataPath("images/solid200_16x16.jpg");
  fs::copy_file(grad, root + "/a/g.jpg");
  fs::copy_file(solid, root + "/b/s.jpg");
  fs::copy_file(grad, root + "/b/t.jpg");
  ImageSourceOptions o;
  o.preprocess.crop = 6;
  o.preprocess.resize_shorter = 7;
  o.preprocess.mean[1] = 0.25f;
  o.num_classes = 2;
  const ImageSource s = ImageSource::Open(root, o);
  EXPECT_FALSE(s.is_npy());
  EXPECT_TRUE(s.has_labels());
  EXPECT_EQ(s.size(), 3);
  EXPECT_EQ(s.image_shape(), (std::vector<int64_t>{3, 6, 6}));
  const size_t per = 3 * 6 * 6;

  std::vector<float> want_g(per), want_s(per);
  LoadImageChw(grad, o.preprocess, want_g.data());
  LoadImageChw(solid, o.preprocess, want_s.data());
  bool varies = false;  // the gradient is not constant, so the comparison is not vacuous
  for (size_t k = 1; k < per; ++k) varies |= want_g[k] != want_g[0];
  EXPECT_TRUE(varies);

  std::vector<float> got(3 * per, test::kFloatSentinel);
  std::vector<int64_t> labels(3, -1);
  s.Load(0, 3, got.data(), labels.data());
  EXPECT_EQ(labels, (std::vector<int64_t>{0, 1, 1}));
  for (size_t k = 0; k < per; ++k) {
    EXPECT_EQ(got[k], want_g[k]) << k;
    EXPECT_EQ(got[per + k], want_s[k]) << k;
    EXPECT_EQ(got[2 * per + k], want_g[k]) << k;
  }
  std::vector<float> picked(per, test::kFloatSentinel);
  s.LoadIndices({1}, picked.data());
  EXPECT_EQ(picked, want_s);
  std::vector<float> unlabelled(per, test::kFloatSentinel);
  s.Load(2, 1, unlabelled.data());
  EXPECT_EQ(unlabelled, want_g);
  s.LoadLabels(1, 2, labels.data());
  EXPECT_EQ(labels[0], 1);
  test::ExpectErrorContaining([&] { s.npy(); }, "an image folder has no .npy array");

  o.num_classes = 3;
  test::ExpectErrorContaining([&] { ImageSource::Open(root, o); }, "found 2");
  test::ExpectErrorContaining([&] { ImageSource::Open(root + "/nope"); }, "not a directory");
}

TEST(ImageSource, SyntheticImagesAreSeededStandardNormal) {
  const std::vector<float> a = SyntheticImages({2, 3, 4, 4}, 0);
  ASSERT_EQ(a.size(), 96u);
  EXPECT_EQ(a, SyntheticImages({2, 3, 4, 4}, 0));
  EXPECT_NE(a, SyntheticImages({2, 3, 4, 4}, 1));
  std::mt19937 rng(0);
  std::normal_distribution<float> normal(0.f, 1.f);
  for (float v : a) EXPECT_EQ(v, normal(rng));
}

TEST(ImageSource, PathsAndShapes) {
  EXPECT_TRUE(IsNpyPath("a/b.npy"));
  EXPECT_TRUE(IsNpyPath(".npy"));
  EXPECT_FALSE(IsNpyPath("a.npy/"));
  EXPECT_FALSE(IsNpyPath("npy"));
  EXPECT_FALSE(IsNpyPath("images"));
  EXPECT_EQ(ShapeString({}), "[]");
  EXPECT_EQ(ShapeString({8, 3, 16, 16}), "[8,3,16,16]");
}

}  // namespace
}  // namespace adalog
