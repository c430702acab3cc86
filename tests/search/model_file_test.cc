// Quantized model file: round trip of a calibrated model, packed codes, atomic save, and clear
// errors on corrupted, truncated or out-of-range files.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>

#include "quant/uniform.h"
#include "runtime/model_file.h"
#include "search/calibrate.h"
#include "tests/util/exec_random_vit.h"
#include "tests/util/expect_error.h"
#include "tests/util/model_compare.h"
#include "tests/util/sim_reference_forward.h"

namespace adalog {
namespace {

using testing_util::MakeRandomVit;
using testing_util::RandomImages;
using testing_util::RandomVitSpec;
using test::SameBits;

QuantizedModel SmallQuantized(int bits, bool dist, bool tanh_mean_pool = false, bool no_cls = false) {
  RandomVitSpec s;
  s.gelu = tanh_mean_pool ? GeluKind::kTanh : GeluKind::kErf;
  s.mean_pool = tanh_mean_pool;
  s.no_cls = no_cls;
  if (no_cls) s.pos_mode = PosEmbedMode::kPatchesOnly;
  s.Shape(16, 2, 1, 8, 4, 5);
  s.dist = dist;
  const VitModel m = MakeRandomVit(s);
  const std::vector<float> images = RandomImages(m, 2, 3);
  search::CalibOptions o;
  o.num_images = 2;
  o.recipe.weight_bits = o.recipe.act_bits = bits;
  o.recipe.fpcs = false;
  o.recipe.rounds = 1;
  return search::Calibrate(m, images.data(), 2, o);
}

std::vector<float> Dequant(const std::vector<float>& w, const UniformPerChannel& q, int rows, int cols) {
  std::vector<float> out(w.size());
  FakeQuantize(q, w.data(), {rows, cols}, out.data());
  return out;
}

TEST(ModelFile, RoundTripKeepsPlanAndDequantizedWeights) {
  for (int bits : {3, 4, 6, 8}) {
    const QuantizedModel qm = SmallQuantized(bits, bits == 4);
    const std::string bytes = SerializeQuantizedModel(qm);
    const QuantizedModel back = ParseQuantizedModel(bytes, "mem");
    const VitModel &a = qm.model, &b = back.model;
    EXPECT_EQ(b.dim, a.dim);
    EXPECT_EQ(b.pooling, a.pooling);
    EXPECT_TRUE(SameBits(b.pos_embed, a.pos_embed));
    EXPECT_TRUE(SameBits(b.cls_token, a.cls_token));
    EXPECT_TRUE(SameBits(b.embed.weight, Dequant(a.embed.weight, qm.plan.patch_embed_weight, a.dim, 3 * 16)));
    ASSERT_EQ(b.blocks.size(), a.blocks.size());
    const BlockParams &x = a.blocks[0], &y = b.blocks[0];
    EXPECT_TRUE(SameBits(y.ln1.gamma, x.ln1.gamma) && SameBits(y.ln1.beta, x.ln1.beta));
    EXPECT_TRUE(SameBits(y.qkv.weight, Dequant(x.qkv.weight, qm.plan.blocks[0].qkv.weight, x.qkv.out, x.qkv.in)));
    EXPECT_TRUE(SameBits(y.fc2.weight, Dequant(x.fc2.weight, qm.plan.blocks[0].fc2.weight, x.fc2.out, x.fc2.in)));
    EXPECT_TRUE(SameBits(y.fc2.bias, x.fc2.bias));
    const BlockQuant &p = qm.plan.blocks[0], &q = back.plan.blocks[0];
    EXPECT_TRUE(SameBits(q.qkv.weight.scales, p.qkv.weight.scales));
    EXPECT_EQ(q.qkv.weight.zero_points, p.qkv.weight.zero_points);
    EXPECT_EQ(q.fc2.input.kind, p.fc2.input.kind);
    EXPECT_EQ(q.fc2.input.log.q, p.fc2.input.log.q);
    EXPECT_EQ(q.fc2.input.log.scale, p.fc2.input.log.scale);
    EXPECT_EQ(q.fc2.input.shift_folded, p.fc2.input.shift_folded);
    EXPECT_EQ(q.attn.probs.log.q, p.attn.probs.log.q);
    EXPECT_TRUE(SameBits(q.attn.v.scales, p.attn.v.scales));
    EXPECT_EQ(q.proj.input.uniform.params.zero_point, p.proj.input.uniform.params.zero_point);
    EXPECT_EQ(back.plan.meta, qm.plan.meta);
    EXPECT_EQ(back.plan.weight_bits, bits);
    if (bits == 4) {
      EXPECT_TRUE(SameBits(b.head_dist.weight, Dequant(a.head_dist.weight, qm.plan.head_dist.weight, 5, 16)));
    }
    // Re-serializing the loaded model is a fixed point (codes of dequantized weights are stable).
    EXPECT_EQ(SerializeQuantizedModel(back), bytes) << "bits " << bits;
  }
}

TEST(ModelFile, WeightsArePackedAtTheirBitWidth) {
  const QuantizedModel q3 = SmallQuantized(3, false), q8 = SmallQuantized(8, false);
  int64_t weights = 0;
  const VitModel& m = q3.model;
  weights += static_cast<int64_t>(m.embed.weight.size()) + m.head.weight.size();
  for (const auto& b : m.blocks)
    weights += static_cast<int64_t>(b.qkv.weight.size() + b.proj.weight.size() + b.fc1.weight.size() + b.fc2.weight.size());
  const int64_t diff = static_cast<int64_t>(SerializeQuantizedModel(q8).size()) -
                       static_cast<int64_t>(SerializeQuantizedModel(q3).size());
  // 8-bit codes take 5/8 of a byte more per weight than 3-bit ones (plus < 1 byte per tensor).
  EXPECT_NEAR(static_cast<double>(diff), weights * 5.0 / 8.0, 8.0);
}

TEST(ModelFile, AtomicSaveAndLoad) {
  const QuantizedModel qm = SmallQuantized(4, false);
  const std::string path = ::testing::TempDir() + "adalog_model_file_test_" + std::to_string(getpid()) + ".adq";
  SaveQuantizedModel(qm, path);
  const QuantizedModel back = LoadQuantizedModel(path);
  EXPECT_EQ(back.plan.blocks.size(), 1u);
  std::ifstream tmp(path + ".tmp." + std::to_string(getpid()));
  EXPECT_FALSE(tmp.good());  // no temporary left behind
  std::remove(path.c_str());
  test::ExpectErrorContaining([&] { LoadQuantizedModel(path); }, "cannot open");
  // Errors name the file asked for, never the temporary one.
  test::ExpectErrorContaining([&] { SaveQuantizedModel(qm, "/nonexistent_dir_adalog/x.adq"); },
                              "model file '/nonexistent_dir_adalog/x.adq': cannot create a file in directory "
                              "'/nonexistent_dir_adalog': No such file or directory");
}

// A calibrated model (search's real plans, not hand-made ones) comes back field by field: the
// model with its weights dequantized (quant/'s scalar FakeQuant of the calibrated FP32 weights),
// the plan unchanged (tests/util/model_compare.h lists every field), for each model variant.
TEST(ModelFile, CalibratedRoundTripIsFieldByFieldEqual) {
  struct Case {
    int bits;
    bool dist, tanh_mean_pool, no_cls;
  };
  for (const Case& c : {Case{4, true, false, false}, Case{3, false, true, false}, Case{6, false, false, true},
                        Case{8, false, false, false}}) {
    const std::string what = "W" + std::to_string(c.bits) + (c.dist ? " dist" : "") +
                             (c.tanh_mean_pool ? " tanh mean-pool" : "") + (c.no_cls ? " no-cls" : "");
    const QuantizedModel qm = SmallQuantized(c.bits, c.dist, c.tanh_mean_pool, c.no_cls);
    const QuantizedModel back = ParseQuantizedModel(SerializeQuantizedModel(qm), "mem");
    test::ExpectSameVitModel(test::SimReferenceWeights(qm), back.model, what);
    test::ExpectSameQuantPlan(qm.plan, back.plan, what);
  }
}

// FNV-1a 64 written out here from its definition (offset basis, prime), independent of
// runtime/model_file.cc, so that a wrong constant there cannot agree with itself.
uint64_t Fnv1a64FromBasis(const std::string& b, uint64_t basis) {
  uint64_t h = basis;
  for (char c : b) h = (h ^ static_cast<uint8_t>(c)) * 1099511628211ull;
  return h;
}
constexpr uint64_t kStandardBasis = 14695981039346656037ull;
constexpr uint64_t kVersion1Basis = 1469598103934665603ull;  // what version-1 files carry

// Replaces the trailing checksum with FNV-1a 64 from `basis` over the rest, so that only a patched
// field is wrong.
std::string Reseal(std::string b, uint64_t basis = kStandardBasis) {
  b.resize(b.size() - 8);
  const uint64_t h = Fnv1a64FromBasis(b, basis);
  for (int i = 0; i < 8; ++i) b.push_back(static_cast<char>(h >> (8 * i)));
  return b;
}

uint64_t U64At(const std::string& b, size_t at) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v |= static_cast<uint64_t>(static_cast<uint8_t>(b[at + i])) << (8 * i);
  return v;
}

uint32_t U32At(const std::string& b, size_t at) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= static_cast<uint32_t>(static_cast<uint8_t>(b[at + i])) << (8 * i);
  return v;
}

