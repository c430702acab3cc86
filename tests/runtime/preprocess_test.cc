// Preprocessing descriptions (runtime/preprocess.h): the named presets' exact values, comparison,
// the ONNX metadata keys (parsing and refusal of malformed or misspelled keys), and the importer
// reading them from a real export's metadata_props.
#include "runtime/preprocess.h"

#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "quant/error.h"
#include "runtime/onnx_importer.h"
#include "tests/util/expect_error.h"
#include "tests/util/onnx_proto.h"

namespace adalog {
namespace {

using Props = std::vector<std::pair<std::string, std::string>>;

void ExpectImagenetMeanStd(const Preprocess& p, const std::string& what) {
  const float mean[3] = {0.485f, 0.456f, 0.406f}, std[3] = {0.229f, 0.224f, 0.225f};
  for (int c = 0; c < 3; ++c) {
    EXPECT_EQ(p.mean[c], mean[c]) << what;
    EXPECT_EQ(p.std[c], std[c]) << what;
  }
}

TEST(Preprocess, PresetsSetEveryField) {
  // torchvision's ImageClassification eval: Resize(256) + CenterCrop(224), bilinear.
  const Preprocess tv = PreprocessPreset("torchvision", 224);
  EXPECT_EQ(tv.resize_shorter, 256);
  EXPECT_EQ(tv.interpolation, Interpolation::kBilinear);
  EXPECT_EQ(tv.channel_order, ChannelOrder::kRgb);
  EXPECT_TRUE(tv.known);
  ExpectImagenetMeanStd(tv, "torchvision");
  // timm's eval defaults: crop_pct 0.875 (256 for 224), bicubic.
  const Preprocess timm = PreprocessPreset("timm", 224);
  EXPECT_EQ(timm.resize_shorter, 256);
  EXPECT_EQ(timm.interpolation, Interpolation::kBicubic);
  ExpectImagenetMeanStd(timm, "timm");
  EXPECT_EQ(PreprocessPreset("timm", 384).resize_shorter, 438);  // floor(384 / 0.875)
  EXPECT_TRUE(SamePreprocess(PreprocessPreset("imagenet", 32), PreprocessPreset("torchvision", 32), 32));
  EXPECT_FALSE(SamePreprocess(PreprocessPreset("timm", 32), PreprocessPreset("torchvision", 32), 32));
  // none: pixels / 255, no rescale beyond the crop.
  const Preprocess none = PreprocessPreset("none", 16);
  EXPECT_EQ(none.resize_shorter, 16);
  for (int c = 0; c < 3; ++c) {
    EXPECT_EQ(none.mean[c], 0.f);
    EXPECT_EQ(none.std[c], 1.f);
  }
  test::ExpectErrorContaining([] { PreprocessPreset("pytorch", 224); }, "not one of imagenet, torchvision, timm, none");
  // The default stands in for unknown: imagenet's values, known = false.
  const Preprocess def;
  EXPECT_FALSE(def.known);
  EXPECT_TRUE(SamePreprocess(def, PreprocessPreset("imagenet", 224), 224));
  EXPECT_EQ(EffectiveResize(def, 224), 256);
  EXPECT_EQ(EffectiveResize(def, 16), 18);
}

TEST(Preprocess, DifferencesNameEachField) {
  Preprocess a = PreprocessPreset("imagenet", 16), b = a;
  EXPECT_TRUE(PreprocessDifferences(a, b, 16).empty());
  b.known = false;  // not a difference in how images are processed
  EXPECT_TRUE(PreprocessDifferences(a, b, 16).empty());
  b.mean[1] = 0.3f;
  b.interpolation = Interpolation::kNearest;
  const std::vector<std::string> d = PreprocessDifferences(a, b, 16);
  ASSERT_EQ(d.size(), 2u);
  EXPECT_EQ(d[0], "interpolation bilinear (stored nearest)");
  EXPECT_EQ(d[1], "mean 0.485,0.456,0.406 (stored 0.485,0.3,0.406)");
  // resize 0 and its effective value are the same preprocessing.
  Preprocess z = a;
  z.resize_shorter = 0;
  EXPECT_TRUE(SamePreprocess(z, a, 16));
  EXPECT_EQ(DescribePreprocess(z, 16), "resize 18, crop 16, bilinear, rgb, mean 0.485,0.456,0.406, std 0.229,0.224,0.225");
}

TEST(Preprocess, MetadataKeys) {
  Preprocess p;
  p.resize_shorter = 77;  // sentinel: untouched without keys
  EXPECT_FALSE(ReadPreprocessMetadata({{"author", "x"}}, "m.onnx", &p));
  EXPECT_EQ(p.resize_shorter, 77);
  EXPECT_FALSE(p.known);
  ASSERT_TRUE(ReadPreprocessMetadata({{"adalog.preprocess.mean", "0.3,0.3,0.3"},
                                      {"adalog.preprocess.std", "0.4, 0.5,0.6"},
                                      {"other", "ignored"},
                                      {"adalog.preprocess.resize", "18"},
                                      {"adalog.preprocess.interpolation", "bicubic"},
                                      {"adalog.preprocess.channel_order", "bgr"}},
                                     "m.onnx", &p));
  EXPECT_TRUE(p.known);
  EXPECT_EQ(p.mean[2], 0.3f);
  EXPECT_EQ(p.std[1], 0.5f);
  EXPECT_EQ(p.std[2], 0.6f);
  EXPECT_EQ(p.resize_shorter, 18);
  EXPECT_EQ(p.interpolation, Interpolation::kBicubic);
  EXPECT_EQ(p.channel_order, ChannelOrder::kBgr);
  // mean and std only: the optional keys take their documented defaults.
  Preprocess q;
  ASSERT_TRUE(ReadPreprocessMetadata({{"adalog.preprocess.mean", "0,0,0"}, {"adalog.preprocess.std", "1,1,1"}}, "m", &q));
  EXPECT_EQ(q.resize_shorter, 0);
  EXPECT_EQ(q.interpolation, Interpolation::kBilinear);
  EXPECT_EQ(q.channel_order, ChannelOrder::kRgb);
  const std::pair<Props, std::string> bad[] = {
      {{{"adalog.preprocess.mean", "0.3,0.3,0.3"}}, "without both"},
      {{{"adalog.preprocess.mean", "0.3,0.3"}, {"adalog.preprocess.std", "1,1,1"}}, "three comma-separated numbers"},
      {{{"adalog.preprocess.mean", "0.3,0.3,x"}, {"adalog.preprocess.std", "1,1,1"}}, "three comma-separated numbers"},
      {{{"adalog.preprocess.mean", "0,0,0"}, {"adalog.preprocess.std", "1,0,1"}}, "every std must be > 0"},
      {{{"adalog.preprocess.mean", "0,0,0"}, {"adalog.preprocess.std", "1,1,1"}, {"adalog.preprocess.resize", "1.5"}},
       "expected an integer"},
      {{{"adalog.preprocess.mean", "0,0,0"}, {"adalog.preprocess.std", "1,1,1"}, {"adalog.preprocess.interpolation", "lanczos"}},
       "'lanczos' is not one of bilinear, bicubic, nearest"},
      {{{"adalog.preprocess.mean", "0,0,0"}, {"adalog.preprocess.std", "1,1,1"}, {"adalog.preprocess.stdev", "1,1,1"}},
       "unknown metadata key 'adalog.preprocess.stdev'"},
  };
  for (const auto& [props, msg] : bad) {
    Preprocess r;
    test::ExpectErrorContaining([&] { ReadPreprocessMetadata(props, "m.onnx", &r); }, msg);
  }
}

// A real export (3x32x32) with metadata_props added: the importer declares it known; without
// keys it is the default and unknown; a malformed key fails the import, naming the key.
TEST(Preprocess, ImporterReadsOnnxMetadata) {
  const std::string bytes = test::ReadFileBytes(test::kTinyDir + "tiny_timm_op17_dyn.onnx");
  onnx::ModelProto mp;
  ASSERT_TRUE(mp.ParseFromString(bytes));
  const VitModel plain = ImportOnnxVitFromBytes(bytes, nullptr, "plain.onnx");
  EXPECT_FALSE(plain.preprocess.known);
  EXPECT_TRUE(SamePreprocess(plain.preprocess, Preprocess{}, 32));
  auto with = [&](const Props& props) {
    onnx::ModelProto m = mp;
    for (const auto& [k, v] : props) {
      auto* e = m.add_metadata_props();
      e->set_key(k);
      e->set_value(v);
    }
    std::string out;
    EXPECT_TRUE(m.SerializeToString(&out));
    return out;
  };
  const VitModel declared = ImportOnnxVitFromBytes(
      with({{"adalog.preprocess.mean", "0.5,0.5,0.5"}, {"adalog.preprocess.std", "0.25,0.25,0.25"},
            {"adalog.preprocess.resize", "36"}, {"adalog.preprocess.interpolation", "nearest"}}),
      nullptr, "declared.onnx");
  EXPECT_TRUE(declared.preprocess.known);
  EXPECT_EQ(declared.preprocess.mean[0], 0.5f);
  EXPECT_EQ(declared.preprocess.std[2], 0.25f);
  EXPECT_EQ(declared.preprocess.resize_shorter, 36);
  EXPECT_EQ(declared.preprocess.interpolation, Interpolation::kNearest);
  test::ExpectErrorContaining(
      [&] { ImportOnnxVitFromBytes(with({{"adalog.preprocess.mean", "0.5,0.5"}}), nullptr, "bad.onnx"); },
      "bad.onnx: metadata 'adalog.preprocess.mean' = '0.5,0.5'");
  test::ExpectErrorContaining(
      [&] {
        ImportOnnxVitFromBytes(with({{"adalog.preprocess.mean", "0,0,0"}, {"adalog.preprocess.std", "1,1,1"},
                                     {"adalog.preprocess.resize", "20"}}),
                               nullptr, "small.onnx");
      },
      "smaller than the model's input size 32");
}

}  // namespace
}  // namespace adalog
