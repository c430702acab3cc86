// The calibration driver: determinism across thread counts, function preservation of the model
// rewrites, progress reporting and bad-input errors. Random-weight models: exactness and
// determinism only, never accuracy.
#include <gtest/gtest.h>
#include <omp.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <cstring>
#include <limits>

#include "runtime/executor_fp32.h"
#include "runtime/model_file.h"
#include "search/calibrate.h"
#include "tests/search/calib_case.h"
#include "tests/util/exec_random_vit.h"
#include "tests/util/expect_error.h"
#include "tests/util/model_compare.h"

namespace adalog::search {
namespace {

using testing_util::MakeRandomVit;
using testing_util::RandomImages;
using testing_util::RandomVitSpec;

using test::ExpectSameQuantPlan;
using test::ExpectSameVitModel;
using test::SameBits;

RandomVitSpec SmallSpec() {
  RandomVitSpec s;
  s.Shape(32, 2, 2, 16, 4, 10);
  return s;
}

TEST(Calibrate, DeterministicAcrossThreadCounts) {
  // The whole quantized file (every quantizer and every FP32 tensor, rewritten or not, and the
  // meta) must be byte-identical for 1, 2 and 3 threads (3: a team size that divides none of the
  // partitions evenly).
  test::CalibCase c(SmallSpec(), 6, 9);
  c.options.batch = 4;
  const int prev = omp_get_max_threads();
  std::vector<QuantizedModel> runs;
  for (int t : {1, 2, 3}) {
    omp_set_num_threads(t);
    c.options.threads = t;
    runs.push_back(c.Calibrate());
  }
  omp_set_num_threads(prev);
  const QuantizedModel& a = runs[0];
  // The whole file, byte for byte: the plan's meta holds nothing timing-dependent (it once held
  // the search wall time, so that two runs never gave the same bytes).
  const std::vector<std::pair<std::string, std::string>> want_meta = {
      {"seed", std::to_string(search::CalibOptions().seed)}, {"calib_images", std::to_string(c.n)}, {"rounds", std::to_string(c.options.recipe.rounds)}};
  EXPECT_EQ(a.plan.meta, want_meta);
  const std::string bytes = SerializeQuantizedModel(a);
  for (size_t i = 1; i < runs.size(); ++i) {
    SCOPED_TRACE("threads " + std::to_string(i + 1) + " vs 1");
    ExpectSameQuantPlan(a.plan, runs[i].plan, "plan");  // names the field on a mismatch
    ExpectSameVitModel(a.model, runs[i].model, "rewritten model");
    EXPECT_TRUE(SerializeQuantizedModel(runs[i]) == bytes) << "quantized file bytes differ";
  }
  // The plan is complete and the quantizers are the defaults of the method.
  ASSERT_EQ(a.plan.blocks.size(), 2u);
  EXPECT_EQ(a.plan.blocks[0].fc2.input.kind, ActQuant::Kind::kLog);
  EXPECT_EQ(a.plan.blocks[0].fc2.input.log.kind, LogKind::kAdaLog);
  EXPECT_TRUE(a.plan.blocks[0].fc2.input.shift_folded);
  EXPECT_EQ(a.plan.blocks[0].attn.probs.log.scale, 1.0f);
  EXPECT_EQ(a.plan.blocks[0].attn.q.scales.size(), 2u);
  EXPECT_EQ(a.plan.blocks[0].qkv.weight.scales.size(), 96u);
  EXPECT_EQ(a.plan.patch_embed_weight.scales.size(), 32u);
  EXPECT_EQ(a.plan.head.input.kind, ActQuant::Kind::kUniform);
  EXPECT_NO_THROW(a.plan.head.weight.Validate());
  EXPECT_NO_THROW(a.plan.blocks[1].fc2.input.log.Validate());
}

TEST(Calibrate, RewritesPreserveTheFpFunction) {
  // With a uniform GELU quantizer there is no bias fold: the rewritten model (LN reparam) must
  // compute the same FP function as the original.
  test::CalibCase c(SmallSpec(), 3, 10);
  c.options.recipe.gelu = GeluQuantizer::kUniform;
  c.options.recipe.rounds = 1;
  const QuantizedModel q = c.Calibrate();
  const VitModel& m = c.model;
  const int n = c.n;
  const std::vector<float>& images = c.images;
  EXPECT_FALSE(SameBits(q.model.blocks[0].ln1.gamma, m.blocks[0].ln1.gamma));  // rewritten
  ExecutorOptions eo;
  eo.max_batch = n;
  ExecutorFp32 e1(m, eo), e2(q.model, eo);
  std::vector<float> l1(static_cast<size_t>(n) * 10), l2(l1.size());
  e1.Run(images.data(), n, l1.data());
  e2.Run(images.data(), n, l2.data());
  for (size_t i = 0; i < l1.size(); ++i) EXPECT_NEAR(l1[i], l2[i], 1e-3f * (1 + std::abs(l1[i])));
}

TEST(Calibrate, ProgressAndDistilledHead) {
  RandomVitSpec s = SmallSpec();
  s.dist = true;
  s.depth = 1;
  const VitModel m = MakeRandomVit(s);
  const std::vector<float> images = RandomImages(m, 2, 11);
  CalibOptions o;
  o.num_images = 2;
  o.recipe.fpcs = false;
  o.recipe.ln_reparam = false;
  std::vector<std::string> labels;
  int last_total = 0;
  const QuantizedModel q = Calibrate(m, images.data(), 2, o, [&](int done, int total, const std::string& l) {
    EXPECT_EQ(done, static_cast<int>(labels.size()) + 1);
    labels.push_back(l);
    last_total = total;
  });
  EXPECT_EQ(static_cast<int>(labels.size()), last_total);
  EXPECT_EQ(last_total, 1 + 6 + 2);
  EXPECT_EQ(q.plan.head_dist.weight.scales.size(), 10u);
  EXPECT_FALSE(q.plan.ln_reparam);
  EXPECT_TRUE(SameBits(q.model.blocks[0].ln1.gamma, m.blocks[0].ln1.gamma));  // no reparam
}

TEST(Calibrate, BadInputs) {
  const VitModel m = MakeRandomVit(SmallSpec());
  std::vector<float> images = RandomImages(m, 2, 12);
  CalibOptions o;
  o.num_images = 4;
  test::ExpectErrorContaining([&] { Calibrate(m, images.data(), 2, o); },
                              "4 calibration images asked, but only 2 given");
  o.num_images = 2;
  std::vector<float> bad = images;
  bad[100] = std::numeric_limits<float>::quiet_NaN();
  test::ExpectErrorContaining([&] { Calibrate(m, bad.data(), 2, o); }, "image 0 has a non-finite value");
  bad = images;
  bad[bad.size() - 1] = std::numeric_limits<float>::infinity();
  test::ExpectErrorContaining([&] { Calibrate(m, bad.data(), 2, o); }, "image 1 has a non-finite value");
  CalibOptions ob = o;
  ob.recipe.weight_bits = 9;
  test::ExpectErrorContaining([&] { Calibrate(m, images.data(), 2, ob); }, "unsupported weight bit width 9");
  ob = o;
  ob.recipe.act_bits = 1;
  test::ExpectErrorContaining([&] { Calibrate(m, images.data(), 2, ob); }, "unsupported activation bit width 1");
  // Quantizer names are parsed into enums before they reach the options.
  test::ExpectErrorContaining([&] { ParseSoftmaxQuantizer("log3"); }, "unknown softmax quantizer 'log3'");
  test::ExpectErrorContaining([&] { ParseGeluQuantizer("ptq4vit"); }, "unknown GELU quantizer 'ptq4vit'");
  VitModel sw = m;
  sw.blocks[0].window_size = 7;
  test::ExpectErrorContaining([&] { Calibrate(sw, images.data(), 2, o); }, "window attention");
}

// Timing probe (not part of the suite): a random-weight DeiT-S-shaped model (224^2, dim 384,
// 6 heads), ADALOG_TIMING_DEPTH blocks (default 1), 32 images; prints per-op wall times.
// Run: adalog_search_tests --gtest_also_run_disabled_tests --gtest_filter='*TimingDeitS*'
TEST(Calibrate, DISABLED_TimingDeitS) {
  RandomVitSpec s;
  s.Shape(384, 6, std::getenv("ADALOG_TIMING_DEPTH") ? std::atoi(std::getenv("ADALOG_TIMING_DEPTH")) : 1, 224, 16, 1000);
  const test::CalibCase c(s, 32, 13);
  auto t0 = std::chrono::steady_clock::now();
  std::clock_t c0 = std::clock();
  Calibrate(c.model, c.images.data(), c.n, c.options, [&](int done, int total, const std::string& label) {
    const auto t1 = std::chrono::steady_clock::now();
    const std::clock_t c1 = std::clock();
    std::printf("[%d/%d] %-18s wall %.2f s  cpu %.2f s\n", done, total, label.c_str(),
                std::chrono::duration<double>(t1 - t0).count(),
                static_cast<double>(c1 - c0) / CLOCKS_PER_SEC);
    std::fflush(stdout);
    t0 = t1;
    c0 = c1;
  });
}

}  // namespace
}  // namespace adalog::search
