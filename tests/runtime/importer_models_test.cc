// Importer tests on the exported tiny models (models/tiny/MANIFEST.json): recognized structure,
// folding, parameters against the ONNX initializers, and end-to-end logits against PyTorch through
// a scalar reference forward.
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "quant/error.h"
#include "runtime/graph.h"
#include "runtime/onnx_importer.h"
#include "runtime/data/npy.h"
#include "tests/util/vit_reference_forward.h"

namespace adalog {
namespace {

const std::string kTinyDir = std::string(ADALOG_SOURCE_DIR) + "/models/tiny/";

// One manifest entry: every scalar field as text.
using Entry = std::map<std::string, std::string>;

// Minimal reader for MANIFEST.json: {"models": [ {flat scalars...}, ... ], ...}.
class ManifestReader {
 public:
  explicit ManifestReader(std::string s) : s_(std::move(s)) {}
  std::vector<Entry> Models() {
    std::vector<Entry> out;
    const size_t k = s_.find("\"models\"");
    if (k == std::string::npos) return out;
    pos_ = s_.find('[', k) + 1;
    while (true) {
      Skip();
      if (pos_ >= s_.size() || s_[pos_] == ']') break;
      if (s_[pos_] == ',') {
        ++pos_;
        continue;
      }
      if (s_[pos_] != '{') break;
      ++pos_;
      Entry e;
      while (true) {
        Skip();
        if (s_[pos_] == '}') {
          ++pos_;
          break;
        }
        if (s_[pos_] == ',') {
          ++pos_;
          continue;
        }
        const std::string key = String();
        Skip();
        ++pos_;  // ':'
        Skip();
        e[key] = Value();
      }
      out.push_back(e);
    }
    return out;
  }

 private:
  void Skip() {
    while (pos_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[pos_]))) ++pos_;
  }
  std::string String() {
    std::string r;
    ++pos_;  // opening quote
    while (pos_ < s_.size() && s_[pos_] != '"') {
      if (s_[pos_] == '\\') ++pos_;
      r += s_[pos_++];
    }
    ++pos_;
    return r;
  }
  std::string Value() {
    if (s_[pos_] == '"') return String();
    if (s_[pos_] == '[' || s_[pos_] == '{') {  // skip nested values
      int depth = 0;
      const size_t b = pos_;
      do {
        if (s_[pos_] == '[' || s_[pos_] == '{') ++depth;
        if (s_[pos_] == ']' || s_[pos_] == '}') --depth;
        ++pos_;
      } while (depth > 0 && pos_ < s_.size());
      return s_.substr(b, pos_ - b);
    }
    const size_t b = pos_;
    while (pos_ < s_.size() && s_[pos_] != ',' && s_[pos_] != '}' && !std::isspace(s_[pos_])) {
      ++pos_;
    }
    return s_.substr(b, pos_ - b);
  }
  std::string s_;
  size_t pos_ = 0;
};

std::vector<Entry> LoadManifest() {
  std::ifstream in(kTinyDir + "MANIFEST.json");
  if (!in) return {};
  std::stringstream ss;
  ss << in.rdbuf();
  return ManifestReader(ss.str()).Models();
}

int Int(const Entry& e, const std::string& k) {
  auto it = e.find(k);
  if (it == e.end()) {
    ADD_FAILURE() << "manifest entry lacks '" << k << "'";
    return -1;
  }
  return std::stoi(it->second);
}

std::string Str(const Entry& e, const std::string& k) {
  auto it = e.find(k);
  return it == e.end() ? "" : it->second;
}

TEST(ImporterManifest, ListsEnoughModels) {
  const auto models = LoadManifest();
  ASSERT_GE(models.size(), 6u) << "models/tiny/MANIFEST.json missing or nearly empty";
  std::set<std::string> styles, opsets;
  for (const auto& e : models) {
    styles.insert(Str(e, "style"));
    opsets.insert(Str(e, "opset"));
  }
  EXPECT_TRUE(styles.count("timm") && styles.count("torchvision") && styles.count("deit-distilled"));
  // Every opset the importer accepts (11..18) has at least one export.
  for (int op = 11; op <= 18; ++op) EXPECT_TRUE(opsets.count(std::to_string(op))) << "opset " << op;
}

