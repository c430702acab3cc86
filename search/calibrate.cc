// Calibration driver (method §4.2): streamed capture per block, recipes per op, plan assembly.
#include "search/calibrate.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <memory>
#include <vector>

#include "quant/error.h"
#include "quant/uniform.h"
#include "runtime/executor_fp32.h"
#include "runtime/executor_sim.h"
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

// One qkv / fc1 calibrated with the LN reparameterization, held beside the plain variant (which
// goes into qm) until the whole-model choice of RecipeOptions::ln_reparam_select.
struct ReparamVariant {
  LayerNormParams ln;
  LinearParams lin;
  LinearQuant quant;
};

// Logits of `num` images [num][C][H][W] on the FP32 executor (qm == nullptr: `model`) or the
// simulated one (qm), `batch` images per run. Deterministic for any thread count (both executors).
std::vector<float> CalibrationLogits(const VitModel& model, const QuantizedModel* qm,
                                     const float* images, int num, int batch, int threads) {
  ExecutorOptions eo;
  eo.max_batch = std::min(batch, num);
  eo.num_threads = threads;
  const int64_t per = static_cast<int64_t>(model.embed.in_channels) * model.embed.image_h *
                      model.embed.image_w;
  const int classes = model.num_classes();
  std::vector<float> logits(static_cast<size_t>(num) * classes);
  std::unique_ptr<ExecutorFp32> fp;
  std::unique_ptr<ExecutorSim> sim;
  if (qm != nullptr) {
    sim = std::make_unique<ExecutorSim>(*qm, eo);
  } else {
    fp = std::make_unique<ExecutorFp32>(model, eo);
  }
  for (int i = 0; i < num; i += eo.max_batch) {
    const int b = std::min(eo.max_batch, num - i);
    float* out = logits.data() + static_cast<size_t>(i) * classes;
    if (sim) {
      sim->Run(images + i * per, b, out);
    } else {
      fp->Run(images + i * per, b, out);
    }
  }
  return logits;
}

double SumSquaredDiff(const std::vector<float>& a, const std::vector<float>& b) {
  double e = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    const double d = static_cast<double>(a[i]) - b[i];
    e += d * d;
  }
  return e;
}

