// Image-folder loader: scanning and labels, PNG/JPEG decoding, grayscale and alpha, resize + crop +
// normalise against hand-computed values, unreadable images, class-count mismatch. PNGs are
// written by the test itself (stb_image_write); JPEGs are committed under tests/data/images/.
#include "runtime/data/image_folder.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "quant/error.h"
#include "tests/util/test_files.h"

#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STBI_WRITE_NO_STDIO_UNUSED
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wall"
#pragma GCC diagnostic ignored "-Wextra"
#pragma GCC diagnostic ignored "-Wpedantic"
#pragma GCC diagnostic ignored "-Wshadow=local"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#include <stb/stb_image_write.h>
#pragma GCC diagnostic pop

namespace adalog {
namespace {

namespace fs = std::filesystem;

// JPEGs come from TestImage, committed (tests/data/images/README.md): the sanitizer build must not
// run stb's JPEG encoder, which shifts negative values.
using test::TestImage;
using test::UnitPreprocess;

std::string FreshDir(const std::string& name) {
  const fs::path dir = fs::path(::testing::TempDir()) / ("adalog_img_" + name);
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir.string();
}

// Horizontal gradient: value = x * 255 / (w - 1) in every channel (channel c offset by 10 * c).
std::vector<uint8_t> Gradient(int w, int h, int channels) {
  std::vector<uint8_t> px(static_cast<size_t>(w) * h * channels);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      for (int c = 0; c < channels; ++c)
        px[(static_cast<size_t>(y) * w + x) * channels + c] =
            static_cast<uint8_t>(std::min(255, x * 255 / (w - 1) + (c < 3 ? 10 * c : 0)));
  return px;
}

void WritePng(const std::string& path, int w, int h, int channels, const std::vector<uint8_t>& px) {
  ASSERT_NE(stbi_write_png(path.c_str(), w, h, channels, px.data(), w * channels), 0) << path;
}

TEST(DataImageFolderTest, ScanSortsClassesAndFiles) {
  const std::string root = FreshDir("scan");
  for (const char* cls : {"zebra", "ant", "mouse"}) fs::create_directories(fs::path(root) / cls);
  const auto px = Gradient(8, 8, 3);
  WritePng(root + "/zebra/b.png", 8, 8, 3, px);
  WritePng(root + "/zebra/a.PNG", 8, 8, 3, px);
  WritePng(root + "/ant/x.png", 8, 8, 3, px);
  fs::copy_file(TestImage("gradient_8x8.jpg"), root + "/mouse/m.jpg");
  std::ofstream(root + "/mouse/readme.txt") << "not an image";
  const ImageFolder f = ScanImageFolder(root, 3);
  ASSERT_EQ(f.classes, (std::vector<std::string>{"ant", "mouse", "zebra"}));
  ASSERT_EQ(f.items.size(), 4u);
  EXPECT_EQ(f.items[0].label, 0);
  EXPECT_EQ(f.items[1].label, 1);
  EXPECT_EQ(fs::path(f.items[2].path).filename(), "a.PNG");
  EXPECT_EQ(f.items[3].label, 2);
  // Batch load: labels follow the folders, every value written and finite.
  std::vector<float> images(4 * 3 * 4 * 4, std::nanf(""));
  std::vector<int64_t> labels(4, -1);
  LoadImageBatch(f, 0, 4, UnitPreprocess(4, 4), images.data(), labels.data());
  EXPECT_EQ(labels, (std::vector<int64_t>{0, 1, 2, 2}));
  for (float v : images) EXPECT_TRUE(std::isfinite(v));
  EXPECT_THROW(LoadImageBatch(f, 3, 2, UnitPreprocess(4, 4), images.data(), labels.data()), Error);
}

TEST(DataImageFolderTest, ClassCountMismatchAndEmptyFolders) {
  const std::string root = FreshDir("mismatch");
  fs::create_directories(fs::path(root) / "a");
  fs::create_directories(fs::path(root) / "b");
  WritePng(root + "/a/1.png", 4, 4, 3, Gradient(4, 4, 3));
  try {
    ScanImageFolder(root, 1000);
    FAIL();
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("found 2 class folders"), std::string::npos) << msg;
    EXPECT_NE(msg.find("1000 classes"), std::string::npos) << msg;
  }
  EXPECT_EQ(ScanImageFolder(root).items.size(), 1u);
  EXPECT_THROW(ScanImageFolder(FreshDir("empty")), Error);
  EXPECT_THROW(ScanImageFolder(root + "/missing"), Error);
}

// A flat folder (images directly in the root) is one unlabelled set where flat is allowed
// (calibration, run); where labels are needed it is refused, saying why.
TEST(DataImageFolderTest, FlatFolderNeedsNoLabels) {
  const std::string root = FreshDir("flat");
  const auto px = Gradient(8, 8, 3);
  WritePng(root + "/b.png", 8, 8, 3, px);
  WritePng(root + "/a.png", 8, 8, 3, px);
  ImageFolderScanOptions o;
  o.allow_flat = true;
  const ImageFolder f = ScanImageFolder(root, o);
  EXPECT_TRUE(f.flat);
  EXPECT_TRUE(f.classes.empty());
  ASSERT_EQ(f.items.size(), 2u);
  EXPECT_EQ(fs::path(f.items[0].path).filename(), "a.png");
  EXPECT_EQ(f.items[0].label, -1);
  EXPECT_EQ(f.skipped_total(), 0);
  EXPECT_EQ(DescribeSkipped(f), "");
  try {
    ScanImageFolder(root);
    FAIL() << "a flat folder was accepted where labels are needed";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("a flat folder of images has no labels"), std::string::npos) << e.what();
  }
}

