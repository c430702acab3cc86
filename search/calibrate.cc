// Calibration driver (method §4.2): streamed capture per block, recipes per op, plan assembly.
#include "search/calibrate.h"

#include <cmath>
#include <vector>

#include "quant/error.h"
#include "search/capture.h"

namespace adalog::search {
namespace {

void Validate(const VitModel& model, const float* images, int n, const CalibOptions& o) {
  ValidateVitModel(model);
  ValidateRecipeOptions(o.recipe);
  ADALOG_CHECK(o.num_images >= 1, "calibration: num_images must be >= 1, got ", o.num_images);
  ADALOG_CHECK(n >= o.num_images, "calibration: ", o.num_images, " calibration images asked, but only ",
               n, " given");
  ADALOG_CHECK(images != nullptr, "calibration: no image data");
  ADALOG_CHECK(o.batch >= 1, "calibration: batch must be >= 1, got ", o.batch);
  const int64_t per = static_cast<int64_t>(model.embed.in_channels) * model.embed.image_h *
                      model.embed.image_w;
  for (int i = 0; i < o.num_images; ++i)
    for (int64_t j = 0; j < per; ++j) {
      const float v = images[i * per + j];
      ADALOG_CHECK(std::isfinite(v), "calibration: image ", i, " has a non-finite value (",
                   v, ") at element ", j);
    }
}

}  // namespace

QuantizedModel Calibrate(const VitModel& model, const float* images, int n,
                         const CalibOptions& options, const ProgressFn& progress) {
  Validate(model, images, n, options);
  const RecipeOptions& o = options.recipe;
  const int num = options.num_images;
  QuantizedModel qm;
  qm.model = model;
  QuantPlan& plan = qm.plan;
  plan.weight_bits = o.weight_bits;
  plan.act_bits = o.act_bits;
  plan.softmax_quantizer = o.softmax;
  plan.gelu_quantizer = o.gelu;
  plan.ln_reparam = o.ln_reparam;
  plan.fpcs = o.fpcs;
  plan.blocks.resize(model.blocks.size());
  // Swin: one reduction Linear per patch merge, calibrated with the stage's last block (whose
  // captures hold its FP input and output); stage index per merge, in order.
  std::vector<size_t> merge_stages;
  for (size_t s = 0; s < model.swin.stages.size(); ++s)
    if (model.swin.stages[s].has_merge) merge_stages.push_back(s);
  plan.merges.resize(merge_stages.size());
  size_t next_merge = 0;

  const bool dist = model.pooling == Pooling::kClsDistAvg;
  const int total = 1 + 6 * static_cast<int>(model.blocks.size()) + static_cast<int>(merge_stages.size()) +
                    1 + (dist ? 1 : 0);
  int done = 0;
  auto step = [&](const std::string& label) {
    ++done;
    if (progress) progress(done, total, label);
  };

  // Captures come from the ORIGINAL model: FP inputs and FP targets (method §4.2), streamed block
  // by block in the official order (patch embedding, blocks, head): one FP forward in total,
  // and only the current block's tensors are held.
  CaptureRunner cap(model, images, num, options.batch, options.threads);
  {
    EdgeCapture e;
    cap.CapturePatchEmbed(&e);
    const int64_t prow = static_cast<int64_t>(num) * model.embed.num_patches();
    plan.patch_embed_weight =
        CalibratePatchEmbed(e.patch_in.data(), prow, e.patch_out.data(), model.embed, o);
    step("patch_embed");
  }
  for (size_t b = 0; b < model.blocks.size(); ++b) {
    BlockCapture c;
    cap.CaptureBlock(static_cast<int>(b), &c);
    BlockParams& mb = qm.model.blocks[b];
    BlockQuant& bq = plan.blocks[b];
    const int64_t rows = c.rows();
    const std::string pre = "block " + std::to_string(b) + " ";
    bq.qkv = CalibrateLnLinear(c.qkv_in.data(), rows, c.qkv_out.data(), &mb.ln1, &mb.qkv, o);
    step(pre + "qkv");
    bq.proj = CalibrateUniformLinear(c.proj_in.data(), rows, c.proj_out.data(), mb.proj,
                                     o.act_bits, o);
    step(pre + "proj");
    // Attention per group (a ViT image, a Swin window): q@k^T and attn@v never pair rows of two
    // groups. Swin's bias and mask are added in FP32 after q@k^T, outside its quantizers.
    CalibrateQkMatmul(c.q.data(), c.k.data(), c.heads, c.groups, c.group_rows, c.head_dim, o,
                      &bq.attn);
    step(pre + "matmul1");
    CalibrateAvMatmul(c.probs.data(), c.v.data(), c.heads, c.groups, c.group_rows, c.head_dim, o,
                      &bq.attn);
    step(pre + "matmul2");
    bq.fc1 = CalibrateLnLinear(c.fc1_in.data(), rows, c.fc1_out.data(), &mb.ln2, &mb.fc1, o);
    step(pre + "fc1");
    bq.fc2 = CalibratePostGeluLinear(c.gelu_out.data(), rows, c.fc2_out.data(), &mb.fc2, o);
    step(pre + "fc2");
    if (!c.merge_in.empty()) {
      // The merge's reduction: uniform input + FPCS, weight per output row, with the merge norm
      // reparameterized into it as the official code does (its 'reduction' Linear takes the
      // PatchMerging norm as prev_layer), like qkv / fc1 with ln1 / ln2.
      ADALOG_CHECK(next_merge < merge_stages.size(), "calibration: more patch-merge captures than merges");
      PatchMergeParams& mp = qm.model.swin.stages[merge_stages[next_merge]].merge;
      plan.merges[next_merge] = CalibrateLnLinear(c.merge_in.data(), c.merge_rows(), c.merge_out.data(),
                                                  &mp.norm, &mp.reduction, o);
      step("merge " + std::to_string(next_merge) + " reduction");
      ++next_merge;
    }
  }
  ADALOG_CHECK(next_merge == merge_stages.size(), "calibration: ", merge_stages.size() - next_merge,
               " patch merges were not captured");
  {
    EdgeCapture e;
    cap.CaptureHead(&e);
    // Head: qhead_a_bit = a_bit, no LN reparam (method §3.2, 8.13).
    plan.head = CalibrateUniformLinear(e.head_in.data(), num, e.head_out.data(), model.head,
                                       o.act_bits, o);
    step("head");
    if (dist) {
      plan.head_dist = CalibrateUniformLinear(e.head_dist_in.data(), num, e.head_dist_out.data(),
                                              model.head_dist, o.act_bits, o);
      step("head_dist");
    }
  }
  // Provenance only, and nothing timing- or machine-dependent: the same inputs and seed give the
  // same file bytes (the CLI prints the search time instead of storing it).
  plan.meta = {{"seed", std::to_string(options.seed)},
               {"calib_images", std::to_string(num)},
               {"rounds", std::to_string(o.rounds)}};
  return qm;
}

}  // namespace adalog::search
