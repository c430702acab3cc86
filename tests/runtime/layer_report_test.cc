// runtime/layer_report.h against the executors themselves, on the shipped W4A4 files of
// models/int_test/ (digits and shapes): the report's numbers are recomputed here from plain
// ExecutorFp32 / ExecutorSim runs and from a direct double-precision fc2.
#include "runtime/layer_report.h"

#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <string>
#include <vector>

#include "quant/error.h"
#include "runtime/adalog_runtime.h"
#include "runtime/executor_fp32.h"
#include "runtime/executor_sim.h"
#include "runtime/metrics.h"
#include "runtime/model_file.h"

namespace adalog {
namespace {

const std::string kSrc = ADALOG_SOURCE_DIR;
constexpr int kBatch = 8;
constexpr int64_t kImages = 20;  // 3 batches, the last one partial

// Every tensor at one tap, per block, appended batch after batch (so in image order).
class TapCopies : public Fp32Observer {
 public:
  explicit TapCopies(TapPoint tap) : tap_(tap) {}
  void OnTensor(const TapInfo& t, const float* d, int rows, int cols) override {
    if (t.tap != tap_) return;
    auto& v = by_block[t.block];
    v.insert(v.end(), d, d + static_cast<int64_t>(rows) * cols);
  }
  std::map<int, std::vector<float>> by_block;

 private:
  TapPoint tap_;
};

// The report's definitions, written out plainly: pooled SQNR / relative error, mean per-image
// cosine.
OutputError Plain(const std::vector<float>& q, const std::vector<float>& f, int64_t images) {
  EXPECT_EQ(q.size(), f.size());
  const size_t per = f.size() / static_cast<size_t>(images);
  double noise = 0, signal = 0, cos_sum = 0;
  for (int64_t i = 0; i < images; ++i) {
    double ab = 0, aa = 0, bb = 0;
    for (size_t k = static_cast<size_t>(i) * per; k < static_cast<size_t>(i + 1) * per; ++k) {
      noise += (static_cast<double>(q[k]) - f[k]) * (static_cast<double>(q[k]) - f[k]);
      signal += static_cast<double>(f[k]) * f[k];
      ab += static_cast<double>(q[k]) * f[k];
      aa += static_cast<double>(q[k]) * q[k];
      bb += static_cast<double>(f[k]) * f[k];
    }
    cos_sum += ab / std::sqrt(aa * bb);
  }
  return {10 * std::log10(signal / noise), std::sqrt(noise / signal),
          cos_sum / static_cast<double>(images)};
}

const OpReport& Find(const LayerReport& r, const std::string& name) {
  for (const OpReport& op : r.ops) {
    if (op.name == name) return op;
  }
  ADD_FAILURE() << "no op " << name;
  return r.ops.front();
}

const QuantizerStats& FindQ(const OpReport& op, const std::string& name) {
  for (const QuantizerStats& q : op.quantizers) {
    if (q.name == name) return q;
  }
  ADD_FAILURE() << op.name << " has no quantizer " << name;
  return op.quantizers.front();
}

class LayerReportShipped : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    const std::string name = GetParam();
    qm_ = LoadQuantizedModel(kSrc + "/models/int_test/" + name + "_w4a4.adq");
    fp32_ = LoadModel(kSrc + "/models/" + name + "/" + name + "_vit.onnx");
    data_ = ImageSource::OpenNpy(kSrc + "/models/" + name + "/test_x.npy");
    LayerReportOptions o;
    o.batch = kBatch;
    o.num_threads = 2;
    report_ = BuildLayerReport(fp32_->model, qm_, data_, kImages, o);
  }

  // Runs both executors on the report's images in the report's batches, with observers.
  void RunExecutors(Fp32Observer* fp_obs, Fp32Observer* sim_obs, std::vector<float>* fp_logits,
                    std::vector<float>* sim_logits) {
    ExecutorOptions eo;
    eo.max_batch = kBatch;
    eo.num_threads = 2;
    ExecutorFp32 fp(fp32_->model, eo);
    ExecutorSim sim(qm_, eo);
    fp.SetObserver(fp_obs);
    sim.SetObserver(sim_obs);
    const int classes = qm_.model.num_classes();
    fp_logits->assign(static_cast<size_t>(kImages * classes), -1e30f);
    sim_logits->assign(fp_logits->size(), -1e30f);
    std::vector<float> images(static_cast<size_t>(kBatch * data_.image_floats()));
    for (int64_t i = 0; i < kImages; i += kBatch) {
      const int b = static_cast<int>(std::min<int64_t>(kBatch, kImages - i));
      data_.Load(i, b, images.data());
      fp.Run(images.data(), b, fp_logits->data() + i * classes);
      sim.Run(images.data(), b, sim_logits->data() + i * classes);
    }
  }

  QuantizedModel qm_;
  std::shared_ptr<const LoadedModel> fp32_;
  ImageSource data_;
  LayerReport report_;
};