std::string ReadFileBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in.good()) << path;
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// The published FNV-1a 64 test vectors (Fowler/Noll/Vo test suite) pin the constants; a written
// file carries version 2 and the standard FNV-1a 64 of all bytes before the checksum.
TEST(ModelFile, ChecksumIsStandardFnv1a64) {
  EXPECT_EQ(Fnv1a64("", 0), 0xcbf29ce484222325ull);
  EXPECT_EQ(Fnv1a64("a", 1), 0xaf63dc4c8601ec8cull);
  EXPECT_EQ(Fnv1a64("foobar", 6), 0x85944171f73967e8ull);
  EXPECT_EQ(Fnv1a64FromBasis("foobar", kStandardBasis), 0x85944171f73967e8ull);  // the test's own loop
  EXPECT_EQ(ModelFileChecksum("foobar", 6, 2), 0x85944171f73967e8ull);
  EXPECT_EQ(ModelFileChecksum("foobar", 6, 1), Fnv1a64FromBasis("foobar", kVersion1Basis));
  const std::string bytes = SerializeQuantizedModel(SmallQuantized(4, false));
  ASSERT_GT(bytes.size(), 32u);
  EXPECT_EQ(U32At(bytes, 8), 2u) << "version";
  EXPECT_EQ(U32At(bytes, 8), kModelFileVersion);
  EXPECT_EQ(U64At(bytes, bytes.size() - 8), Fnv1a64FromBasis(bytes.substr(0, bytes.size() - 8), kStandardBasis));
}

