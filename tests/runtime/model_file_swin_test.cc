// The quantized model file stores Swin (format version 3): a hand-planned tiny Swin export saved and
// parsed back is the same model (weights fake-quantized) and plan field by field
// (tests/util/model_compare.h), and gives the simulated executor's logits byte for byte; truncated
// files and corrupted Swin fields (resealed with a valid length and checksum, so the field
// validators are what refuses them) fail with an adalog::Error naming the field.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <functional>
#include <string>
#include <vector>

#include "quant/error.h"
#include "runtime/data/npy.h"
#include "runtime/executor_fp32.h"
#include "runtime/executor_sim.h"
#include "runtime/model_file.h"
#include "runtime/onnx_importer.h"
#include "runtime/swin_model.h"
#include "tests/util/exec_random_vit.h"
#include "tests/util/expect_error.h"
#include "tests/util/model_compare.h"
#include "tests/util/sim_hand_plan.h"
#include "tests/util/sim_reference_forward.h"
#include "tests/util/tiny_swin.h"

namespace adalog {
namespace {

using testing_util::MakeHandPlan;

using testing_util::kSwinDir;

struct Export {
  VitModel m;
  std::vector<float> x;  // the stored input [batch][C][H][W]
  int batch = 0;
};

Export Load(const std::string& name) {
  Export e;
  e.m = ImportOnnxVit(kSwinDir + name + ".onnx");
  const NpyFloatArray x = ReadNpyFloat32(kSwinDir + name + ".input.npy");
  e.x = x.data;
  e.batch = static_cast<int>(x.shape[0]);
  return e;
}

// A seeded random micro Swin small enough for a fuzz seed (under libFuzzer's 16 KB input bound,
// scripts/fuzz.sh): 10x10 image, patch 2 -> 5x5 grid (padded to 6x6 by window 2), widths 8 and
// 16, two blocks per stage, the second shifted, 3 classes.
Export MicroSwin() {
  std::mt19937 rng(11);
  using testing_util::RandomLinear;
  using testing_util::RandomNorm;
  Export e;
  VitModel& m = e.m;
  m.name = "micro_swin";
  m.style = "test";
  m.dim = 8;
  m.embed.in_channels = 3;
  m.embed.image_h = m.embed.image_w = 10;
  m.embed.patch = 2;
  m.embed.dim = 8;
  testing_util::FillUniform(&m.embed.weight, 8 * 3 * 2 * 2, 0.5f, &rng);
  testing_util::FillUniform(&m.embed.bias, 8, 0.1f, &rng);
  m.has_cls_token = false;
  m.pooling = Pooling::kMeanPatches;
  m.swin.embed_norm = RandomNorm(8, &rng);
  const int dims[2] = {8, 16}, grids[2] = {5, 3};
  for (int s = 0; s < 2; ++s) {
    SwinStage st;
    st.depth = 2;
    st.dim = dims[s];
    st.grid_h = st.grid_w = grids[s];
    st.has_merge = s == 0;
    if (st.has_merge) {
      st.merge.norm = RandomNorm(4 * dims[s], &rng);
      st.merge.reduction = RandomLinear(4 * dims[s], dims[s + 1], &rng);
      std::fill(st.merge.reduction.bias.begin(), st.merge.reduction.bias.end(), 0.f);
    }
    m.swin.stages.push_back(st);
    const int d = dims[s], w = 2, hp = SwinPadded(grids[s], w);
    for (int k = 0; k < 2; ++k) {
      BlockParams b;
      b.ln1 = RandomNorm(d, &rng);
      b.qkv = RandomLinear(d, 3 * d, &rng);
      b.heads = 2;
      b.attn_scale = 1.f / std::sqrt(static_cast<float>(d / 2));
      b.proj = RandomLinear(d, d, &rng);
      b.ln2 = RandomNorm(d, &rng);
      b.fc1 = RandomLinear(d, 2 * d, &rng);
      b.fc2 = RandomLinear(2 * d, d, &rng);
      b.window_size = w;
      b.shift_size = k == 1 ? 1 : 0;
      testing_util::FillUniform(&b.rel_bias, static_cast<size_t>(b.heads) * 16, 1.f, &rng);
      if (b.shift_size > 0) b.attn_mask = SwinShiftMask(hp, hp, w, b.shift_size);
      m.blocks.push_back(std::move(b));
    }
  }
  m.norm = RandomNorm(16, &rng);
  m.head = RandomLinear(16, 3, &rng);
  ValidateVitModel(m);
  e.batch = 2;
  e.x = testing_util::RandomImages(m, e.batch, 12);
  return e;
}

std::vector<float> SimLogits(const QuantizedModel& qm, const Export& e) {
  ExecutorOptions eo;
  eo.max_batch = e.batch;
  eo.num_threads = 1;
  ExecutorSim sim(qm, eo);
  std::vector<float> y(static_cast<size_t>(e.batch) * qm.model.num_classes(), -777.f);  // sentinel
  sim.Run(e.x.data(), e.batch, y.data());
  return y;
}

uint32_t U32At(const std::string& b, size_t at) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= static_cast<uint32_t>(static_cast<uint8_t>(b[at + i])) << (8 * i);
  return v;
}
void PutU32(std::string* b, size_t at, uint32_t v) {
  for (int i = 0; i < 4; ++i) (*b)[at + i] = static_cast<char>(v >> (8 * i));
}

// Rewrites the header's payload length and the trailing checksum for `body` (the file without
// its checksum), as a writer would have: what the parser then refuses, its field checks refuse.
std::string Reseal(std::string body) {
  const uint64_t payload = body.size() - 24;
  for (int i = 0; i < 8; ++i) body[16 + i] = static_cast<char>(payload >> (8 * i));
  const uint32_t version = U32At(body, 8);
  const uint64_t sum = ModelFileChecksum(body.data(), body.size(), version);
  for (int i = 0; i < 8; ++i) body.push_back(static_cast<char>(sum >> (8 * i)));
  return body;
}

// Offset of the body (16 bytes past the tag) of the nth (from 0) section with `tag`.
size_t SectionBody(const std::string& b, const char* tag, int nth = 0) {
  size_t at = 24;
  while (at + 16 <= b.size()) {
    uint64_t len = 0;
    for (int i = 0; i < 8; ++i) len |= static_cast<uint64_t>(static_cast<uint8_t>(b[at + 8 + i])) << (8 * i);
    if (b.compare(at, 4, tag, 4) == 0 && nth-- == 0) return at + 16;
    at += 16 + static_cast<size_t>(len);
  }
  ADD_FAILURE() << "no section " << tag;
  return 0;
}

// The SWIN section's layout (model_file.cc): embed norm (i32 dim, f32 eps, u64 n + gamma, u64 n +
// beta), i32 stage count, then per stage i32 depth, dim, grid_h, grid_w and u8 has_merge.
struct SwinOffsets {
  size_t count = 0;
  size_t stage(int s) const { return count + 4 + 17 * static_cast<size_t>(s); }
  size_t merges_begin(int stages) const { return stage(stages); }
};
SwinOffsets Offsets(const std::string& b, const VitModel& m) {
  SwinOffsets o;
  const size_t dim = static_cast<size_t>(m.dim);
  o.count = SectionBody(b, "SWIN") + 4 + 4 + 8 + 4 * dim + 8 + 4 * dim;
  return o;
}

TEST(ModelFileSwin, SaveLoadKeepsEveryFieldAndTheSimulatedLogits) {
  // A random micro Swin (the fuzz seed), three stages (timm), a torchvision export with a padded shifted grid, and one with the first
  // merge left FP32 (an empty plan entry: the format's unquantized-reduction form).
  struct Case {
    const char* name;
    bool fp32_first_merge;
  };
  for (const Case c : {Case{"micro", false}, Case{"tiny_swin_timm3_op17_dyn", false},
                       Case{"tiny_swin_tv_op17_static_pad", false}, Case{"tiny_swin_timm_op13_dyn_pad", true}}) {
    SCOPED_TRACE(c.name);
    const Export e = std::string(c.name) == "micro" ? MicroSwin() : Load(c.name);
    ASSERT_TRUE(e.m.is_swin());
    QuantizedModel qm = MakeHandPlan(e.m, e.x, e.batch, 4, 4);
    ASSERT_FALSE(qm.plan.merges.empty());
    if (c.fp32_first_merge) qm.plan.merges[0].weight = UniformPerChannel();
    qm.plan.meta = {{"case", c.name}};
    bool shifted = false;
    for (const BlockParams& b : qm.model.blocks) shifted |= !b.attn_mask.empty();
    EXPECT_TRUE(shifted) << "the case should carry an attention mask";

    const std::string bytes = SerializeQuantizedModel(qm);
    EXPECT_EQ(U32At(bytes, 8), kSwinModelFileVersion);
    uint32_t version = 0;
    const QuantizedModel back = ParseQuantizedModel(bytes, c.name, &version);
    EXPECT_EQ(version, kSwinModelFileVersion);
    test::ExpectSameVitModel(test::SimReferenceWeights(qm), back.model, c.name);
    test::ExpectSameQuantPlan(qm.plan, back.plan, c.name);
    EXPECT_EQ(SerializeQuantizedModel(back), bytes);
    // How the fuzz seed tests/fuzz/corpus_model_file/swin_micro_w4a4.adalog is written (the micro
    // case only: the exports' files are 51-108 KB, over the fuzzer's 16 KB input bound):
    // ADALOG_SWIN_SEED_DIR=tests/fuzz/corpus_model_file build/tests/adalog_runtime_tests
    // --gtest_filter='ModelFileSwin.Save*'.
    const char* dir = std::getenv("ADALOG_SWIN_SEED_DIR");
    if (dir != nullptr && std::string(c.name) == "micro") {
      std::ofstream(std::string(dir) + "/swin_micro_w4a4.adalog", std::ios::binary) << bytes;
    }

    const std::vector<float> a = SimLogits(qm, e), b = SimLogits(back, e);
    ASSERT_EQ(a.size(), b.size());
    EXPECT_EQ(0, std::memcmp(a.data(), b.data(), a.size() * sizeof(float)));
    // Not vacuous: the quantized logits are not the FP32 ones, nor the sentinel.
    ExecutorOptions eo;
    eo.max_batch = e.batch;
    ExecutorFp32 fp(qm.model, eo);
    std::vector<float> f(a.size());
    fp.Run(e.x.data(), e.batch, f.data());
    EXPECT_NE(f, a);
    EXPECT_EQ(std::count(a.begin(), a.end(), -777.f), 0);
  }
}

TEST(ModelFileSwin, PlanWithoutItsMergeEntriesIsRefusedAtSave) {
  const Export e = Load("tiny_swin_timm3_op17_dyn");
  QuantizedModel qm = MakeHandPlan(e.m, e.x, e.batch, 4, 4);
  qm.plan.merges.pop_back();
  test::ExpectErrorContaining([&] { SerializeQuantizedModel(qm); }, "patch-merge quantizers");
}

TEST(ModelFileSwin, TruncationsAreRefused) {
  const Export e = Load("tiny_swin_timm3_op17_dyn");
  const std::string bytes = SerializeQuantizedModel(MakeHandPlan(e.m, e.x, e.batch, 4, 4));
  const std::string body = bytes.substr(0, bytes.size() - 8);
  // As cut (length and checksum no longer match), and resealed so the section reader sees the
  // cut: every 7th byte through the file, and every byte of the SWIN section.
  const size_t swin = SectionBody(bytes, "SWIN"), blck = SectionBody(bytes, "BLCK");
  int refused = 0;
  for (size_t cut = 24; cut < body.size(); ++cut) {
    if (cut % 7 != 0 && !(cut >= swin - 16 && cut < blck)) continue;
    EXPECT_THROW(ParseQuantizedModel(bytes.substr(0, cut), "cut"), Error) << cut;
    try {
      ParseQuantizedModel(Reseal(body.substr(0, cut)), "cut");
      ADD_FAILURE() << "resealed cut at " << cut << " parsed";
    } catch (const Error& err) {
      EXPECT_EQ(std::string(err.what()).rfind("model file 'cut'", 0), 0u) << err.what();
      ++refused;
    }
  }
  EXPECT_GT(refused, 100);
}

TEST(ModelFileSwin, CorruptedSwinFieldsAreRefusedByName) {
  const Export e = Load("tiny_swin_timm3_op17_dyn");
  const QuantizedModel qm = MakeHandPlan(e.m, e.x, e.batch, 4, 4);
  const std::string bytes = SerializeQuantizedModel(qm);
  const std::string body = bytes.substr(0, bytes.size() - 8);
  const SwinOffsets o = Offsets(bytes, qm.model);
  const int stages = static_cast<int>(qm.model.swin.stages.size());
  ASSERT_EQ(stages, 3);
  ASSERT_EQ(U32At(bytes, o.count), 3u);  // the offsets below are where the test thinks they are
  ASSERT_EQ(U32At(bytes, o.stage(0) + 4), static_cast<uint32_t>(qm.model.swin.stages[0].dim));
  ASSERT_EQ(U32At(bytes, o.stage(2) + 8), static_cast<uint32_t>(qm.model.swin.stages[2].grid_h));
  // Block 1 (stage 0's second block: shifted) and its window fields: heads, scale, gelu, window.
  const size_t blk0 = SectionBody(bytes, "BLCK");
  const size_t blk1 = SectionBody(bytes, "BLCK", 1);
  ASSERT_EQ(U32At(bytes, blk1 + 9), static_cast<uint32_t>(qm.model.blocks[1].window_size));
  ASSERT_GT(qm.model.blocks[1].shift_size, 0);
  ASSERT_EQ(qm.model.blocks[0].shift_size, 0);

  auto expect_refused = [&](const std::string& what, const std::function<void(std::string*)>& edit,
                            const std::string& needle) {
    SCOPED_TRACE(what);
    std::string b = body;
    edit(&b);
    test::ExpectErrorContaining([&] { ParseQuantizedModel(Reseal(b), "bad.adq"); }, needle);
    // Without resealing, the checksum catches it first.
    test::ExpectErrorContaining([&] { ParseQuantizedModel(b + bytes.substr(bytes.size() - 8), "bad.adq"); },
                                "checksum mismatch");
  };
  auto set = [](size_t at, uint32_t v) { return [at, v](std::string* b) { PutU32(b, at, v); }; };
  const uint32_t w1 = static_cast<uint32_t>(qm.model.blocks[1].window_size);
  expect_refused("no stages", set(o.count, 0), "stage count = 0");
  expect_refused("more stages than blocks", set(o.count, 1000), "exceeds the depth");
  expect_refused("stage 0 depth", set(o.stage(0), 1000), "more blocks than the depth");
  expect_refused("stage 2 depth short", set(o.stage(2), U32At(bytes, o.stage(2)) - 1), "the stages hold");
  expect_refused("stage 0 dim", set(o.stage(0) + 4, U32At(bytes, o.stage(0) + 4) + 1),
                 "does not match the patch embedding");
  expect_refused("stage 1 grid", set(o.stage(1) + 8, U32At(bytes, o.stage(1) + 8) + 1), "is not the merge");
  expect_refused("stage grid huge", set(o.stage(1) + 12, 5000), "exceeds 4096");
  expect_refused("has_merge 2", [&](std::string* b) { (*b)[o.stage(0) + 16] = 2; }, "is not 0 or 1");
  expect_refused("merge after the last stage", [&](std::string* b) { (*b)[o.stage(2) + 16] = 1; },
                 "patch merge after the last stage");
  expect_refused("missing merge", [&](std::string* b) { (*b)[o.stage(0) + 16] = 0; }, "has no patch merge");
  expect_refused("stage 1 dim (merge width)", set(o.stage(1) + 4, U32At(bytes, o.stage(1) + 4) * 2),
                 "does not match");
  expect_refused("window 0", set(blk1 + 9, 0), "window_size 0");
  expect_refused("window 65", set(blk1 + 9, 65), "window <= 64");
  expect_refused("shift = window", set(blk1 + 13, w1), "shift < window");
  expect_refused("window + 1 (rel_bias size)", set(blk1 + 9, w1 + 1), "rel_bias has");
  expect_refused("shift on an unshifted block (mask size)", set(blk0 + 13, 1), "attn_mask has 0 values");
  expect_refused("heads do not divide the stage width", set(blk1, 5), "do not divide the width");
  // The merge's reduction flag, right after stage 0's merge norm (i32 dim, f32 eps, 2 x (u64 + 4C)).
  const size_t flag = o.merges_begin(stages) + 4 + 4 + 2 * (8 + 4 * 4 * static_cast<size_t>(qm.model.swin.stages[0].dim));
  ASSERT_EQ(static_cast<uint8_t>(bytes[flag]), 1u);
  expect_refused("merge flag 2", [&](std::string* b) { (*b)[flag] = 2; }, "merge reduction quantized flag 2");
  // A Swin file labelled version 2 (its checksum redone for version 2) meets SWIN where a block is due.
  expect_refused("version 2", set(8, 2), "found tag 'SWIN'");
  {
    std::string b = body;
    PutU32(&b, 8, 4);
    test::ExpectErrorContaining([&] { ParseQuantizedModel(Reseal(b), "bad.adq"); }, "unsupported format version 4");
  }
}

}  // namespace
}  // namespace adalog