class ImporterTinyModel : public ::testing::TestWithParam<Entry> {};

TEST_P(ImporterTinyModel, StructureMatchesManifest) {
  const Entry& e = GetParam();
  ImportReport rep;
  const VitModel m = ImportOnnxVit(kTinyDir + Str(e, "onnx"), &rep);
  EXPECT_EQ(m.dim, Int(e, "dim"));
  EXPECT_EQ(static_cast<int>(m.blocks.size()), Int(e, "depth"));
  EXPECT_EQ(m.embed.in_channels, Int(e, "in_channels"));
  EXPECT_EQ(m.embed.image_h, Int(e, "image_size"));
  EXPECT_EQ(m.embed.image_w, Int(e, "image_size"));
  EXPECT_EQ(m.embed.patch, Int(e, "patch"));
  EXPECT_EQ(m.num_prefix_tokens(), Int(e, "prefix_tokens"));
  EXPECT_EQ(m.embed.num_patches(), Int(e, "patch_tokens"));
  EXPECT_EQ(m.num_tokens(), Int(e, "tokens"));
  EXPECT_EQ(m.num_classes(), Int(e, "classes"));
  EXPECT_EQ(m.head_dim(), Int(e, "head_dim"));
  for (const auto& b : m.blocks) {
    EXPECT_EQ(b.heads, Int(e, "heads"));
    EXPECT_EQ(b.fc1.out, Int(e, "mlp_dim"));
    EXPECT_EQ(b.gelu, Str(e, "gelu") == "tanh" ? GeluKind::kTanh : GeluKind::kErf);
    EXPECT_NEAR(b.attn_scale, 1.0 / std::sqrt(static_cast<double>(Int(e, "head_dim"))), 1e-6);
    EXPECT_NEAR(b.ln1.eps, std::stod(Str(e, "layernorm_eps")), 1e-9);
  }
  EXPECT_NEAR(m.norm.eps, std::stod(Str(e, "layernorm_eps")), 1e-9);
  const std::string pooling = Str(e, "pooling");
  if (pooling == "cls") {
    EXPECT_EQ(m.pooling, Pooling::kClsToken);
  } else if (pooling == "mean") {
    EXPECT_EQ(m.pooling, Pooling::kMeanPatches);
  } else {
    EXPECT_EQ(m.pooling, Pooling::kClsDistAvg);
    EXPECT_TRUE(m.has_dist_token);
  }
  EXPECT_EQ(m.has_dist_token, Str(e, "style") == "deit-distilled");
  // Report.
  EXPECT_EQ(rep.opset, Int(e, "opset"));
  EXPECT_EQ(rep.dynamic_batch, Str(e, "dynamic_batch") == "true");
  EXPECT_EQ(rep.input_name, "input");
  EXPECT_EQ(rep.producer.rfind("pytorch", 0), 0u) << rep.producer;
  EXPECT_EQ(rep.ir_version, Int(e, "ir_version"));  // 6 for torch's opset-11 export, else 7 or 8
  // Notes: embed, tokens, one per block, final norm, head.
  ASSERT_EQ(rep.notes.size(), m.blocks.size() + 4);
  EXPECT_NE(rep.notes[0].find("patch embed: Conv"), std::string::npos) << rep.notes[0];
  EXPECT_NE(rep.notes.back().find(std::to_string(m.num_classes()) + " classes"), std::string::npos);
  // Folding: shape arithmetic is gone; what is left is about 30-40 compute nodes per block.
  EXPECT_LT(rep.nodes_after_folding, rep.nodes_total);
  const int per_block_max = Str(e, "layernorm_export") == "decomposed" ? 56 : 40;
  EXPECT_LE(rep.nodes_after_folding, 12 + per_block_max * Int(e, "depth"))
      << "nodes_total " << rep.nodes_total;
  EXPECT_GE(rep.nodes_after_folding, 20 * Int(e, "depth"));
  EXPECT_GT(CountParameters(m), 0);
  EXPECT_GT(CountMacsPerImage(m), 0);
}