TEST_P(LayerReportShipped, OpsInScheduleOrderEndingWithLogits) {
  const size_t depth = qm_.model.blocks.size();
  ASSERT_EQ(report_.ops.size(), 1 + 6 * depth + 1 + 1);  // patch_embed, 6 per block, head, logits
  EXPECT_EQ(report_.ops.front().name, "patch_embed");
  EXPECT_EQ(report_.ops[1].name, "block0.qkv");
  EXPECT_EQ(report_.ops[6].name, "block0.fc2");
  EXPECT_EQ(report_.ops.back().name, "logits");
  EXPECT_EQ(report_.images, kImages);
  // Not vacuous: real, moderate damage everywhere (W4A4 on a trained model).
  for (const OpReport& op : report_.ops) {
    SCOPED_TRACE(op.name);
    EXPECT_GT(op.accumulated.sqnr_db, 5.0);
    EXPECT_LT(op.accumulated.sqnr_db, 60.0);
    EXPECT_GT(op.local.sqnr_db, 5.0);
    EXPECT_LT(op.local.cosine, 1.0);
  }
}

// The accumulated side IS the simulated executor, and the FP32 side the FP32 executor.
TEST_P(LayerReportShipped, LogitsAreTheExecutorsLogitsBitForBit) {
  TapCopies none(TapPoint::kLogits);
  std::vector<float> fp, sim;
  RunExecutors(&none, &none, &fp, &sim);
  EXPECT_EQ(report_.fp32_logits, fp);
  EXPECT_EQ(report_.quant_logits, sim);
  const int classes = qm_.model.num_classes();
  const LogitsFidelity fid = CompareLogits(sim.data(), fp.data(), kImages, classes);
  const OpReport& logits = report_.ops.back();
  // Same doubles in the same order as `adalog eval --reference-logits`.
  EXPECT_EQ(logits.accumulated.cosine, fid.mean_cosine);
  EXPECT_EQ(report_.top1_agreement, fid.top1_agreement);
  const OutputError plain = Plain(sim, fp, kImages);
  EXPECT_NEAR(logits.accumulated.sqnr_db, plain.sqnr_db, 1e-9);
  EXPECT_NEAR(logits.accumulated.rel_error, plain.rel_error, 1e-12);
}

// One op's accumulated numbers recomputed from the executors' own taps (the last block's fc1
// output, [B*T][hidden] per batch), and the quantizers' zero-coded counts from the quantized
// tensors the simulated executor's observer sees.
TEST_P(LayerReportShipped, AccumulatedMetricsMatchTheExecutorsTaps) {
  TapCopies fp_fc1(TapPoint::kFc1Out), sim_fc1(TapPoint::kFc1Out);
  std::vector<float> fp, sim;
  RunExecutors(&fp_fc1, &sim_fc1, &fp, &sim);
  const int last = static_cast<int>(qm_.model.blocks.size()) - 1;
  const OutputError plain = Plain(sim_fc1.by_block.at(last), fp_fc1.by_block.at(last), kImages);
  const OpReport& op = Find(report_, "block" + std::to_string(last) + ".fc1");
  EXPECT_NEAR(op.accumulated.sqnr_db, plain.sqnr_db, 1e-9);
  EXPECT_NEAR(op.accumulated.rel_error, plain.rel_error, 1e-12);
  EXPECT_NEAR(op.accumulated.cosine, plain.cosine, 1e-12);

  for (TapPoint tap : {TapPoint::kAttnProbs, TapPoint::kQkvIn}) {
    TapCopies fq(tap);
    std::vector<float> a, b;
    RunExecutors(nullptr, &fq, &a, &b);
    for (int blk = 0; blk <= last; ++blk) {
      const std::vector<float>& v = fq.by_block.at(blk);
      int64_t zeros = 0;
      for (float x : v) zeros += x == 0.f;
      const std::string p = "block" + std::to_string(blk);
      const QuantizerStats& q = tap == TapPoint::kAttnProbs
                                    ? FindQ(Find(report_, p + ".attn_v"), "probs")
                                    : FindQ(Find(report_, p + ".qkv"), "input");
      SCOPED_TRACE(p + " " + q.name);
      EXPECT_EQ(q.values, static_cast<int64_t>(v.size()));
      EXPECT_EQ(q.zero_coded, zeros);
      EXPECT_GT(zeros, 0);
      EXPECT_LT(zeros, q.values);
      int64_t total = 0;
      for (int64_t c : q.code_histogram) total += c;
      EXPECT_EQ(total, q.values);
    }
  }
}

