// Compares every quantizer exactly against the values scripts/gen_quant_reference.py computed
// with torch / numpy from the spec formulas (tests/data/quant/*.txt).
#include <gtest/gtest.h>

#include <cstdlib>
#include <sstream>
#include <string>

#include "quant/log_quantizers.h"
#include "quant/twin_uniform.h"
#include "quant/uniform.h"
#include "tests/util/test_util.h"

namespace adalog {
namespace {

using test::FloatFromBits;
using test::Repro;
using test::SameFloat;

float HexFloat(const std::string& h) {
  return FloatFromBits(static_cast<uint32_t>(std::strtoul(h.c_str(), nullptr, 16)));
}

// Returns the non-comment lines of a data file.
std::vector<std::string> DataLines(const std::string& name) {
  std::istringstream in(test::ReadTextFile(test::TestDataPath("quant/" + name)));
  std::vector<std::string> lines;
  for (std::string l; std::getline(in, l);) {
    if (!l.empty() && l[0] != '#') lines.push_back(l);
  }
  return lines;
}

TEST(ReferenceData, UniformMatchesTorch) {
  const auto lines = DataLines("uniform.txt");
  int cases = 0, values = 0;
  for (size_t i = 0; i < lines.size();) {
    std::istringstream h(lines[i++]);
    std::string tag, mode, scale_hex;
    int bits, zp, n;
    h >> tag >> mode >> bits >> scale_hex >> zp >> n;
    ASSERT_EQ(tag, "case");
    const UniformParams p{bits, HexFloat(scale_hex), zp,
                          mode == "sym" ? UniformMode::kSymmetric : UniformMode::kAsymmetric};
    const UniformQuantizer q(p);
    ++cases;
    for (int k = 0; k < n; ++k, ++i, ++values) {
      std::istringstream d(lines[i]);
      std::string xh, yh;
      int code;
      d >> xh >> code >> yh;
      const float x = HexFloat(xh), y = HexFloat(yh);
      ASSERT_EQ(q.Encode(x), code)
          << lines[i] << ' ' << Repro("case", cases, "bits", bits, "zp", zp);
      ASSERT_TRUE(SameFloat(q.FakeQuant(x), y)) << lines[i] << ' ' << Repro("case", cases);
    }
  }
  EXPECT_EQ(cases, 45);
  EXPECT_GT(values, 5000);
}

TEST(ReferenceData, LogQuantizersMatchExactCodeAndTorchDecode) {
  const auto lines = DataLines("log.txt");
  int cases = 0, values = 0, torch_f32_differs = 0, zeros = 0;
  for (size_t i = 0; i < lines.size();) {
    std::istringstream h(lines[i++]);
    std::string tag, kind, scale_hex;
    int bits, q, n;
    h >> tag >> kind >> bits >> scale_hex >> q >> n;
    ASSERT_EQ(tag, "case");
    const LogKind k = kind == "log2" ? LogKind::kLog2
                                     : (kind == "logsqrt2" ? LogKind::kLogSqrt2 : LogKind::kAdaLog);
    const LogQuantizer lq({k, bits, HexFloat(scale_hex), q});
    ++cases;
    for (int j = 0; j < n; ++j, ++i, ++values) {
      std::istringstream d(lines[i]);
      std::string xh, yh;
      int code, code_f32;
      d >> xh >> code >> code_f32 >> yh;
      const float x = HexFloat(xh), y = HexFloat(yh);
      ASSERT_EQ(lq.Encode(x), code) << lines[i] << ' ' << Repro("kind", kind, "bits", bits, "q", q);
      ASSERT_TRUE(SameFloat(lq.FakeQuant(x), y))
          << lines[i] << ' ' << Repro("kind", kind, "bits", bits, "q", q);
      // torch's float32 evaluation differs only at floats next to a threshold, by one step.
      ASSERT_LE(std::abs(code - code_f32), 1) << lines[i];
      torch_f32_differs += code != code_f32;
      zeros += code == (1 << bits);
    }
  }
  EXPECT_EQ(cases, 80);
  EXPECT_GT(values, 15000);
  EXPECT_GT(zeros, 100);
  std::printf("log reference: %d values, torch float32 code differs (threshold floats) at %d\n",
              values, torch_f32_differs);
}

TEST(ReferenceData, AdaLogTablesMatchPython) {
  const auto lines = DataLines("adalog_tables.txt");
  int tables = 0;
  for (size_t i = 0; i + 2 < lines.size() + 0; i += 3) {
    std::istringstream h(lines[i]), t1s(lines[i + 1]), ms(lines[i + 2]);
    int bits, q, D;
    h >> bits >> q >> D;
    const AdaLogTables t = MakeAdaLogTables(bits, q);
    ASSERT_EQ(t.D, D);
    for (int c = 0; c < (1 << bits); ++c) {
      int t1, m;
      t1s >> t1;
      ms >> m;
      ASSERT_EQ(t.shift[static_cast<size_t>(c)], t1) << Repro("bits", bits, "q", q, "c", c);
      ASSERT_EQ(t.mult[static_cast<size_t>(c)], m) << Repro("bits", bits, "q", q, "c", c);
    }
    ++tables;
  }
  EXPECT_EQ(tables, 40);
}

TEST(ReferenceData, TwinUniformMatchesTorch) {
  const auto lines = DataLines("twin_uniform.txt");
  int cases = 0;
  for (size_t i = 0; i < lines.size();) {
    std::istringstream h(lines[i++]);
    std::string tag, s0h, s1h;
    int bits, n;
    h >> tag >> bits >> s0h >> s1h >> n;
    const TwinUniformQuantizer tq({bits, HexFloat(s0h), HexFloat(s1h)});
    ++cases;
    for (int j = 0; j < n; ++j, ++i) {
      std::istringstream d(lines[i]);
      std::string xh, yh;
      int code;
      d >> xh >> code >> yh;
      const float x = HexFloat(xh);
      ASSERT_EQ(tq.Encode(x), code) << lines[i];
      ASSERT_TRUE(SameFloat(tq.FakeQuant(x), HexFloat(yh))) << lines[i];
    }
  }
  EXPECT_EQ(cases, 8);
}

}  // namespace
}  // namespace adalog
