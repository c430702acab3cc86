// The FP32 executor on Swin (executor_fp32_swin.cc over the Swin steps of the schedule): every tiny
// V1 export (models/tiny/swin/) matches PyTorch's logits (.output.npy) to 1e-4 relative with the
// same top-1, at batch 1 and at the stored batch, with the same bytes on 1 and 2 threads; the
// trained models/shapes_swin reaches its recorded FP32 top-1 on the shapes test set; taps fire
// (window probabilities per (image, head)) and rewrites apply; the integer executor and the
// model file refuse Swin with a clear error (the simulated executor: swin_sim_test.cc).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "quant/error.h"
#include "runtime/data/npy.h"
#include "runtime/executor_fp32.h"
#include "runtime/executor_int.h"
#include "runtime/executor_sim.h"
#include "runtime/model_file.h"
#include "runtime/onnx_importer.h"
#include "runtime/vit_schedule.h"
#include "tests/util/expect_error.h"
#include "tests/util/tiny_swin.h"

namespace adalog {
namespace {

using testing_util::kSwinDir;
constexpr auto& kV1 = testing_util::kSwinV1Exports;

std::vector<float> RunFp32(const VitModel& m, const float* x, int batch, int threads) {
  ExecutorOptions o;
  o.max_batch = batch;
  o.num_threads = threads;
  ExecutorFp32 ex(m, o);
  std::vector<float> y(static_cast<size_t>(batch) * m.num_classes(), -12345.f);  // sentinel
  ex.Run(x, batch, y.data());
  return y;
}

int Argmax(const float* p, int n) { return static_cast<int>(std::max_element(p, p + n) - p); }

TEST(SwinFp32, ScheduleHasTheSwinSteps) {
  const VitModel m = ImportOnnxVit(kSwinDir + "tiny_swin_timm3_op17_dyn.onnx");
  const Schedule s = BuildSchedule(m);
  int window = 0, merge = 0, attention = 0;
  for (const Step& st : s.steps) {
    window += st.op == StepOp::kWindowAttention;
    merge += st.op == StepOp::kPatchMerge;
    attention += st.op == StepOp::kAttention;
  }
  EXPECT_EQ(window, 6);
  EXPECT_EQ(merge, 2);
  EXPECT_EQ(attention, 0);
  EXPECT_EQ(s.blocks.size(), 6u);
  // Stage 2 (4x4 grid, width 48): its qkv runs on 16 tokens per image, 144 columns.
  const Step& qkv5 = s.steps[static_cast<size_t>(s.blocks[5].first + 1)];
  EXPECT_EQ(qkv5.op, StepOp::kQkv);
  EXPECT_EQ(qkv5.tokens, 16);
  EXPECT_EQ(qkv5.cols, 144);
  // A merge's steps: gather (mixing), then its norm and reduction (row-local, its input tapped
  // as merge.in) with the next stage's first LN1 and qkv in the same row stage.
  EXPECT_NE(DescribeSchedule(s).find("mixing: patch_merge(x->hidden)\nstage"), std::string::npos)
      << DescribeSchedule(s);
  EXPECT_NE(DescribeSchedule(s).find(
                "rows: merge_norm(hidden->ln) merge_reduce(ln->x ~merge.in) ln1[2]"),
            std::string::npos) << DescribeSchedule(s);
}

TEST(SwinFp32, TinyExportsMatchPyTorch) {
  for (const char* name : kV1) {
    SCOPED_TRACE(name);
    const VitModel m = ImportOnnxVit(kSwinDir + name + ".onnx");
    const NpyFloatArray x = ReadNpyFloat32(kSwinDir + name + ".input.npy");
    const NpyFloatArray want = ReadNpyFloat32(kSwinDir + name + ".output.npy");
    const int batch = static_cast<int>(x.shape[0]), classes = m.num_classes();
    ASSERT_GE(batch, 2);
    ASSERT_EQ(want.data.size(), static_cast<size_t>(batch) * classes);
    const size_t image = x.data.size() / static_cast<size_t>(batch);
    double scale = 0;  // the logits' spread: a degenerate (constant) output would fail here
    for (float v : want.data) scale = std::max(scale, static_cast<double>(std::fabs(v)));
    ASSERT_GT(scale, 0.1);
    const std::vector<float> got1 = RunFp32(m, x.data.data(), batch, 1);
    const std::vector<float> got2 = RunFp32(m, x.data.data(), batch, 2);
    EXPECT_EQ(std::memcmp(got1.data(), got2.data(), got1.size() * sizeof(float)), 0)
        << "1 and 2 threads differ";
    double err = 0;
    for (size_t i = 0; i < got1.size(); ++i) {
      err = std::max(err, std::fabs(got1[i] - want.data[i]) / scale);
    }
    EXPECT_LT(err, 1e-4) << "max |logit difference| / max |logit|";
    for (int b = 0; b < batch; ++b) {
      EXPECT_EQ(Argmax(&got1[static_cast<size_t>(b) * classes], classes),
                Argmax(&want.data[static_cast<size_t>(b) * classes], classes)) << "image " << b;
      // Batch 1 gives the same bytes as the image's row of the batched run.
      const std::vector<float> one = RunFp32(m, x.data.data() + b * image, 1, 2);
      EXPECT_EQ(std::memcmp(one.data(), &got1[static_cast<size_t>(b) * classes],
                            classes * sizeof(float)), 0) << "image " << b << " alone";
    }
  }
}

TEST(SwinFp32, ShapesSwinTop1MatchesInfoJson) {
  const std::string dir = std::string(ADALOG_SOURCE_DIR) + "/models/";
  const VitModel m = ImportOnnxVit(dir + "shapes_swin/shapes_swin.onnx");
  // Its own stored PyTorch logits first (8 images).
  const NpyFloatArray x8 = ReadNpyFloat32(dir + "shapes_swin/shapes_swin.input.npy");
  const NpyFloatArray y8 = ReadNpyFloat32(dir + "shapes_swin/shapes_swin.output.npy");
  const std::vector<float> got8 = RunFp32(m, x8.data.data(), static_cast<int>(x8.shape[0]), 2);
  double scale = 0, err = 0;
  for (float v : y8.data) scale = std::max(scale, static_cast<double>(std::fabs(v)));
  for (size_t i = 0; i < got8.size(); ++i) err = std::max(err, std::fabs(got8[i] - y8.data[i]) / scale);
  EXPECT_LT(err, 1e-4);
  // The test set: info.json records fp32_correct 316 of 400 (fp32_top1 0.79).
  const NpyFloatArray x = ReadNpyFloat32(dir + "shapes/test_x.npy");
  const std::vector<int64_t> labels = ReadNpyLabels(dir + "shapes/test_y.npy");
  const int n = static_cast<int>(x.shape[0]), classes = m.num_classes();
  ASSERT_EQ(n, 400);
  const std::vector<float> logits = RunFp32(m, x.data.data(), n, 2);
  int correct = 0;
  for (int i = 0; i < n; ++i) correct += Argmax(&logits[static_cast<size_t>(i) * classes], classes) == labels[static_cast<size_t>(i)];
  EXPECT_EQ(correct, 316);
}

// Records every tap; optionally zeroes the head's input (an input-side tap) in place.
class Recorder : public Fp32Observer, public Fp32Rewriter {
 public:
  struct Seen {
    TapInfo info;
    int rows, cols;
    std::vector<float> data;
  };
  std::vector<Seen> seen;
  int rewrites = 0;
  bool zero_head_in = false;
  void OnTensor(const TapInfo& info, const float* data, int rows, int cols) override {
    seen.push_back({info, rows, cols, std::vector<float>(data, data + static_cast<size_t>(rows) * cols)});
  }
  void Rewrite(const TapInfo& info, float* data, int rows, int cols) override {
    ++rewrites;
    if (zero_head_in && info.tap == TapPoint::kHeadIn) std::fill(data, data + static_cast<size_t>(rows) * cols, 0.f);
  }
};

TEST(SwinFp32, TapsSeeWindowProbsAndRewritesApply) {
  const VitModel m = ImportOnnxVit(kSwinDir + "tiny_swin_tv_op17_static_pad.onnx");
  const NpyFloatArray x = ReadNpyFloat32(kSwinDir + std::string("tiny_swin_tv_op17_static_pad.input.npy"));
  const int batch = static_cast<int>(x.shape[0]);
  const std::vector<float> plain = RunFp32(m, x.data.data(), batch, 2);
  ExecutorOptions o;
  o.max_batch = batch;
  o.num_threads = 2;
  ExecutorFp32 ex(m, o);
  Recorder rec;
  ex.SetObserver(&rec);
  ex.SetRewriter(&rec);
  std::vector<float> got(plain.size());
  ex.Run(x.data.data(), batch, got.data());
  // A rewriter that changes nothing leaves the bytes as they are.
  EXPECT_EQ(std::memcmp(got.data(), plain.data(), got.size() * sizeof(float)), 0);
  ASSERT_GT(rec.rewrites, 0);
  ASSERT_FALSE(rec.seen.empty());
  EXPECT_EQ(rec.seen.front().info.tap, TapPoint::kPatchEmbedIn);
  EXPECT_EQ(rec.seen.back().info.tap, TapPoint::kLogits);
  // Block 1 (stage 0, 18x18 padded to 20x20, window 4, shift 2): 25 windows of 16 rows per
  // (image, head); every probability row sums to 1 and the masked pairs get ~0.
  const std::vector<float>& mask = m.blocks[1].attn_mask;
  ASSERT_EQ(m.blocks[1].shift_size, 2);
  int probs = 0, masked = 0;
  for (const auto& t : rec.seen) {
    if (t.info.tap != TapPoint::kAttnProbs || t.info.block != 1) continue;
    ++probs;
    ASSERT_EQ(t.rows, 400);
    ASSERT_EQ(t.cols, 16);
    for (int r = 0; r < t.rows; ++r) {
      double sum = 0;
      for (int j = 0; j < 16; ++j) {
        const float p = t.data[static_cast<size_t>(r) * 16 + j];
        sum += p;
        if (mask[static_cast<size_t>(r / 16) * 256 + (r % 16) * 16 + j] != 0.f) {
          ++masked;
          EXPECT_LT(p, 1e-30f);
        }
      }
      EXPECT_NEAR(sum, 1.0, 1e-5);
    }
  }
  EXPECT_EQ(probs, batch * m.blocks[1].heads);
  EXPECT_GT(masked, 0);
  // The rewriter's edits reach the GEMMs: a zero head input gives the head bias as logits.
  rec.zero_head_in = true;
  ex.Run(x.data.data(), batch, got.data());
  for (int b = 0; b < batch; ++b) {
    for (int c = 0; c < m.num_classes(); ++c) {
      EXPECT_EQ(got[static_cast<size_t>(b) * m.num_classes() + c], m.head.bias[static_cast<size_t>(c)]);
    }
  }
}

TEST(SwinFp32, ForkOutlivesItsSourceAndGivesTheSameBytes) {
  const VitModel m = ImportOnnxVit(kSwinDir + "tiny_swin_timm_op13_dyn_pad.onnx");
  const NpyFloatArray x = ReadNpyFloat32(kSwinDir + std::string("tiny_swin_timm_op13_dyn_pad.input.npy"));
  const int batch = static_cast<int>(x.shape[0]);
  const std::vector<float> want = RunFp32(m, x.data.data(), batch, 2);
  ExecutorOptions o;
  o.max_batch = batch;
  o.num_threads = 2;
  auto src = std::make_unique<ExecutorFp32>(m, o);
  std::unique_ptr<ExecutorFp32> fork = src->Fork();
  src.reset();  // the fork keeps its own schedule and workspace, shares the weights
  std::vector<float> got(want.size(), -1.f);
  fork->Run(x.data.data(), batch, got.data());
  EXPECT_EQ(std::memcmp(got.data(), want.data(), got.size() * sizeof(float)), 0);
}

TEST(SwinFp32, QuantizedPathsRefuseSwinClearly) {
  const VitModel m = ImportOnnxVit(kSwinDir + "tiny_swin_tv_op17_static_pad.onnx");
  QuantizedModel qm;
  qm.model = m;
  qm.plan.blocks.resize(m.blocks.size());
  // The simulated executor runs Swin (swin_sim_test.cc); a plan without the merges' entries is
  // refused by name.
  test::ExpectErrorContaining([&] { ExecutorSim sim(qm, ExecutorOptions()); },
                              "patch-merge quantizers");
  // The integer executor runs Swin (swin_int_test.cc); a plan without quantizers is refused
  // naming the first one it lacks, up front too (Session then falls back to the simulated one).
  const std::string why =
      "integer path does not support an unquantized (FP32) input for block 0 qkv input";
  test::ExpectErrorContaining([&] { ExecutorInt ex(qm, ExecutorOptions()); }, why);
  EXPECT_EQ(ExecutorInt::WhyUnsupported(qm.plan, qm.model), why);
  // The model file stores Swin (model_file_swin_test.cc) but, like the simulated executor, not a
  // plan without the merges' entries.
  test::ExpectErrorContaining([&] { SerializeQuantizedModel(qm); }, "patch-merge quantizers");
}

}  // namespace
}  // namespace adalog
