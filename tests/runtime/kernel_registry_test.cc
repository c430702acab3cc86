// The ordered kernel registry (runtime/kernel_registry.h): first accepting entry wins, ISA and
// config declines, and the registry-backed choices the executors report.
#include "runtime/kernel_registry.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "quant/error.h"
#include "runtime/kernels/float_kernels.h"
#include "runtime/kernels/int/int_kernels.h"
#include "runtime/kernels/int/logcode_writers.h"

namespace adalog {
namespace {

struct Cfg {
  int n = 0;
};

using Impl = KernelImpl<int, Cfg>;

const std::vector<Impl>& List() {
  static const std::vector<Impl> list = {
      {"toy__avx512vnni", IsaLevel::kAvx512Vnni, {}, 3},
      {"toy__avx2", IsaLevel::kAvx2,
       [](const Cfg& c) { return c.n % 8 == 0 ? nullptr : "n not a multiple of 8"; },
       2},
      {"toy__ref", IsaLevel::kRef, {}, 1},
  };
  return list;
}

int Pick(int n, IsaLevel cap) {
  return SelectKernel("toy", List(), Cfg{n}, cap, [n] { return "n " + std::to_string(n); }).fn;
}

TEST(KernelRegistry, FirstAcceptingEntryInListOrder) {
  EXPECT_EQ(Pick(16, IsaLevel::kRef), 1);
  EXPECT_EQ(Pick(7, IsaLevel::kAvx2), 1);  // avx2 declines the config
  if (IsaSupported(IsaLevel::kAvx2)) {
    EXPECT_EQ(Pick(16, IsaLevel::kAvx2), 2);
  }
  if (IsaSupported(IsaLevel::kAvx512Vnni)) {
    EXPECT_EQ(Pick(7, IsaLevel::kAvx512Vnni), 3);
  } else if (IsaSupported(IsaLevel::kAvx2)) {
    EXPECT_EQ(Pick(16, IsaLevel::kAvx512Vnni), 2);  // the cap is above what the CPU runs
  }
}

TEST(KernelRegistry, IsaDeclineReasons) {
  EXPECT_EQ(IsaDeclineReason(IsaLevel::kRef, IsaLevel::kRef), "");
  EXPECT_EQ(IsaDeclineReason(IsaLevel::kAvx2, IsaLevel::kRef), "ISA capped at ref");
  EXPECT_EQ(IsaDeclineReason(IsaLevel::kAvx512Vnni, IsaLevel::kAvx512), "ISA capped at avx512");
  if (!IsaSupported(IsaLevel::kAvx512Vnni)) {
    EXPECT_EQ(IsaDeclineReason(IsaLevel::kAvx512Vnni, IsaLevel::kAvx512Vnni),
              "CPU lacks avx512vnni");
  }
}

TEST(KernelRegistry, ListDecliningEverythingIsAnError) {
  static const std::vector<Impl> none = {{"toy__avx2", IsaLevel::kAvx2, {}, 2}};
  EXPECT_THROW(SelectKernel("toy", none, Cfg{}, IsaLevel::kRef, [] { return std::string(); }),
               Error);
}

// The registry-backed selections under a ref cap all land on their portable entry.
TEST(KernelRegistry, RefCapSelectsThePortableEntries) {
  EXPECT_STREQ(SelectFloatKernels(IsaLevel::kRef).name, "float_islands__ref");
  EXPECT_EQ(intk::SelectQgemmImpl(IsaLevel::kRef), intk::QgemmImpl::kPackedScalar);
  EXPECT_STREQ(intk::LogMatmulImplName(intk::LogDesign::kS16, IsaLevel::kRef),
               "logcode_matmul_s16__scalar");
  EXPECT_STREQ(intk::LogMatmulImplName(intk::LogDesign::kU8, IsaLevel::kRef),
               "logcode_matmul_u8s8__scalar");
  EXPECT_STREQ(intk::LogMatmulImplName(intk::LogDesign::kBuckets, IsaLevel::kRef),
               "logcode_buckets_s32__scalar");
  EXPECT_STREQ(intk::SoftmaxToLogCodesImplName(IsaLevel::kRef), "softmax_logcodes__ref");
  EXPECT_STREQ(intk::GeluToLogCodesImplName(IsaLevel::kRef), "gelu_logcodes__ref");
  if (IsaSupported(IsaLevel::kAvx512Vnni)) {
    EXPECT_EQ(intk::SelectQgemmImpl(IsaLevel::kAvx512Vnni), intk::QgemmImpl::kAvx512Vnni);
    EXPECT_STREQ(intk::LogMatmulImplName(intk::LogDesign::kS16, IsaLevel::kAvx512Vnni),
                 "logcode_matmul_s16__avx512vnni");
    EXPECT_STREQ(intk::SoftmaxToLogCodesImplName(IsaLevel::kAvx512Vnni),
                 "softmax_logcodes__avx512");
  }
}

}  // namespace
}  // namespace adalog