// Every entry not read is counted by reason with one example; an empty class folder keeps its
// label index (the classes after it keep theirs); --strict turns any skip into an error.
TEST(DataImageFolderTest, SkippedEntriesAreCountedAndStrictRefusesThem) {
  const std::string root = FreshDir("skips");
  for (const char* cls : {"a", "b", "c"}) fs::create_directories(fs::path(root) / cls);
  const auto px = Gradient(8, 8, 3);
  WritePng(root + "/a/1.png", 8, 8, 3, px);
  WritePng(root + "/c/1.png", 8, 8, 3, px);
  std::ofstream(root + "/a/notes.txt") << "x";
  std::ofstream(root + "/c/image.webp") << "x";
  std::ofstream(root + "/c/.DS_Store") << "x";
  fs::create_directories(fs::path(root) / "c" / "nested");
  fs::create_symlink(root + "/missing.png", root + "/a/broken.png");
  WritePng(root + "/loose.png", 8, 8, 3, px);
  ImageFolderScanOptions o;
  const ImageFolder f = ScanImageFolder(root, o);
  EXPECT_EQ(f.classes, (std::vector<std::string>{"a", "b", "c"}));
  ASSERT_EQ(f.items.size(), 2u);
  EXPECT_EQ(f.items[1].label, 2);  // c keeps index 2 although b is empty
  ASSERT_EQ(f.skipped.size(), 4u);
  EXPECT_EQ(f.skipped[0].reason, "unsupported extension");
  EXPECT_EQ(f.skipped[0].count, 3);
  EXPECT_EQ(f.skipped[0].example, root + "/a/notes.txt");
  EXPECT_EQ(f.skipped[1].count, 1);
  EXPECT_EQ(f.skipped[1].example, root + "/b");
  EXPECT_EQ(f.skipped[2].reason, "not a regular file");
  EXPECT_EQ(f.skipped[2].count, 2);  // the broken link and the nested folder
  EXPECT_EQ(f.skipped[3].reason, "outside the class folders");
  EXPECT_EQ(f.skipped[3].count, 1);
  EXPECT_EQ(f.skipped_total(), 7);
  EXPECT_EQ(DescribeSkipped(f), root + ": skipped 7 entries: 3 unsupported extension (e.g. '" + root +
                                    "/a/notes.txt'), 1 empty class folder (e.g. '" + root +
                                    "/b'), 2 not a regular file (e.g. '" + root +
                                    "/a/broken.png'), 1 outside the class folders (e.g. '" + root + "/loose.png')");
  o.strict = true;
  try {
    ScanImageFolder(root, o);
    FAIL() << "strict scan accepted skipped entries";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("skipped 7 entries"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("strict"), std::string::npos) << e.what();
  }
  // Strict with nothing to skip passes.
  const std::string clean = FreshDir("clean");
  fs::create_directories(fs::path(clean) / "x");
  WritePng(clean + "/x/1.png", 8, 8, 3, px);
  EXPECT_EQ(ScanImageFolder(clean, o).items.size(), 1u);
  // Only unsupported files: the "no images" error carries the summary.
  const std::string none = FreshDir("none");
  std::ofstream(none + "/a.gif") << "x";
  ImageFolderScanOptions flat;
  flat.allow_flat = true;
  try {
    ScanImageFolder(none, flat);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("1 unsupported extension"), std::string::npos) << e.what();
  }
}