// Offset, in a serialized file, of the 3 bytes version 2 adds to MODL after `std`
// (interpolation, channel_order, preprocess_known): header 24, section header 16, two str
// fields, 3 i32, 4 u8, i32 resize, 6 f32.
size_t PreprocessExtraOffset(const std::string& b) {
  size_t at = 24 + 16;
  at += 4 + U32At(b, at);  // name
  at += 4 + U32At(b, at);  // style
  return at + 12 + 4 + 4 + 24;
}

void PutU64(std::string* b, size_t at, uint64_t v) {
  for (int i = 0; i < 8; ++i) (*b)[at + i] = static_cast<char>(v >> (8 * i));
}

// A version-2 file rewritten in the version-1 layout: the 3 preprocessing bytes removed (MODL
// body and payload lengths shortened), version 1, sealed from the version-1 basis.
std::string AsVersion1(std::string b) {
  EXPECT_EQ(U32At(b, 8), 2u);
  b.erase(PreprocessExtraOffset(b), 3);
  PutU64(&b, 32, U64At(b, 32) - 3);  // MODL body length
  PutU64(&b, 16, U64At(b, 16) - 3);  // payload bytes
  b[8] = 1;
  return Reseal(b, kVersion1Basis);
}

// Version-1 files (checksummed from the old offset basis, no interpolation / channel order /
// known bytes) still load: a committed file written by the version-1 writer, and a version-1
// file made here from a fresh one. The version in the header selects the basis, so neither basis
// is accepted for the other version. Their preprocessing reads as stored (resize, mean, std) with
// bilinear, rgb and known = false.
TEST(ModelFile, Version1FilesStillLoad) {
  const std::string v1 = ReadFileBytes(std::string(ADALOG_SOURCE_DIR) + "/tests/data/model_file/v1_timm_w4a4.adalog");
  ASSERT_GT(v1.size(), 1000u);
  ASSERT_EQ(U32At(v1, 8), 1u) << "the fixture must stay a version-1 file";
  ASSERT_EQ(U64At(v1, v1.size() - 8), Fnv1a64FromBasis(v1.substr(0, v1.size() - 8), kVersion1Basis));
  uint32_t version = 0;
  const QuantizedModel qm = ParseQuantizedModel(v1, "v1.adalog", &version);
  EXPECT_EQ(version, 1u);
  EXPECT_EQ(qm.plan.weight_bits, 4);
  EXPECT_GE(qm.model.blocks.size(), 1u);
  const Preprocess def;
  EXPECT_EQ(qm.model.preprocess.resize_shorter, 0);
  for (int c = 0; c < 3; ++c) {
    EXPECT_EQ(qm.model.preprocess.mean[c], def.mean[c]);
    EXPECT_EQ(qm.model.preprocess.std[c], def.std[c]);
  }
  EXPECT_EQ(qm.model.preprocess.interpolation, Interpolation::kBilinear);
  EXPECT_EQ(qm.model.preprocess.channel_order, ChannelOrder::kRgb);
  EXPECT_FALSE(qm.model.preprocess.known);
  // Re-saving writes version 2: the same bytes but the version field, the 3 preprocessing bytes
  // (bilinear 0, rgb 0, unknown 0) and the checksum.
  const std::string v2 = SerializeQuantizedModel(qm);
  ASSERT_EQ(v2.size(), v1.size() + 3);
  EXPECT_EQ(U32At(v2, 8), 2u);
  EXPECT_EQ(v2.substr(PreprocessExtraOffset(v2), 3), std::string(3, '\0'));
  EXPECT_EQ(AsVersion1(v2), v1);
  uint32_t v2_version = 0;
  ParseQuantizedModel(v2, "v2.adalog", &v2_version);
  EXPECT_EQ(v2_version, 2u);
  // Each version's basis only: a version-1 file sealed from the standard basis, or a version-2
  // file sealed from the old one, is corrupted.
  test::ExpectErrorContaining([&] { ParseQuantizedModel(Reseal(v1, kStandardBasis), "t.adq"); }, "checksum mismatch");
  test::ExpectErrorContaining([&] { ParseQuantizedModel(Reseal(v2, kVersion1Basis), "t.adq"); }, "checksum mismatch");

  // A version-1 file made from a fresh model (with declared, non-default preprocessing) loads to
  // the same plan as its version-2 twin, its resize/mean/std as stored, the rest defaulted.
  QuantizedModel fresh = SmallQuantized(3, true);
  fresh.model.preprocess.resize_shorter = 9;
  fresh.model.preprocess.mean[1] = 0.3f;
  fresh.model.preprocess.std[2] = 0.4f;
  fresh.model.preprocess.interpolation = Interpolation::kBicubic;
  fresh.model.preprocess.channel_order = ChannelOrder::kBgr;
  fresh.model.preprocess.known = true;
  const std::string made_v1 = AsVersion1(SerializeQuantizedModel(fresh));
  version = 0;
  const QuantizedModel back = ParseQuantizedModel(made_v1, "made_v1.adq", &version);
  EXPECT_EQ(version, 1u);
  test::ExpectSameQuantPlan(ParseQuantizedModel(SerializeQuantizedModel(fresh), "v2").plan, back.plan, "v1 twin");
  EXPECT_EQ(back.model.preprocess.resize_shorter, 9);
  EXPECT_EQ(back.model.preprocess.mean[1], 0.3f);
  EXPECT_EQ(back.model.preprocess.std[2], 0.4f);
  EXPECT_EQ(back.model.preprocess.interpolation, Interpolation::kBilinear);
  EXPECT_EQ(back.model.preprocess.channel_order, ChannelOrder::kRgb);
  EXPECT_FALSE(back.model.preprocess.known);
}

