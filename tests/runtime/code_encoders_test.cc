// Tests of the vector code encoders (runtime/kernels/int/code_encoders.h): at every ISA level
// the codes equal quant's scalar Encode, bit for bit, for the log kinds (LogQuantizer and
// ShiftLogQuantizer, every bit width, several q / scales / shifts) and the uniform kind, on
// inputs that sit on and next to every decision threshold, softmax- and GELU-like values,
// special values (zeros, NaN, +-inf, denormals, FLT_MAX) and lengths around the vector widths.
#include <gtest/gtest.h>

#include <cfloat>
#include <cmath>
#include <cstdio>
#include <limits>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "quant/error.h"
#include "quant/log_quantizers.h"
#include "quant/uniform.h"
#include "runtime/cpu_features.h"
#include "runtime/kernels/int/code_encoders.h"
#include "tests/util/isa_test_util.h"
#include "tests/util/test_util.h"

namespace adalog::intk {
namespace {

using test::Repro;

// The encoders' levels (AVX-512 VNNI adds nothing to them): one test instance per level, skipped
// (named) where the CPU lacks it (tests/util/isa_test_util.h).
const IsaLevel kLevels[] = {IsaLevel::kRef, IsaLevel::kAvx2, IsaLevel::kAvx512};
class CodeEncodersIsa : public test::IsaParamTest {};
INSTANTIATE_TEST_SUITE_P(Isa, CodeEncodersIsa, ::testing::ValuesIn(kLevels), test::IsaParamName);
const int kLengths[] = {1, 7, 8, 9, 15, 16, 17, 31, 33, 197, 1000};

float NextUp(float x, int k) {
  for (int i = 0; i < k; ++i) x = std::nextafter(x, std::numeric_limits<float>::infinity());
  return x;
}
float NextDown(float x, int k) {
  for (int i = 0; i < k; ++i) x = std::nextafter(x, -std::numeric_limits<float>::infinity());
  return x;
}

// Values around every finite threshold, softmax-like u = 2^-r, GELU-like normals, specials.
std::vector<float> Inputs(const ThresholdLogEncoder& enc, uint64_t seed) {
  std::vector<float> v;
  for (float t : enc.thresholds()) {
    if (!std::isfinite(t)) continue;
    for (int k = 0; k <= 2; ++k) {
      v.push_back(NextUp(t, k));
      v.push_back(NextDown(t, k));
    }
  }
  auto rng = test::SeededRng(seed);
  std::uniform_real_distribution<float> r(0.0f, 40.0f);
  std::normal_distribution<float> g(0.0f, 2.0f);
  for (int i = 0; i < 1500; ++i) v.push_back(std::exp2(-r(rng)));
  for (int i = 0; i < 1500; ++i) v.push_back(g(rng));
  for (float s : {0.0f, -0.0f, 1.0f, -1.0f, 1e-15f, 1e-16f, FLT_MIN, -FLT_MIN, 1e-45f, -1e-45f,
                  FLT_MAX, -FLT_MAX, std::numeric_limits<float>::infinity(),
                  -std::numeric_limits<float>::infinity(),
                  std::numeric_limits<float>::quiet_NaN(), -0.16997124f, 0.16997124f}) {
    v.push_back(s);
  }
  std::shuffle(v.begin(), v.end(), rng);
  return v;
}

void ExpectEncoderSameAsQuant(const ThresholdLogEncoder& enc,
                              const std::function<int32_t(float)>& quant_code,
                              const std::string& what) {
  const IsaLevel isa = enc.isa();
  const std::string where = what + " path " + enc.path();
  const std::vector<float> x = Inputs(enc, 77);
  // Whole array, then every length from a shifting offset (tails, unaligned starts).
  std::vector<uint8_t> got(x.size() + 1, 0xAB);
  enc.Encode(x.data(), static_cast<int64_t>(x.size()), got.data());
  ASSERT_EQ(got.back(), 0xAB) << "wrote past the end " << where;
  for (size_t i = 0; i < x.size(); ++i) {
    ASSERT_EQ(static_cast<int32_t>(got[i]), quant_code(x[i]))
        << where << Repro("isa", IsaLevelName(isa), "x", x[i], "i", i);
  }
  size_t off = 0;
  for (int n : kLengths) {
    if (off + static_cast<size_t>(n) + 1 > x.size()) off = 0;
    std::vector<uint8_t> part(static_cast<size_t>(n) + 1, 0xCD);
    enc.Encode(x.data() + off + 1, n, part.data());
    ASSERT_EQ(part.back(), 0xCD) << where << Repro("isa", IsaLevelName(isa), "n", n);
    for (int i = 0; i < n; ++i) {
      ASSERT_EQ(static_cast<int32_t>(part[static_cast<size_t>(i)]),
                quant_code(x[off + 1 + static_cast<size_t>(i)]))
          << where << Repro("isa", IsaLevelName(isa), "n", n, "i", i);
    }
    off += static_cast<size_t>(n);
  }
}

// At level `isa` (the encoders must run at that level, not fall back), both the generic (code
// function) encoder and the one built from the quantizer (large-table paths at 7 and 8 bits).
template <typename Q>
void ExpectSameAsQuant(const Q& q, IsaLevel isa, const std::string& what,
                       std::set<std::string>* paths) {
  const std::function<int32_t(float)> code = [&q](float x) {
    return static_cast<int32_t>(q.Encode(x));
  };
  const ThresholdLogEncoder generic(code, isa);
  ASSERT_EQ(generic.isa(), isa) << what;
  ExpectEncoderSameAsQuant(generic, code, what);
  const ThresholdLogEncoder direct(q, isa);
  ASSERT_EQ(direct.isa(), isa) << what;
  ExpectEncoderSameAsQuant(direct, code, what);
  paths->insert(generic.path());
  paths->insert(direct.path());
  if (const KeyBucketTable* t = direct.key_table()) {
    paths->insert("key-bucket/" + std::to_string(t->per_bucket) + "/M" +
                  std::to_string(23 - t->key_shift));
  }
}

LogParams Params(LogKind kind, int bits, int q, float scale) {
  LogParams p;
  p.kind = kind;
  p.bits = bits;
  p.q = q;
  p.scale = scale;
  return p;
}

TEST_P(CodeEncodersIsa, LogThresholdsEqualQuantEveryBits) {
  const IsaLevel isa = GetParam();
  int cases = 0;
  std::set<std::string> paths;
  for (int bits = 2; bits <= 8; ++bits) {
    for (int q : {10, 23, 37, 64, 90, 137}) {
      for (float scale : {1.0f, 0.37f, 3.1f}) {
        const LogQuantizer lq(Params(LogKind::kAdaLog, bits, q, scale));
        ExpectSameAsQuant(lq, isa, Repro("adalog bits", bits, "q", q, "scale", scale), &paths);
        ++cases;
      }
    }
    for (LogKind kind : {LogKind::kLog2, LogKind::kLogSqrt2}) {
      const LogQuantizer lq(Params(kind, bits, 37, 0.5f));
      ExpectSameAsQuant(lq, isa, Repro("log2/sqrt2 bits", bits, "kind", static_cast<int>(kind)),
                        &paths);
      ++cases;
    }
  }
  EXPECT_EQ(cases, 7 * (18 + 2));
  // Every path of the level ran.
  for (const std::string& p : paths) std::printf("[ info ] %s path %s\n", IsaLevelName(isa), p.c_str());
  switch (isa) {
    case IsaLevel::kRef: EXPECT_EQ(paths, std::set<std::string>({"scalar"})); break;
    case IsaLevel::kAvx2:
      EXPECT_TRUE(paths.count("permute") && paths.count("threshold-gather") &&
                  paths.count("bucket-gather") && paths.count("key-bucket"));
      break;
    default:
      EXPECT_TRUE(paths.count("permute") && paths.count("exponent") && paths.count("key-bucket"));
      break;
  }
}

TEST_P(CodeEncodersIsa, ShiftLogThresholdsEqualQuant) {
  std::set<std::string> paths;
  for (int bits : {3, 4, 6, 8}) {
    for (int q : {10, 37, 120}) {
      for (float shift : {kGeluShift, 0.5f, 0.0f}) {
        for (float scale : {0.8f, 2.5f}) {
          const ShiftLogQuantizer sq(Params(LogKind::kAdaLog, bits, q, scale), shift, true);
          ExpectSameAsQuant(sq, GetParam(),
                            Repro("shift bits", bits, "q", q, "shift", shift, "scale", scale),
                            &paths);
        }
      }
    }
  }
}

TEST(CodeEncoders, ThresholdTableShape) {
  // 4-bit AdaLog: 16 nonzero levels + the zero code; every x <= 0 is the zero code 16.
  const LogQuantizer lq(Params(LogKind::kAdaLog, 4, 37, 1.0f));
  const ThresholdLogEncoder enc(lq, IsaLevel::kRef);
  EXPECT_EQ(enc.max_code(), 16);
  EXPECT_EQ(enc.padded(), 16);
  for (size_t c = 1; c < enc.thresholds().size(); ++c) {
    EXPECT_LE(enc.thresholds()[c], enc.thresholds()[c - 1]) << "c=" << c;
  }
  EXPECT_GT(enc.thresholds()[15], 0.0f);  // the zero code starts at or below 0
  EXPECT_EQ(lq.Encode(NextDown(enc.thresholds()[0], 1)), 1);
  EXPECT_EQ(lq.Encode(enc.thresholds()[0]), 0);
}

TEST(CodeEncoders, NonMonotoneCodeFunctionIsRejected) {
  // A code that goes up again for large x cannot be expressed by thresholds: a clear error.
  auto bad = [](float x) -> int32_t { return x < 0.0f ? 3 : (x < 1.0f ? 1 : (x < 2.0f ? 0 : 2)); };
  EXPECT_THROW(ThresholdLogEncoder(bad, IsaLevel::kRef), Error);
}

TEST_P(CodeEncodersIsa, UniformEqualsQuantEveryBits) {
  const IsaLevel isa = GetParam();
  auto rng = test::SeededRng(4242);
  std::normal_distribution<float> g(0.0f, 3.0f);
  for (int bits = 2; bits <= 8; ++bits) {
    for (float scale : {0.013f, 0.25f, 1.7f}) {
      const int zmax = (1 << bits) - 1;
      for (int z : {0, 1, zmax / 2, zmax}) {
        UniformParams p;
        p.bits = bits;
        p.scale = scale;
        p.zero_point = z;
        const UniformQuantizer uq(p);
        std::vector<float> x;
        for (int c = -z - 2; c <= zmax - z + 2; ++c) {  // halfway points and neighbours
          const float h = (static_cast<float>(c) + 0.5f) * scale;
          x.push_back(h);
          x.push_back(NextUp(h, 1));
          x.push_back(NextDown(h, 1));
        }
        for (int i = 0; i < 500; ++i) x.push_back(g(rng) * scale * static_cast<float>(zmax) / 4);
        for (float s : {0.0f, -0.0f, FLT_MAX, -FLT_MAX, std::numeric_limits<float>::infinity(),
                        -std::numeric_limits<float>::infinity(),
                        std::numeric_limits<float>::quiet_NaN(), 1e-45f}) {
          x.push_back(s);
        }
        const VectorUniformEncoder enc(uq, isa);
        ASSERT_EQ(enc.isa(), isa);
        for (int n : {static_cast<int>(x.size()), 5, 16, 17}) {
          std::vector<uint8_t> got(static_cast<size_t>(n) + 1, 0xEE);
          enc.Encode(x.data(), n, got.data());
          ASSERT_EQ(got.back(), 0xEE);
          for (int i = 0; i < n; ++i) {
            ASSERT_EQ(static_cast<int32_t>(got[static_cast<size_t>(i)]),
                      uq.Encode(x[static_cast<size_t>(i)]))
                << Repro("isa", IsaLevelName(isa), "bits", bits, "scale", scale, "z", z, "x",
                         x[static_cast<size_t>(i)]);
          }
        }
      }
    }
  }
}

// q / k / v codes of a qkv row in one call: every segment's codes equal quant's Encode with that
// segment's parameters (vectorized path: segment lengths multiples of 16; fallback otherwise),
// row strides wider than the row, nothing written outside the rows.
TEST_P(CodeEncodersIsa, SegmentedUniformEqualsQuantPerSegment) {
  const IsaLevel isa = GetParam();
  auto rng = test::SeededRng(777);
  std::normal_distribution<float> g(0.0f, 2.0f);
  for (int seg_len : {16, 64, 20}) {
    for (int bits : {4, 8}) {
      std::vector<UniformQuantizer> qs;
      for (int i = 0; i < 9; ++i) {  // 3 heads x (q, k, v)
        UniformParams p;
        p.bits = bits;
        p.scale = 0.01f + 0.07f * static_cast<float>(i);
        p.zero_point = (i * 37) % (1 << bits);
        qs.emplace_back(p);
      }
      std::vector<VectorUniformEncoder> encs;
      for (const UniformQuantizer& q : qs) encs.emplace_back(q, isa);
      std::vector<const VectorUniformEncoder*> ptrs;
      for (const VectorUniformEncoder& e : encs) ptrs.push_back(&e);
      const SegmentedUniformEncoder seg(ptrs, std::vector<int>(ptrs.size(), seg_len));
      const int row = seg.row_length();
      ASSERT_EQ(row, 9 * seg_len);
      EXPECT_EQ(seg.vectorized(), seg_len % 16 == 0 && isa >= IsaLevel::kAvx512);
      const int rows = 5;
      const int64_t ldx = row + 7, ldc = row + 5;
      std::vector<float> x(static_cast<size_t>(rows * ldx));
      for (float& v : x) v = g(rng) * 0.3f;
      x[3] = std::numeric_limits<float>::quiet_NaN();
      x[static_cast<size_t>(ldx + 1)] = std::numeric_limits<float>::infinity();
      x[static_cast<size_t>(2 * ldx + seg_len)] = -FLT_MAX;
      std::vector<uint8_t> got(static_cast<size_t>(rows * ldc), 0xEE);
      seg.Encode(x.data(), ldx, rows, got.data(), ldc);
      for (int r = 0; r < rows; ++r) {
        for (int64_t j = 0; j < ldc; ++j) {
          const uint8_t c = got[static_cast<size_t>(r * ldc + j)];
          if (j >= row) {
            ASSERT_EQ(c, 0xEE) << "wrote outside the row";
            continue;
          }
          const int i = static_cast<int>(j) / seg_len;
          ASSERT_EQ(static_cast<int32_t>(c), qs[static_cast<size_t>(i)].Encode(
                                                 x[static_cast<size_t>(r * ldx + j)]))
              << Repro("isa", IsaLevelName(isa), "seg_len", seg_len, "bits", bits, "row", r,
                       "col", j);
        }
      }
    }
  }
}

TEST(CodeEncoders, UniformRejectsSymmetric) {
  UniformParams p;
  p.bits = 4;
  p.mode = UniformMode::kSymmetric;
  p.zero_point = 0;
  EXPECT_THROW(VectorUniformEncoder(UniformQuantizer(p)), Error);
}

}  // namespace
}  // namespace adalog::intk
