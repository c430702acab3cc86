// Calibrate's wiring: every placement of the plan (and every rewritten tensor of the model) must be
// exactly what its recipe (search/recipes.h) gives on that placement's own FP32 capture
// (search/capture.h). The recipes are tested alone on synthetic data (recipes_test.cc); this
// catches the driver handing a recipe another op's capture of the same shape, the wrong weights
// or the wrong bit width, which still gives a valid plan that passes every other test.
//
// The taps come from the ORIGINAL model, as in Calibrate (method §4.2: every op is calibrated on FP
// inputs and FP targets of the unquantized, un-rewritten model). The rewritten model computes the
// same function only up to float rounding, so its taps could not reproduce the parameters bit for
// bit. Random-weight models: wiring only, never accuracy.
#include <gtest/gtest.h>

#include <string>
#include <tuple>
#include <vector>

#include "search/calibrate.h"
#include "search/capture.h"
#include "search/recipes.h"
#include "tests/search/calib_case.h"
#include "tests/util/exec_random_vit.h"
#include "tests/util/model_compare.h"

namespace adalog::search {
namespace {

using test::ExpectSameQuantPlan;
using test::ExpectSameVitModel;
using test::SameBits;
using testing_util::RandomVitSpec;

// Re-derives Calibrate's result op by op from CaptureRunner's taps and the recipes, then compares
// plan and model bit for bit.
void CheckWiring(const test::CalibCase& cal) {
  const QuantizedModel got = cal.Calibrate();
  const VitModel& m = cal.model;
  const std::vector<float>& images = cal.images;
  const int n = cal.n;
  const CalibOptions& o = cal.options;
  const RecipeOptions& r = o.recipe;
  QuantizedModel want;
  want.model = m;
  want.plan.blocks.resize(m.blocks.size());
  CaptureRunner cap(m, images.data(), n, o.batch, o.threads);
  EdgeCapture e;
  cap.CapturePatchEmbed(&e);
  want.plan.patch_embed_weight = CalibratePatchEmbed(
      e.patch_in.data(), static_cast<int64_t>(n) * m.embed.num_patches(), e.patch_out.data(), m.embed, r);
  for (size_t b = 0; b < m.blocks.size(); ++b) {
    BlockCapture c;
    cap.CaptureBlock(static_cast<int>(b), &c);
    ASSERT_GT(c.rows(), 0);
    BlockParams& mb = want.model.blocks[b];
    BlockQuant& bq = want.plan.blocks[b];
    bq.qkv = CalibrateLnLinear(c.qkv_in.data(), c.rows(), c.qkv_out.data(), &mb.ln1, &mb.qkv, r);
    bq.proj = CalibrateUniformLinear(c.proj_in.data(), c.rows(), c.proj_out.data(), mb.proj, r.act_bits, r);
    CalibrateQkMatmul(c.q.data(), c.k.data(), c.heads, c.images, c.tokens, c.head_dim, r, &bq.attn);
    CalibrateAvMatmul(c.probs.data(), c.v.data(), c.heads, c.images, c.tokens, c.head_dim, r, &bq.attn);
    // Sensitivity: fc1's recipe on proj's capture (the same [rows][dim] shape as fc1's input)
    // must give another plan, or a swap of the two could not be seen here.
    std::vector<float> proj_in = c.proj_in;  // the LN recipe rewrites its input in place
    LayerNormParams ln2 = mb.ln2;
    LinearParams fc1 = mb.fc1;
    const LinearQuant swapped = CalibrateLnLinear(proj_in.data(), c.rows(), c.fc1_out.data(), &ln2, &fc1, r);
    bq.fc1 = CalibrateLnLinear(c.fc1_in.data(), c.rows(), c.fc1_out.data(), &mb.ln2, &mb.fc1, r);
    EXPECT_FALSE(SameBits(swapped.weight.scales, bq.fc1.weight.scales) &&
                 swapped.weight.zero_points == bq.fc1.weight.zero_points &&
                 swapped.input.uniform.params.scale == bq.fc1.input.uniform.params.scale &&
                 swapped.input.uniform.params.zero_point == bq.fc1.input.uniform.params.zero_point)
        << "block " << b << ": fc1's recipe gives the same plan on proj's capture; the check is blind";
    bq.fc2 = CalibratePostGeluLinear(c.gelu_out.data(), c.rows(), c.fc2_out.data(), &mb.fc2, r);
  }
  EdgeCapture h;
  cap.CaptureHead(&h);
  want.plan.head = CalibrateUniformLinear(h.head_in.data(), n, h.head_out.data(), m.head, r.act_bits, r);
  if (m.pooling == Pooling::kClsDistAvg) {
    want.plan.head_dist =
        CalibrateUniformLinear(h.head_dist_in.data(), n, h.head_dist_out.data(), m.head_dist, r.act_bits, r);
  }
  // Every field of the plan and of the rewritten model; the plan's header (checked against the
  // options one by one below) and meta come from the run itself.
  const QuantPlan& g = got.plan;
  QuantPlan& w = want.plan;
  std::tie(w.weight_bits, w.act_bits, w.softmax_quantizer, w.gelu_quantizer, w.ln_reparam, w.fpcs, w.meta) =
      std::tie(g.weight_bits, g.act_bits, g.softmax_quantizer, g.gelu_quantizer, g.ln_reparam, g.fpcs, g.meta);
  ExpectSameQuantPlan(want.plan, got.plan, "plan");
  ExpectSameVitModel(want.model, got.model, "rewritten model");
  // The plan's header follows the options.
  EXPECT_EQ(got.plan.weight_bits, r.weight_bits);
  EXPECT_EQ(got.plan.act_bits, r.act_bits);
  EXPECT_EQ(got.plan.softmax_quantizer, r.softmax);
  EXPECT_EQ(got.plan.gelu_quantizer, r.gelu);
  EXPECT_EQ(got.plan.ln_reparam, r.ln_reparam);
  EXPECT_EQ(got.plan.fpcs, r.fpcs);
}

RandomVitSpec WiringSpec() {
  RandomVitSpec s;
  s.Shape(32, 2, 2, 16, 4, 10);
  s.dist = true;  // head_dist too
  s.seed = 21;
  return s;
}

TEST(CalibrateWiring, DefaultRecipeEveryPlacementFromItsOwnCapture) {
  test::CalibCase c(WiringSpec(), 3, 22);
  c.options.batch = 2;  // more than one executor batch per capture
  c.options.recipe.rounds = 1;  // the wiring does not depend on the rounds; keeps the test short
  CheckWiring(c);
}

TEST(CalibrateWiring, OtherQuantizersAndBitWidths) {
  // Different weight and activation bits (a swapped bit width shows), uniform softmax, twin GELU
  // (no bias fold), no LN reparam, single-grid search.
  test::CalibCase c(WiringSpec(), 3, 23);
  RecipeOptions& r = c.options.recipe;
  r.weight_bits = 5;
  r.act_bits = 3;
  r.softmax = SoftmaxQuantizer::kUniform;
  r.gelu = GeluQuantizer::kTwin;
  r.ln_reparam = false;
  r.fpcs = false;
  r.rounds = 1;
  CheckWiring(c);
}

}  // namespace
}  // namespace adalog::search