// Version 2 stores the preprocessing `quantize` calibrated with, and whether it was known.
TEST(ModelFile, PreprocessingRoundTripsInVersion2) {
  for (int variant = 0; variant < 3; ++variant) {
    QuantizedModel qm = SmallQuantized(4, false);
    Preprocess& p = qm.model.preprocess;
    p.known = variant != 0;
    p.resize_shorter = variant == 0 ? 0 : 8 + variant;
    p.interpolation = static_cast<Interpolation>(variant);  // bilinear, bicubic, nearest
    p.channel_order = variant == 2 ? ChannelOrder::kBgr : ChannelOrder::kRgb;
    for (int c = 0; c < 3; ++c) {
      p.mean[c] = 0.1f * static_cast<float>(c + variant);
      p.std[c] = 0.25f + 0.5f * static_cast<float>(c);
    }
    const QuantizedModel back = ParseQuantizedModel(SerializeQuantizedModel(qm), "v2.adq");
    for (int c = 0; c < 3; ++c) {
      EXPECT_EQ(back.model.preprocess.mean[c], p.mean[c]) << variant;
      EXPECT_EQ(back.model.preprocess.std[c], p.std[c]) << variant;
    }
    EXPECT_EQ(back.model.preprocess.known, p.known);
    EXPECT_EQ(back.model.preprocess.interpolation, p.interpolation);
    EXPECT_EQ(back.model.preprocess.channel_order, p.channel_order);
    EXPECT_EQ(back.model.preprocess.resize_shorter, p.resize_shorter);
  }
  // Out-of-range bytes are refused, naming the field.
  const std::string good = SerializeQuantizedModel(SmallQuantized(4, false));
  const size_t at = PreprocessExtraOffset(good);
  for (const auto& [offset, field] : std::vector<std::pair<size_t, std::string>>{
           {0, "unknown interpolation 3"}, {1, "unknown channel_order 3"}, {2, "preprocess_known 3"}}) {
    std::string bad = good;
    bad[at + offset] = 3;
    test::ExpectErrorContaining([&] { ParseQuantizedModel(Reseal(bad), "t.adq"); }, field);
  }
}

