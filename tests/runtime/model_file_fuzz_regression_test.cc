// Regression tests for quantized-model-file inputs found by tests/fuzz/fuzz_model_file.cc: each is
// a committed seed file (tests/fuzz/corpus_model_file/) with fields changed and the checksum
// recomputed, which the parser must refuse with an adalog::Error naming the problem.
#include <gtest/gtest.h>

#include <cstdint>
#include <fstream>
#include <iterator>
#include <string>

#include "quant/error.h"
#include "runtime/model_file.h"

namespace adalog {
namespace {

std::string Seed() {
  const std::string path =
      std::string(ADALOG_SOURCE_DIR) + "/tests/fuzz/corpus_model_file/timm_w4a4_adalog.adalog";
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

void PutI32(std::string& b, size_t at, int32_t v) {
  for (int i = 0; i < 4; ++i) b[at + i] = static_cast<char>(static_cast<uint32_t>(v) >> (8 * i));
}

// The checksum over everything before the trailing 8 bytes, for the version in the header (the
// seed is a version-1 file; docs/model_format.md).
void Rechecksum(std::string& b) {
  const uint32_t version = static_cast<uint8_t>(b[8]) | static_cast<uint32_t>(static_cast<uint8_t>(b[9])) << 8;
  const uint64_t h = ModelFileChecksum(b.data(), b.size() - 8, version);
  for (int i = 0; i < 8; ++i) b[b.size() - 8 + i] = static_cast<char>(h >> (8 * i));
}

// EMBD section body: in_channels, image_h, image_w, patch (i32 each) after tag, flags, length.
std::string WithEmbed(int32_t channels, int32_t image, int32_t patch) {
  std::string b = Seed();
  const size_t embd = b.find("EMBD");
  EXPECT_NE(embd, std::string::npos);
  if (embd == std::string::npos) return b;
  PutI32(b, embd + 16, channels);
  PutI32(b, embd + 20, image);
  PutI32(b, embd + 24, image);
  PutI32(b, embd + 28, patch);
  Rechecksum(b);
  return b;
}

void ExpectRefused(const std::string& bytes, const std::string& what) {
  try {
    ParseQuantizedModel(bytes, "m.adalog");
    ADD_FAILURE() << "parsed a file that should be refused for: " << what;
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(what), std::string::npos) << e.what();
  }
}

TEST(ModelFileFuzzRegression, SeedParses) {
  const std::string b = Seed();
  ASSERT_GT(b.size(), 64u) << "seed model file missing";
  const QuantizedModel qm = ParseQuantizedModel(b, "seed");
  EXPECT_EQ(qm.model.embed.patch, 4);
  // Rewriting the same values must keep it valid (the patching below is what changes it).
  EXPECT_NO_THROW(ParseQuantizedModel(WithEmbed(3, 8, 4), "same"));
}

// channels x patch x patch overflowed int (UBSan: signed multiplication overflow).
TEST(ModelFileFuzzRegression, PatchEmbedInputSizeOverflow) {
  ExpectRefused(WithEmbed(1 << 20, 1 << 20, 1 << 20), "patch-embed input size");
}

// (image / patch)^2 patches overflowed int in num_patches().
TEST(ModelFileFuzzRegression, PatchCountOverflow) {
  ExpectRefused(WithEmbed(3, 1 << 20, 1), "patch count");
}

// A header declaring 2^20 blocks in a one-block file: the parser sized its block arrays to the
// declared depth before reading any (over 10 s, the fuzzer's timeout, and 1.4 GB peak RSS in the
// fuzz build); it now appends blocks as read and stops at the first missing one. The time/memory
// side is guarded by the fuzzer replaying tests/fuzz/corpus_model_file/regress_huge_depth.adalog
// under its timeout and RSS limit; here, that the file is refused naming the missing block.
TEST(ModelFileFuzzRegression, HugeDeclaredDepthIsRefusedAtTheFirstMissingBlock) {
  std::string b = Seed();
  const size_t modl = b.find("MODL");
  ASSERT_NE(modl, std::string::npos);
  // MODL body: name (u32 length + bytes), style (u32 length + bytes), dim, depth (i32).
  size_t at = modl + 16;
  for (int s = 0; s < 2; ++s) {
    uint32_t n = 0;
    for (int i = 0; i < 4; ++i) n |= static_cast<uint32_t>(static_cast<uint8_t>(b[at + i])) << (8 * i);
    at += 4 + n;
  }
  PutI32(b, at + 4, 1 << 20);
  Rechecksum(b);
  ExpectRefused(b, "block 1");
}

}  // namespace
}  // namespace adalog