TEST(DataImageFolderTest, UnreadableImageNamesTheFile) {
  const std::string root = FreshDir("broken");
  const std::string path = root + "/broken.jpg";
  std::ofstream(path, std::ios::binary) << "\xFF\xD8\xFF garbage, not a JPEG";
  std::vector<float> out(3 * 4 * 4);
  try {
    LoadImageChw(path, UnitPreprocess(4, 4), out.data());
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("cannot decode"), std::string::npos) << e.what();
  }
  EXPECT_THROW(LoadImageChw(root + "/missing.png", UnitPreprocess(4, 4), out.data()), Error);
  // A truncated PNG.
  const auto px = Gradient(16, 16, 3);
  WritePng(root + "/t.png", 16, 16, 3, px);
  std::ifstream in(root + "/t.png", std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::ofstream(root + "/t.png", std::ios::binary | std::ios::trunc) << bytes.substr(0, bytes.size() / 2);
  EXPECT_THROW(LoadImageChw(root + "/t.png", UnitPreprocess(4, 4), out.data()), Error);
}

TEST(DataImageFolderTest, IdentityResizeReproducesPixelsAndNormalises) {
  const std::string root = FreshDir("identity");
  const int n = 6;
  const auto px = Gradient(n, n, 3);
  WritePng(root + "/g.png", n, n, 3, px);
  ImagePreprocessOptions o = UnitPreprocess(n, n);
  o.mean[1] = 0.5f;
  o.std[1] = 0.25f;
  std::vector<float> out(3 * n * n, -99.f);
  LoadImageChw(root + "/g.png", o, out.data());
  for (int c = 0; c < 3; ++c)
    for (int y = 0; y < n; ++y)
      for (int x = 0; x < n; ++x) {
        const float v = px[(static_cast<size_t>(y) * n + x) * 3 + c] / 255.f;
        EXPECT_NEAR(out[(static_cast<size_t>(c) * n + y) * n + x], (v - o.mean[c]) / o.std[c], 1e-5f)
            << c << "," << y << "," << x;
      }
}

TEST(DataImageFolderTest, GrayscaleAndAlphaBecomeThreeChannels) {
  const std::string root = FreshDir("gray");
  const auto g = Gradient(5, 5, 1);
  WritePng(root + "/g.png", 5, 5, 1, g);
  const auto rgba = Gradient(5, 5, 4);
  WritePng(root + "/a.png", 5, 5, 4, rgba);
  std::vector<float> out(3 * 5 * 5);
  LoadImageChw(root + "/g.png", UnitPreprocess(5, 5), out.data());
  for (int i = 0; i < 25; ++i) {
    EXPECT_EQ(out[i], out[25 + i]);
    EXPECT_EQ(out[i], out[50 + i]);
    EXPECT_NEAR(out[i], g[i] / 255.f, 1e-6f);
  }
  LoadImageChw(root + "/a.png", UnitPreprocess(5, 5), out.data());
  for (int i = 0; i < 25; ++i) EXPECT_NEAR(out[50 + i], rgba[i * 4 + 2] / 255.f, 1e-6f);  // alpha dropped
}