// Imports `onnx`, runs the scalar reference forward on `input_npy` and compares with `output_npy`
// (PyTorch logits): max |diff| <= 1e-4 * max |logit|, identical top-1 for every image.
void ExpectMatchesPyTorch(const std::string& onnx, const std::string& input_npy,
                          const std::string& output_npy) {
  const VitModel m = ImportOnnxVit(onnx);
  const auto in = ReadNpyFloat32(input_npy);
  const auto want = ReadNpyFloat32(output_npy);
  ASSERT_EQ(in.shape.size(), 4u);
  const int batch = static_cast<int>(in.shape[0]);
  ASSERT_EQ(want.shape, (std::vector<int64_t>{batch, m.num_classes()}));
  const std::vector<float> got = test::VitReferenceForward(m, in.data, batch);
  ASSERT_EQ(got.size(), want.data.size());
  double absmax = 0, diff = 0;
  for (size_t k = 0; k < got.size(); ++k) {
    absmax = std::max(absmax, std::fabs(double(want.data[k])));
    diff = std::max(diff, std::fabs(double(got[k]) - want.data[k]));
  }
  ASSERT_GT(absmax, 1e-2) << "reference logits are (nearly) all zero: the test would be vacuous";
  EXPECT_LE(diff, 1e-4 * absmax) << onnx << ": max |diff| " << diff << " absmax " << absmax;
  const int nc = m.num_classes();
  for (int b = 0; b < batch; ++b) {
    const auto g0 = got.begin() + b * nc, w0 = want.data.begin() + b * nc;
    EXPECT_EQ(std::max_element(g0, g0 + nc) - g0, std::max_element(w0, w0 + nc) - w0)
        << onnx << ": top-1 differs for image " << b;
  }
}

TEST_P(ImporterTinyModel, MatchesPyTorchThroughReferenceForward) {
  const Entry& e = GetParam();
  ExpectMatchesPyTorch(kTinyDir + Str(e, "onnx"), kTinyDir + Str(e, "input"),
                       kTinyDir + Str(e, "output"));
}

std::string ParamName(const ::testing::TestParamInfo<Entry>& info) {
  std::string n = Str(info.param, "name");
  for (auto& c : n) {
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  }
  return n.empty() ? "model" + std::to_string(info.index) : n;
}

INSTANTIATE_TEST_SUITE_P(Tiny, ImporterTinyModel, ::testing::ValuesIn(LoadManifest()), ParamName);

// Dynamic batch must fold down to exactly the compute graph of a static export.
TEST(ImporterFolding, DynamicBatchFoldsLikeStatic) {
  ImportReport s, d;
  ImportOnnxVit(kTinyDir + "tiny_timm_op17_static.onnx", &s);
  ImportOnnxVit(kTinyDir + "tiny_timm_op17_dyn.onnx", &d);
  EXPECT_FALSE(s.dynamic_batch);
  EXPECT_TRUE(d.dynamic_batch);
  EXPECT_GT(d.nodes_total, s.nodes_total);
  EXPECT_EQ(d.nodes_after_folding, s.nodes_after_folding);
}

// Opset 18 moved ReduceMean's axes from an attribute to an input. The opset-18 exports have their
// LayerNorms decomposed (ReduceMean(x, axes) ... Div ... Mul ... Add), so the importer only gets
// them right if the LayerNorm matcher reads axes from the constant input; the mean-pooling export
// also pools with a ReduceMean(axes input). Each must become exactly one LayerNorm per norm site
// (ln1, ln2 per block, the final norm) and match PyTorch.
TEST(ImporterOpset18, ReduceMeanAxesInputDecomposedLayerNorm) {
  for (const char* name : {"tiny_timm_op18_dyn", "tiny_timm_mean_op18_static"}) {
    SCOPED_TRACE(name);
    ImportReport rep;
    const VitModel m = ImportOnnxVit(kTinyDir + name + ".onnx", &rep);
    EXPECT_EQ(rep.opset, 18);
    ASSERT_EQ(m.blocks.size(), 2u);
    // The matcher found the decomposed LayerNorms: eps comes from the Add before Sqrt, gamma and
    // beta from the trailing Mul/Add, and none of them is the identity.
    for (const auto& b : m.blocks) {
      EXPECT_NEAR(b.ln1.eps, 1e-6, 1e-9);
      EXPECT_NEAR(b.ln2.eps, 1e-6, 1e-9);
      ASSERT_EQ(static_cast<int>(b.ln1.gamma.size()), m.dim);
      EXPECT_NE(b.ln1.gamma, std::vector<float>(m.dim, 1.0f));
    }
    EXPECT_NEAR(m.norm.eps, 1e-6, 1e-9);
    ExpectMatchesPyTorch(kTinyDir + name + ".onnx", kTinyDir + name + ".input.npy",
                         kTinyDir + name + ".output.npy");
  }
  const VitModel mean = ImportOnnxVit(kTinyDir + "tiny_timm_mean_op18_static.onnx");
  EXPECT_EQ(mean.pooling, Pooling::kMeanPatches);
}

