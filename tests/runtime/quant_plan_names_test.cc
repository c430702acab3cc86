// The post-Softmax / post-GELU quantizer name tables: every enum round-trips through its name,
// the names come in the CLI's order, unknown names are errors, and the log kinds map to quant/.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "runtime/quant_plan.h"
#include "tests/util/expect_error.h"

namespace adalog {
namespace {

TEST(QuantPlanNames, SoftmaxRoundTripAndOrder) {
  const std::vector<std::string> names = SoftmaxQuantizerNames();
  EXPECT_EQ(names, (std::vector<std::string>{"adalog", "log2", "logsqrt2", "uniform"}));
  for (const std::string& n : names) EXPECT_EQ(SoftmaxQuantizerName(ParseSoftmaxQuantizer(n)), n);
  EXPECT_EQ(ParseSoftmaxQuantizer("uniform"), SoftmaxQuantizer::kUniform);
  test::ExpectErrorContaining([] { ParseSoftmaxQuantizer("twin"); },
                              "unknown softmax quantizer 'twin' (adalog | log2 | logsqrt2 | uniform)");
  test::ExpectErrorContaining([] { ParseSoftmaxQuantizer("AdaLog"); }, "unknown softmax quantizer 'AdaLog'");
  LogKind k = LogKind::kAdaLog;
  EXPECT_TRUE(IsLogQuantizer(SoftmaxQuantizer::kLog2, &k));
  EXPECT_EQ(k, LogKind::kLog2);
  EXPECT_TRUE(IsLogQuantizer(SoftmaxQuantizer::kAdaLog, &k));
  EXPECT_EQ(k, LogKind::kAdaLog);
  EXPECT_FALSE(IsLogQuantizer(SoftmaxQuantizer::kUniform, &k));
  EXPECT_EQ(k, LogKind::kAdaLog);  // untouched
}

TEST(QuantPlanNames, GeluRoundTripAndOrder) {
  const std::vector<std::string> names = GeluQuantizerNames();
  EXPECT_EQ(names, (std::vector<std::string>{"adalog", "log2", "logsqrt2", "twin", "uniform"}));
  for (const std::string& n : names) EXPECT_EQ(GeluQuantizerName(ParseGeluQuantizer(n)), n);
  test::ExpectErrorContaining([] { ParseGeluQuantizer(""); },
                              "unknown GELU quantizer '' (adalog | log2 | logsqrt2 | twin | uniform)");
  LogKind k = LogKind::kLog2;
  EXPECT_TRUE(IsLogQuantizer(GeluQuantizer::kLogSqrt2, &k));
  EXPECT_EQ(k, LogKind::kLogSqrt2);
  EXPECT_FALSE(IsLogQuantizer(GeluQuantizer::kTwin));
  EXPECT_FALSE(IsLogQuantizer(GeluQuantizer::kUniform));
  // The plan's defaults are the method's.
  const QuantPlan p;
  EXPECT_EQ(p.softmax_quantizer, SoftmaxQuantizer::kAdaLog);
  EXPECT_EQ(p.gelu_quantizer, GeluQuantizer::kAdaLog);
}

}  // namespace
}  // namespace adalog