TEST(ModelFile, CorruptionIsReportedClearly) {
  const QuantizedModel qm = SmallQuantized(4, false);
  const std::string good = SerializeQuantizedModel(qm);
  // Truncation anywhere.
  for (size_t n = 0; n < good.size(); n += 37) {
    try {
      ParseQuantizedModel(good.substr(0, n), "t.adq");
      ADD_FAILURE() << "truncation to " << n << " bytes accepted";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("t.adq"), std::string::npos) << e.what();
    }
  }
  test::ExpectErrorContaining([&] { ParseQuantizedModel(good.substr(0, good.size() - 1), "t.adq"); }, "size mismatch");
  std::string bad = good;
  bad[0] = 'X';
  test::ExpectErrorContaining([&] { ParseQuantizedModel(bad, "t.adq"); }, "bad magic");
  bad = good;
  bad[8] = 4;  // one past the newest (3, Swin)
  test::ExpectErrorContaining([&] { ParseQuantizedModel(Reseal(bad), "t.adq"); }, "unsupported format version 4");
  // A ViT file labelled version 3 (the Swin version) misses the SWIN section.
  bad[8] = 3;
  test::ExpectErrorContaining([&] { ParseQuantizedModel(Reseal(bad), "t.adq"); }, "expected section 'SWIN'");
  bad[8] = 0;
  test::ExpectErrorContaining([&] { ParseQuantizedModel(Reseal(bad), "t.adq"); }, "unsupported format version 0");
  bad = good;
  bad[good.size() / 2] ^= 0x40;
  test::ExpectErrorContaining([&] { ParseQuantizedModel(bad, "t.adq"); }, "checksum mismatch");
  // Out-of-range parameters survive serialization and are rejected at load.
  QuantizedModel q2 = qm;
  q2.plan.blocks[0].proj.input.uniform.params.zero_point = 99;
  test::ExpectErrorContaining([&] { ParseQuantizedModel(SerializeQuantizedModel(q2), "t.adq"); }, "zero_point = 99");
  q2 = qm;
  q2.plan.blocks[0].fc1.weight.scales[3] = -1.0f;
  test::ExpectErrorContaining([&] { ParseQuantizedModel(SerializeQuantizedModel(q2), "t.adq"); }, "weight quantizer");
  q2 = qm;
  q2.plan.blocks[0].attn.probs.log.q = 1000;
  test::ExpectErrorContaining([&] { ParseQuantizedModel(SerializeQuantizedModel(q2), "t.adq"); }, "activation quantizer");
  // Size mismatch between the plan and the model is refused at save.
  q2 = qm;
  q2.plan.blocks[0].qkv.weight.scales.pop_back();
  test::ExpectErrorContaining([&] { SerializeQuantizedModel(q2); }, "channels for");
}

}  // namespace
}  // namespace adalog