// Hand-written ViT variants whose graphs differ from timm/torchvision (tests/fuzz/make_corpus.py).
const std::string kFuzzDir = std::string(ADALOG_SOURCE_DIR) + "/tests/fuzz/";

// One variant of tests/fuzz/corpus/: its import (with the report), and the check of its logits
// against PyTorch's, stored in tests/fuzz/expected/.
struct FuzzVariant {
  explicit FuzzVariant(const std::string& n)
      : name(n), onnx(kFuzzDir + "corpus/" + n + ".onnx"), model(ImportOnnxVit(onnx, &report)) {}
  void ExpectMatchesPyTorchLogits() const {
    ExpectMatchesPyTorch(onnx, kFuzzDir + "expected/" + name + ".input.npy",
                         kFuzzDir + "expected/" + name + ".output.npy");
  }
  const std::string name, onnx;
  ImportReport report;
  const VitModel model;
};

TEST(ImporterVariants, SeparateQkvScaleSplitOverQAndKPatchOnlyPosEmbed) {
  const FuzzVariant v("variant_separate_qkv_op17");
  const VitModel& m = v.model;
  const ImportReport& rep = v.report;
  EXPECT_EQ(m.pos_mode, PosEmbedMode::kPatchesOnly);
  EXPECT_EQ(m.pos_embed.size(), 4u * 8u);
  EXPECT_EQ(m.pooling, Pooling::kClsToken);
  ASSERT_EQ(m.blocks.size(), 2u);
  EXPECT_EQ(m.blocks[0].heads, 2);
  EXPECT_NEAR(m.blocks[0].attn_scale, 0.5, 1e-6);  // 4^-0.25 on q times 4^-0.25 on k
  EXPECT_EQ(m.blocks[0].gelu, GeluKind::kErf);
  EXPECT_NEAR(m.norm.eps, 1e-5, 1e-9);
  EXPECT_NE(rep.notes[2].find("separate q/k/v"), std::string::npos) << rep.notes[2];
  v.ExpectMatchesPyTorchLogits();
}

TEST(ImporterVariants, ChunkedQkvTanhGeluMeanPooling) {
  const FuzzVariant v("variant_chunk_qkv_op13_dyn");
  const VitModel& m = v.model;
  const ImportReport& rep = v.report;
  EXPECT_TRUE(rep.dynamic_batch);
  EXPECT_FALSE(m.has_cls_token);
  EXPECT_EQ(m.pooling, Pooling::kMeanPatches);
  ASSERT_EQ(m.blocks.size(), 2u);
  EXPECT_EQ(m.blocks[1].gelu, GeluKind::kTanh);
  EXPECT_NEAR(m.blocks[1].attn_scale, 0.5, 1e-6);
  v.ExpectMatchesPyTorchLogits();
}

TEST(ImporterVariants, ClsTokenWithMeanOverPatchTokens) {
  const FuzzVariant v("variant_cls_avgpool_op15_dyn");
  const VitModel& m = v.model;
  const ImportReport& rep = v.report;
  EXPECT_TRUE(m.has_cls_token);
  EXPECT_EQ(m.pooling, Pooling::kMeanPatches);  // x[:, 1:].mean(1): Slice + ReduceMean
  EXPECT_EQ(rep.opset, 15);
  v.ExpectMatchesPyTorchLogits();
}

TEST(ImporterVariants, ClassifierOnSlicedAndFlattenedClsToken) {
  const FuzzVariant v("variant_slice_token_op17_dyn");
  const VitModel& m = v.model;
  EXPECT_EQ(m.pooling, Pooling::kClsToken);  // x[:, :1].flatten(1): Slice + Flatten
  v.ExpectMatchesPyTorchLogits();
}

}  // namespace
}  // namespace adalog