// Diagnostics only (ADALOG_SEARCH_STATS): the relative output error ||Q(x) Q(W)^T + b - y||^2 /
// ||y||^2 of a calibrated Linear over all rows, over the prefix-token rows (class / distillation
// token, the rows the head reads in the last block; 0 without one) and over the patch rows; and the relative
// error of its weight and input quantizers, and the mean over weight rows of max|w| / rms(w) (how
// far the per-row grid's range stretches past the typical entry). x [images * tokens][in] in
// lin's parameterization.
void PrintLinearErrors(const char* label, int block, bool reparam, const float* x, const float* y,
                       int64_t rows, int tokens, int prefix, const LinearParams& lin,
                       const LinearQuant& q) {
  const int K = lin.in, N = lin.out;
  std::vector<float> wq(lin.weight.size()), xq(static_cast<size_t>(rows) * K);
  FakeQuantize(q.weight, lin.weight.data(), {lin.out, lin.in}, wq.data());
  std::copy(x, x + rows * K, xq.begin());
  FakeQuantizeAct(q.input, xq.data(), rows * K);
  double e[2] = {0, 0}, yy[2] = {0, 0}, xe[2] = {0, 0}, xx[2] = {0, 0}, we = 0, ww = 0;
  for (size_t i = 0; i < wq.size(); ++i) {
    we += (static_cast<double>(wq[i]) - lin.weight[i]) * (static_cast<double>(wq[i]) - lin.weight[i]);
    ww += static_cast<double>(lin.weight[i]) * lin.weight[i];
  }
  double crest = 0;
  for (int n = 0; n < N; ++n) {
    double mx = 0, ss = 0;
    for (int k = 0; k < K; ++k) {
      const double w = lin.weight[static_cast<size_t>(n) * K + k];
      mx = std::max(mx, std::fabs(w));
      ss += w * w;
    }
    crest += ss > 0 ? mx / std::sqrt(ss / K) : 0.0;
  }
  for (int64_t t = 0; t < rows; ++t) {
    const int g = (t % tokens) < prefix ? 0 : 1;
    for (int k = 0; k < K; ++k) {
      const double d = static_cast<double>(xq[t * K + k]) - x[t * K + k];
      xe[g] += d * d;
      xx[g] += static_cast<double>(x[t * K + k]) * x[t * K + k];
    }
    for (int n = 0; n < N; ++n) {
      double acc = lin.bias.empty() ? 0.0 : lin.bias[static_cast<size_t>(n)];
      for (int k = 0; k < K; ++k) acc += static_cast<double>(xq[t * K + k]) * wq[static_cast<size_t>(n) * K + k];
      const double d = acc - y[t * N + n];
      e[g] += d * d;
      yy[g] += static_cast<double>(y[t * N + n]) * y[t * N + n];
    }
  }
  std::fprintf(stderr,
               "[search] block %d %s reparam %-3s: output rel. error all %.5f, prefix %.5f, patches "
               "%.5f; weight %.5f (row max/rms %.2f); input prefix %.5f, patches %.5f\n",
               block, label, reparam ? "on" : "off", (e[0] + e[1]) / (yy[0] + yy[1]),
               prefix > 0 ? e[0] / yy[0] : 0.0, e[1] / yy[1], we / ww, crest / N,
               prefix > 0 ? xe[0] / xx[0] : 0.0, xe[1] / xx[1]);
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
  // ADALOG_SEARCH_STATS also prints each step's wall time (capture included), to find where a
  // long calibration goes.
  const bool step_times = std::getenv("ADALOG_SEARCH_STATS") != nullptr;
  auto process_cpu = [] {
    timespec ts{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
  };
  auto last = std::chrono::steady_clock::now();
  double last_cpu = process_cpu();
  auto step = [&](const std::string& label) {
    ++done;
    if (step_times) {
      const auto now = std::chrono::steady_clock::now();
      const double cpu = process_cpu();
      std::fprintf(stderr, "[search] step %d/%d %s: %.2f s wall, %.2f s CPU\n", done, total,
                   label.c_str(), std::chrono::duration<double>(now - last).count(), cpu - last_cpu);
      last = now;
      last_cpu = cpu;
    }
    if (progress) progress(done, total, label);
  };

  // Captures come from the ORIGINAL model: FP inputs and FP targets (method §4.2), streamed block
  // by block in the official order (patch embedding, blocks, head): one FP forward in total,
  // and only the current block's tensors are held.
  CaptureRunner cap(model, images, num, options.batch, options.threads);

  // qkv / fc1 (recipe B). With ln_reparam_select, qm gets the plain variant and `variant` the
  // reparameterized one (x is rewritten by the second call only); the choice comes at the end.
  // Without it the vectors stay empty and `variant` is null (never indexed: UBSan).
  const bool select = o.ln_reparam && o.ln_reparam_select;
  const bool stats = std::getenv("ADALOG_SEARCH_STATS") != nullptr;
  RecipeOptions plain = o;
  plain.ln_reparam = false;
  std::vector<ReparamVariant> reparam_qkv(select ? model.blocks.size() : 0),
      reparam_fc1(select ? model.blocks.size() : 0);
  auto ln_linear = [&](int block, const char* label, float* x, const float* y, int tokens,
                       LayerNormParams* ln, LinearParams* lin, ReparamVariant* variant) {
    const int64_t rows = static_cast<int64_t>(num) * tokens;
    if (!select) return CalibrateLnLinear(x, rows, y, ln, lin, o);
    const LinearQuant q = CalibrateLnLinear(x, rows, y, ln, lin, plain);
    if (stats) PrintLinearErrors(label, block, false, x, y, rows, tokens, model.num_prefix_tokens(), *lin, q);
    variant->ln = *ln;
    variant->lin = *lin;
    variant->quant = CalibrateLnLinear(x, rows, y, &variant->ln, &variant->lin, o);
    if (stats)
      PrintLinearErrors(label, block, true, x, y, rows, tokens, model.num_prefix_tokens(),
                        variant->lin, variant->quant);
    return q;
  };
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
    bq.qkv = ln_linear(static_cast<int>(b), "qkv", c.qkv_in.data(), c.qkv_out.data(), c.tokens,
                       &mb.ln1, &mb.qkv, select ? &reparam_qkv[b] : nullptr);
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
    bq.fc1 = ln_linear(static_cast<int>(b), "fc1", c.fc1_in.data(), c.fc1_out.data(), c.tokens,
                       &mb.ln2, &mb.fc1, select ? &reparam_fc1[b] : nullptr);
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
  if (select) {
    // The whole-model choice: both variants differ only in the LayerNorms, qkv and fc1 (every
    // other recipe runs on FP inputs and FP targets, so it is the same for both).
    QuantizedModel rep = qm;
    rep.plan.ln_reparam = true;
    for (size_t b = 0; b < model.blocks.size(); ++b) {
      rep.model.blocks[b].ln1 = reparam_qkv[b].ln;
      rep.model.blocks[b].qkv = reparam_qkv[b].lin;
      rep.plan.blocks[b].qkv = reparam_qkv[b].quant;
      rep.model.blocks[b].ln2 = reparam_fc1[b].ln;
      rep.model.blocks[b].fc1 = reparam_fc1[b].lin;
      rep.plan.blocks[b].fc1 = reparam_fc1[b].quant;
    }
    plan.ln_reparam = false;
    const std::vector<float> fp =
        CalibrationLogits(model, nullptr, images, num, options.batch, options.threads);
    const double e_rep = SumSquaredDiff(
        CalibrationLogits(model, &rep, images, num, options.batch, options.threads), fp);
    const double e_plain = SumSquaredDiff(
        CalibrationLogits(model, &qm, images, num, options.batch, options.threads), fp);
    if (stats)
      std::fprintf(stderr,
                   "[search] LN reparam: calibration logits squared error %.6g with, %.6g without "
                   "(FP32 logits energy %.6g) -> %s\n",
                   e_rep, e_plain, SumSquaredDiff(fp, std::vector<float>(fp.size(), 0.0f)),
                   e_rep <= e_plain ? "on" : "off");
    if (e_rep <= e_plain) qm = std::move(rep);
  }
  // Provenance only, and nothing timing- or machine-dependent: the same inputs and seed give the
  // same file bytes (the CLI prints the search time instead of storing it).
  plan.meta = {{"seed", std::to_string(options.seed)},
               {"calib_images", std::to_string(num)},
               {"rounds", std::to_string(o.rounds)}};
  return qm;
}

}  // namespace adalog::search