// Local: fc2 of block 1 recomputed in double from the FP32 GELU output, the plan's fc2 input
// quantizer and the simulated model's (fake-quantized) fc2 weight and (shift-folded) bias.
TEST_P(LayerReportShipped, LocalFc2MatchesADirectComputation) {
  TapCopies gelu(TapPoint::kGeluOut), fc2(TapPoint::kFc2Out);
  struct Both : Fp32Observer {
    TapCopies* a;
    TapCopies* b;
    void OnTensor(const TapInfo& t, const float* d, int r, int c) override {
      a->OnTensor(t, d, r, c);
      b->OnTensor(t, d, r, c);
    }
  } both;
  both.a = &gelu;
  both.b = &fc2;
  std::vector<float> fp, sim;
  RunExecutors(&both, nullptr, &fp, &sim);
  const int blk = 1;
  const VitModel sm = MakeSimulatedModel(qm_);
  const LinearParams& lin = sm.blocks[blk].fc2;
  std::vector<float> g = gelu.by_block.at(blk);
  FakeQuantizeAct(qm_.plan.blocks[blk].fc2.input, g.data(), static_cast<int64_t>(g.size()));
  const int64_t rows = static_cast<int64_t>(g.size()) / lin.in;
  std::vector<float> y(static_cast<size_t>(rows * lin.out));
  for (int64_t r = 0; r < rows; ++r) {
    for (int o = 0; o < lin.out; ++o) {
      double s = lin.bias.empty() ? 0.0 : lin.bias[static_cast<size_t>(o)];
      for (int k = 0; k < lin.in; ++k) {
        s += static_cast<double>(g[static_cast<size_t>(r * lin.in + k)]) *
             lin.weight[static_cast<size_t>(o) * lin.in + k];
      }
      y[static_cast<size_t>(r * lin.out + o)] = static_cast<float>(s);
    }
  }
  const OutputError plain = Plain(y, fc2.by_block.at(blk), kImages);
  const OpReport& op = Find(report_, "block1.fc2");
  // The executor's float GEMM against this double one: ~1e-6 relative on outputs whose error is
  // ~1e-1 relative (SQNR ~20 dB), so the dB agree to far better than 1e-3.
  EXPECT_NEAR(op.local.sqnr_db, plain.sqnr_db, 1e-3);
  EXPECT_NEAR(op.local.cosine, plain.cosine, 1e-6);
  // Local differs from accumulated past the first block (errors of earlier ops reach its input).
  EXPECT_GT(op.local.sqnr_db, op.accumulated.sqnr_db);
  // The patch embedding's input is the image in both runs: local and accumulated are the same.
  EXPECT_EQ(report_.ops.front().local.sqnr_db, report_.ops.front().accumulated.sqnr_db);
  EXPECT_EQ(report_.ops.front().local.cosine, report_.ops.front().accumulated.cosine);
}

// Post-Softmax / post-GELU quantizers carry the value histogram and three level sets.
TEST_P(LayerReportShipped, LogDomainQuantizersCarryHistogramAndAlternatives) {
  for (const OpReport& op : report_.ops) {
    for (const QuantizerStats& q : op.quantizers) {
      const bool expect = (op.op == "attn_v" && q.name == "probs") || op.op == "fc2";
      ASSERT_EQ(q.has_domain, expect) << op.name << " " << q.name;
      if (!expect) continue;
      int64_t total = q.histogram.below + q.histogram.above;
      for (int64_t c : q.histogram.counts) total += c;
      EXPECT_EQ(total, q.values);
      ASSERT_EQ(q.levels.size(), 3u);
      EXPECT_EQ(q.levels[0].name, "plan");
      EXPECT_EQ(q.levels[0].kind, "adalog");
      EXPECT_EQ(q.levels[1].kind, "log2");
      EXPECT_EQ(q.levels[2].kind, "uniform");
      for (const QuantizerLevels& l : q.levels) {
        EXPECT_EQ(l.levels.size(),
                  l.kind == "uniform" ? 16u : 17u);  // 4 bits (+ the log zero code)
        // Same top level: exactly for the log kinds (level 0 is 1 * scale); the uniform one's step
        // is float(top / 15), so 15 * step is top to float rounding.
        if (l.kind == "uniform") {
          EXPECT_NEAR(l.levels.back(), q.levels[0].levels.back(), 1e-6 * q.levels[0].levels.back());
        } else {
          EXPECT_EQ(l.levels.back(), q.levels[0].levels.back());
        }
      }
      // The plan quantizer's own SQNR is the "plan" entry's.
      EXPECT_DOUBLE_EQ(q.sqnr_db, q.levels[0].sqnr_db);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Shipped, LayerReportShipped, ::testing::Values("digits", "shapes"));

TEST(LayerReport, RefusesAnFp32ModelOfAnotherShape) {
  const QuantizedModel qm = LoadQuantizedModel(kSrc + "/models/int_test/digits_w4a4.adq");
  auto other = LoadModel(kSrc + "/models/shapes/shapes_vit.onnx");
  const ImageSource data = ImageSource::OpenNpy(kSrc + "/models/digits/test_x.npy");
  try {
    BuildLayerReport(other->model, qm, data, 4, {});
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("does not match the quantized model"), std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace adalog