TEST(DataImageFolderTest, ResizeShorterSideThenCentreCrop) {
  // 8 wide x 4 high, constant columns 0,0,0,0,255,255,255,255 (a step). Resize shorter (4) -> 2:
  // 4 x 2, each output pixel averages 2x2 input pixels with antialias; crop 2 from the middle.
  std::vector<uint8_t> px(8 * 4);
  for (int y = 0; y < 4; ++y)
    for (int x = 0; x < 8; ++x) px[y * 8 + x] = x < 4 ? 0 : 255;
  std::vector<float> out(3 * 2 * 2);
  ImagePreprocessOptions o = UnitPreprocess(2, 2);
  PreprocessPixels(px.data(), 8, 4, 1, o, out.data());
  // Resized width 4, crop columns 1..2. With antialias (triangle of half-width 2 input pixels),
  // Exact: x=1 centre 3.0 covers inputs 1..4 (centres 1.5..4.5): weights 1/8,3/8,3/8,1/8 -> 1/8*255
  EXPECT_NEAR(out[0], 0.125f, 1e-6f);
  EXPECT_NEAR(out[1], 0.875f, 1e-6f);
  EXPECT_NEAR(out[2], 0.125f, 1e-6f);  // row 1 identical
  // Without antialias: plain bilinear, x=1 samples at 3.0 -> between inputs 2 and 3 -> 0.
  o.antialias = false;
  PreprocessPixels(px.data(), 8, 4, 1, o, out.data());
  EXPECT_NEAR(out[0], 0.f, 1e-6f);
  EXPECT_NEAR(out[1], 1.f, 1e-6f);
  // Default resize = floor(crop / 0.875): crop 7 -> resize 8 (no-op for an 8x8 image).
  ImagePreprocessOptions d = UnitPreprocess(7, 0);
  std::vector<uint8_t> sq(64);
  for (int i = 0; i < 64; ++i) sq[i] = static_cast<uint8_t>(i * 3);
  std::vector<float> o7(3 * 49);
  PreprocessPixels(sq.data(), 8, 8, 1, d, o7.data());
  EXPECT_NEAR(o7[0], sq[0] / 255.f, 1e-6f);          // crop offset round(0.5) = 0 (half-to-even, torchvision)
  EXPECT_NEAR(o7[48], sq[6 * 8 + 6] / 255.f, 1e-6f);
}

TEST(DataImageFolderTest, JpegDecodesCloseToSource) {
  const std::string root = FreshDir("jpeg");
  std::vector<float> out(3 * 16 * 16);
  LoadImageChw(TestImage("solid200_16x16.jpg"), UnitPreprocess(16, 16), out.data());
  for (float v : out) EXPECT_NEAR(v, 200.f / 255.f, 3.f / 255.f);
}

// Regression (found by tests/fuzz/fuzz_image.cc): stb_image parses PNM header numbers into an int
// without an overflow check. A width above INT_MAX is refused first; a normal PPM still loads.
TEST(DataImageFolderTest, PnmHeaderNumberAboveIntMaxIsRefused) {
  const std::string root = FreshDir("pnm");
  std::vector<float> out(3 * 2 * 2);
  const std::string good = root + "/good.ppm";
  std::ofstream(good, std::ios::binary) << "P6\n# comment 99999999999999\n2 2\n255\n"
                                        << std::string(12, '\x80');
  EXPECT_NO_THROW(LoadImageChw(good, UnitPreprocess(2, 2), out.data()));
  const std::string bad = root + "/bad.ppm";
  std::ofstream(bad, std::ios::binary) << "P6\n99999999999 2\n255\n" << std::string(12, '\x80');
  try {
    LoadImageChw(bad, UnitPreprocess(2, 2), out.data());
    ADD_FAILURE() << "a PPM width above INT_MAX was accepted";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(bad), std::string::npos) << msg;
    EXPECT_NE(msg.find("corrupt PNM"), std::string::npos) << msg;
  }
}

TEST(DataImageFolderTest, DefaultOptionsAreTimm) {
  ImagePreprocessOptions o;
  EXPECT_EQ(o.crop, 224);
  EXPECT_FLOAT_EQ(o.mean[0], 0.485f);
  EXPECT_FLOAT_EQ(o.std[2], 0.225f);
  VitModel m;
  m.embed.image_h = m.embed.image_w = 32;
  m.preprocess.mean[0] = 0.5f;
  const ImagePreprocessOptions mo = PreprocessOptionsFor(m);
  EXPECT_EQ(mo.crop, 32);
  EXPECT_FLOAT_EQ(mo.mean[0], 0.5f);
}

}  // namespace
}  // namespace adalog
