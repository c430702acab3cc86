// The quantized model file keeps every field: Save then Load gives back the VitModel (weights
// dequantized, i.e. quant/'s scalar FakeQuant of the saved FP32 weights) and the QuantPlan field by
// field, bit for bit (tests/util/model_compare.h lists every field of both structs), across model
// variants (tanh GELU, mean pooling, no class token with the position embedding on the patches
// only, distilled) and every quantizer kind (uniform, log2, log-sqrt2, AdaLog with the GELU shift
// folded and not folded, twin uniform, none); and the simulated executor gives the same logits,
// byte for byte, from the loaded model as from the in-memory one. A round-trip fixed point
// (Serialize(Parse(x)) == x) cannot see a field that is neither written nor read; this can, as long
// as every field holds a non-default value in some variant (WithNonDefaultFields).
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "runtime/executor_sim.h"
#include "runtime/model_file.h"
#include "tests/util/exec_random_vit.h"
#include "tests/util/expect_error.h"
#include "tests/util/model_compare.h"
#include "tests/util/sim_hand_plan.h"
#include "tests/util/sim_reference_forward.h"

namespace adalog {
namespace {

using testing_util::kHandPlanChoices;
using testing_util::MakeHandPlan;
using testing_util::MakeRandomVit;
using testing_util::RandomVitSpec;
using testing_util::RowQuant;

struct Variant {
  const char* name;
  bool dist = false, mean_pool = false, no_cls = false, tanh = false;
  int wb = 4, ab = 4;
};

const Variant kVariants[] = {
    {"cls_erf_w4a4", false, false, false, false, 4, 4},
    {"tanh_mean_pool_w3a3", false, true, false, true, 3, 3},
    {"no_cls_patches_only_w4a8", false, false, true, false, 4, 8},
    {"distilled_w8a8", true, false, false, false, 8, 8},
};

// A variant's calibrated-looking model and plan (MakeHandPlan: depth kHandPlanChoices, so every
// quantizer kind appears), with every scalar the file carries moved off its default somewhere.
QuantizedModel WithNonDefaultFields(const Variant& v, uint32_t seed) {
  RandomVitSpec s;
  s.depth = kHandPlanChoices;
  s.dim = 16;
  s.heads = 2;
  s.image = 8;
  s.patch = 4;
  s.classes = 5;
  s.seed = seed;
  s.dist = v.dist;
  s.mean_pool = v.mean_pool;
  s.no_cls = v.no_cls;
  if (v.no_cls) s.pos_mode = PosEmbedMode::kPatchesOnly;
  if (v.tanh) s.gelu = GeluKind::kTanh;
  VitModel m = MakeRandomVit(s);
  m.name = std::string("model ") + v.name;
  m.style = std::string("style-") + std::to_string(seed);
  m.preprocess.resize_shorter = 9 + static_cast<int>(seed % 7);
  for (int c = 0; c < 3; ++c) {
    m.preprocess.mean[c] = 0.25f + 0.125f * c + 0.001f * static_cast<float>(seed);
    m.preprocess.std[c] = 0.5f - 0.0625f * c;
  }
  m.preprocess.interpolation = seed % 2 ? Interpolation::kBicubic : Interpolation::kNearest;
  m.preprocess.channel_order = ChannelOrder::kBgr;
  m.preprocess.known = true;
  m.norm.eps = 1e-5f;
  for (size_t b = 0; b < m.blocks.size(); ++b) {
    m.blocks[b].ln1.eps = 1e-6f * static_cast<float>(b + 2);
    m.blocks[b].ln2.eps = 3e-6f;
    m.blocks[b].attn_scale *= 1.0f + 0.01f * static_cast<float>(b);
    m.blocks[b].shift_size = static_cast<int>(b % 3);  // reserved (Swin); stored all the same
  }
  std::vector<float> images = testing_util::RandomImages(m, 2, seed + 1);
  QuantizedModel qm = MakeHandPlan(m, images, 2, v.wb, v.ab);
  QuantPlan& p = qm.plan;
  // Off the defaults (adalog), and different per seed.
  p.softmax_quantizer = static_cast<SoftmaxQuantizer>(1 + seed % 3);
  p.gelu_quantizer = GeluQuantizer::kTwin;
  p.ln_reparam = (seed % 2) == 0;
  p.fpcs = (seed % 2) == 1;
  p.meta = {{"seed", std::to_string(seed)}, {"variant", v.name}, {"", "empty key"}};
  // Per-tensor weight bits differ from the plan's nominal bits on one tensor.
  const int other_bits = v.wb == 8 ? 5 : 8;
  p.head.weight = RowQuant(qm.model.head.weight, qm.model.head.out, qm.model.head.in, other_bits);
  // And one per-head set: block 1's k re-expressed over the same range at other bits.
  UniformPerHead& k = p.blocks[1].attn.k;
  const int kb = v.ab == 8 ? 6 : 8;
  const float ratio = static_cast<float>((1 << k.bits) - 1) / static_cast<float>((1 << kb) - 1);
  for (size_t h = 0; h < k.scales.size(); ++h) {
    k.scales[h] *= ratio;
    k.zero_points[h] = static_cast<int32_t>(std::lround(k.zero_points[h] / ratio));
  }
  k.bits = kb;
  return qm;
}

std::vector<float> SimLogits(const QuantizedModel& qm, const std::vector<float>& images, int batch) {
  ExecutorOptions eo;
  eo.max_batch = batch;
  eo.num_threads = 1;
  ExecutorSim sim(qm, eo);
  std::vector<float> logits(size_t(batch) * qm.model.num_classes(), -777.f);
  sim.Run(images.data(), batch, logits.data());
  return logits;
}

TEST(ModelFileFields, SaveLoadKeepsEveryFieldOfEveryVariant) {
  uint32_t seed = 3;
  for (const Variant& v : kVariants) {
    SCOPED_TRACE(v.name);
    const QuantizedModel qm = WithNonDefaultFields(v, seed++);
    const std::string path = ::testing::TempDir() + "adalog_model_file_fields_" +
                             std::to_string(getpid()) + "_" + v.name + ".adq";
    SaveQuantizedModel(qm, path);
    const QuantizedModel back = LoadQuantizedModel(path);
    std::remove(path.c_str());
    // The model: the in-memory one with every weight replaced by its scalar fake quant.
    test::ExpectSameVitModel(test::SimReferenceWeights(qm), back.model, v.name);
    test::ExpectSameQuantPlan(qm.plan, back.plan, v.name);
    // Same logits from the loaded model as from the in-memory one, byte for byte.
    const std::vector<float> images = testing_util::RandomImages(qm.model, 3, 99);
    const std::vector<float> a = SimLogits(qm, images, 3), b = SimLogits(back, images, 3);
    ASSERT_EQ(a.size(), b.size());
    EXPECT_EQ(0, std::memcmp(a.data(), b.data(), a.size() * sizeof(float)));
    // Not vacuous: the quantized logits are not the FP32 ones.
    ExecutorOptions eo;
    eo.max_batch = 3;
    ExecutorFp32 fp(qm.model, eo);
    std::vector<float> fp_logits(a.size());
    fp.Run(images.data(), 3, fp_logits.data());
    EXPECT_NE(fp_logits, a);
    // And a loaded file re-serializes to the same bytes.
    EXPECT_EQ(SerializeQuantizedModel(back), SerializeQuantizedModel(qm));
  }
}

// The variants between them hold every activation quantizer kind, and each scalar the file
// carries away from its default, so a field dropped on either side of the file shows above.
TEST(ModelFileFields, VariantsCoverEveryKindAndNonDefaultScalars) {
  std::vector<std::string> kinds;
  bool tanh = false, mean = false, patches_only = false, no_cls = false, dist = false;
  bool shift_nonzero = false, ln_reparam[2] = {false, false}, fpcs[2] = {false, false};
  uint32_t seed = 3;
  for (const Variant& v : kVariants) {
    const QuantizedModel qm = WithNonDefaultFields(v, seed++);
    const VitModel& m = qm.model;
    tanh |= m.blocks[0].gelu == GeluKind::kTanh;
    mean |= m.pooling == Pooling::kMeanPatches;
    patches_only |= m.pos_mode == PosEmbedMode::kPatchesOnly;
    no_cls |= !m.has_cls_token;
    dist |= m.has_dist_token && m.pooling == Pooling::kClsDistAvg;
    ln_reparam[qm.plan.ln_reparam] = true;
    fpcs[qm.plan.fpcs] = true;
    const Preprocess def;
    EXPECT_NE(m.preprocess.resize_shorter, def.resize_shorter);
    for (int c = 0; c < 3; ++c) {
      EXPECT_NE(m.preprocess.mean[c], def.mean[c]);
      EXPECT_NE(m.preprocess.std[c], def.std[c]);
    }
    EXPECT_NE(m.preprocess.interpolation, def.interpolation);
    EXPECT_NE(m.preprocess.channel_order, def.channel_order);
    EXPECT_NE(m.preprocess.known, def.known);
    EXPECT_NE(m.norm.eps, LayerNormParams{}.eps);
    for (const BlockParams& b : m.blocks) shift_nonzero |= b.shift_size != 0;
    auto add = [&](const ActQuant& a) {
      std::string k = a.kind == ActQuant::Kind::kNone      ? "none"
                      : a.kind == ActQuant::Kind::kUniform ? "uniform"
                      : a.kind == ActQuant::Kind::kTwin    ? "twin"
                                                           : LogKindName(a.log.kind);
      if (a.kind == ActQuant::Kind::kLog && a.shift != 0.f) k += a.shift_folded ? "+folded" : "+unfolded";
      if (std::find(kinds.begin(), kinds.end(), k) == kinds.end()) kinds.push_back(k);
    };
    for (const BlockQuant& bq : qm.plan.blocks) {
      for (const ActQuant* a : {&bq.qkv.input, &bq.attn.probs, &bq.proj.input, &bq.fc1.input, &bq.fc2.input}) add(*a);
    }
  }
  EXPECT_TRUE(tanh && mean && patches_only && no_cls && dist && shift_nonzero);
  EXPECT_TRUE(ln_reparam[0] && ln_reparam[1] && fpcs[0] && fpcs[1]);
  std::sort(kinds.begin(), kinds.end());
  const std::vector<std::string> want = {
      std::string(LogKindName(LogKind::kAdaLog)),   std::string(LogKindName(LogKind::kAdaLog)) + "+folded",
      std::string(LogKindName(LogKind::kAdaLog)) + "+unfolded", std::string(LogKindName(LogKind::kLog2)),
      std::string(LogKindName(LogKind::kLog2)) + "+unfolded", std::string(LogKindName(LogKind::kLogSqrt2)),
      std::string(LogKindName(LogKind::kLogSqrt2)) + "+folded", "none", "twin", "uniform"};
  std::vector<std::string> sorted_want = want;
  std::sort(sorted_want.begin(), sorted_want.end());
  EXPECT_EQ(kinds, sorted_want);
}

// Fields the format has no room for are refused at save rather than silently replaced by their
// defaults at load: symmetric uniform parameters (weights, per-head q/k/v, activations) and a
// weight quantizer on another axis than the output rows.
TEST(ModelFileFields, ParametersTheFormatCannotHoldAreRefusedAtSave) {
  const QuantizedModel qm = WithNonDefaultFields(kVariants[0], 5);
  QuantizedModel q = qm;
  q.plan.blocks[0].fc1.weight.mode = UniformMode::kSymmetric;
  std::fill(q.plan.blocks[0].fc1.weight.zero_points.begin(), q.plan.blocks[0].fc1.weight.zero_points.end(), 0);
  test::ExpectErrorContaining([&] { SerializeQuantizedModel(q); }, "symmetric");
  q = qm;
  q.plan.blocks[0].qkv.weight.axis = 1;
  test::ExpectErrorContaining([&] { SerializeQuantizedModel(q); }, "axis");
  q = qm;
  q.plan.blocks[2].attn.v.mode = UniformMode::kSymmetric;
  test::ExpectErrorContaining([&] { SerializeQuantizedModel(q); }, "symmetric");
  q = qm;
  q.plan.blocks[0].proj.input.uniform.params.mode = UniformMode::kSymmetric;
  test::ExpectErrorContaining([&] { SerializeQuantizedModel(q); }, "symmetric");
}

}  // namespace
}  // namespace adalog
