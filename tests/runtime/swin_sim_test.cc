// The simulated executor on Swin (executor_sim.cc + sim_swin.cc over the Swin FP32 executor's
// taps): the scalar Swin reference (tests/util/swin_reference_forward.cc) without hooks matches
// the FP32 executor and PyTorch; with a hand plan (every quantizer kind of sim_hand_plan.h, the
// patch merges' uniform input and weight) the simulated executor matches the simulated reference
// on every tiny V1 export; the masked (shifted-window) probabilities reach the log quantizer as
// ~0 values; 8-bit plans land closer to FP32 than 4-bit ones.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "runtime/data/npy.h"
#include "runtime/executor_fp32.h"
#include "runtime/executor_sim.h"
#include "runtime/onnx_importer.h"
#include "tests/util/sim_hand_plan.h"
#include "tests/util/sim_reference_forward.h"
#include "tests/util/tiny_swin.h"
#include "tests/util/vit_reference_forward.h"

namespace adalog {
namespace {

using testing_util::MakeHandPlan;

using testing_util::kSwinDir;
constexpr auto& kV1 = testing_util::kSwinV1Exports;

struct Export {
  VitModel m;
  std::vector<float> x;     // the stored input [batch][C][H][W]
  std::vector<float> want;  // PyTorch's logits
  int batch = 0;
};

Export Load(const std::string& name) {
  Export e;
  e.m = ImportOnnxVit(kSwinDir + name + ".onnx");
  const NpyFloatArray x = ReadNpyFloat32(kSwinDir + name + ".input.npy");
  const NpyFloatArray y = ReadNpyFloat32(kSwinDir + name + ".output.npy");
  e.x = x.data;
  e.want = y.data;
  e.batch = static_cast<int>(x.shape[0]);
  return e;
}

template <typename Exec>
std::vector<float> RunOn(Exec& ex, const Export& e) {
  std::vector<float> y(static_cast<size_t>(e.batch) * e.m.num_classes(), -12345.f);  // sentinel
  ex.Run(e.x.data(), e.batch, y.data());
  return y;
}

// max |a - b| and max |b|.
std::pair<float, float> MaxDiff(const std::vector<float>& a, const std::vector<float>& b) {
  float diff = 0, range = 0;
  for (size_t i = 0; i < b.size(); ++i) {
    diff = std::max(diff, std::fabs(a[i] - b[i]));
    range = std::max(range, std::fabs(b[i]));
  }
  return {diff, range};
}

ExecutorOptions Opts(int batch, int threads) {
  ExecutorOptions o;
  o.max_batch = batch;
  o.num_threads = threads;
  return o;
}

// The oracle first: the scalar Swin reference is PyTorch's forward (same bound as the FP32
// executor's, SwinFp32.TinyExportsMatchPyTorch).
TEST(SwinSim, ScalarReferenceMatchesPyTorch) {
  for (const char* name : kV1) {
    SCOPED_TRACE(name);
    const Export e = Load(name);
    const std::vector<float> ref = test::VitReferenceForward(e.m, e.x, e.batch);
    ASSERT_EQ(ref.size(), e.want.size());
    const auto [diff, range] = MaxDiff(ref, e.want);
    EXPECT_GT(range, 0.f);
    EXPECT_LE(diff, 1e-4f * range);
  }
}

// The executor accumulates in float, the reference in double; a rounding flip at one quantizer
// would compound through the blocks (ViT's free-running chain allows 3e-2 for it,
// executor_sim_test.cc kLogitsTol), but on these tiny Swin exports none happens: measured max
// |sim - reference| / max |reference| 5.9e-8 .. 2.1e-7 over every export, 1 and 2 threads, and
// ADALOG_ISA = ref, avx2 and the native AVX-512 (2026-12-07, AMD EPYC Zen 4). 1e-5 keeps a 50x
// margin over that and fails a wrong scale or level by far less than one quantization step.
constexpr float kLogitsTol = 1e-5f;

TEST(SwinSim, HandPlanMatchesSimulatedReference) {
  for (const char* name : kV1) {
    SCOPED_TRACE(name);
    const Export e = Load(name);
    const QuantizedModel qm = MakeHandPlan(e.m, e.x, e.batch, 4, 4);
    ASSERT_FALSE(qm.plan.merges.empty());
    for (int threads : {1, 2}) {
      ExecutorSim sim(qm, Opts(e.batch, threads));
      const std::vector<float> got = RunOn(sim, e);
      const std::vector<float> want = test::SimReferenceForward(qm, e.x, e.batch);
      const auto [diff, range] = MaxDiff(got, want);
      EXPECT_GT(range, 0.f);
      EXPECT_LE(diff, kLogitsTol * range) << "threads " << threads;
      std::printf("%s threads %d: max |sim - reference| / max |reference| = %.3g\n", name,
                  threads, diff / range);
      // Quantization changed the logits (not the FP32 forward).
      ExecutorFp32 fp(e.m, Opts(e.batch, threads));
      EXPECT_NE(RunOn(fp, e), got);
    }
  }
}

// The merge's quantizers are applied: dropping them (kNone input, empty weight parameters)
// changes the simulated logits, and the reference follows the same change.
TEST(SwinSim, MergeQuantizersTakeEffect) {
  const Export e = Load("tiny_swin_timm3_op17_dyn");
  QuantizedModel qm = MakeHandPlan(e.m, e.x, e.batch, 4, 4);
  ASSERT_FALSE(qm.plan.merges.empty());
  ExecutorSim with(qm, Opts(e.batch, 1));
  const std::vector<float> a = RunOn(with, e);
  for (LinearQuant& q : qm.plan.merges) q = LinearQuant();
  ExecutorSim without(qm, Opts(e.batch, 1));
  const std::vector<float> b = RunOn(without, e);
  EXPECT_NE(a, b);
  const auto [diff, range] = MaxDiff(b, test::SimReferenceForward(qm, e.x, e.batch));
  EXPECT_LE(diff, kLogitsTol * range);
}

// Masked entries of a shifted block are ~0 probabilities at the kAttnProbs tap and leave the
// log quantizer as 0 (its zero state), with no special case.
class ProbsProbe : public Fp32Observer {
 public:
  explicit ProbsProbe(int block) : block_(block) {}
  void OnTensor(const TapInfo& t, const float* d, int rows, int cols) override {
    if (t.tap != TapPoint::kAttnProbs || t.block != block_) return;
    for (int64_t i = 0; i < int64_t{rows} * cols; ++i) {
      if (d[i] < 1e-30f) ++tiny;
      if (d[i] == 0.f) ++zero;
      ++total;
    }
  }
  int64_t tiny = 0, zero = 0, total = 0;

 private:
  int block_;
};

TEST(SwinSim, MaskedProbabilitiesGoThroughTheLogZeroState) {
  const Export e = Load("tiny_swin_tv_op17_static_pad");
  const QuantizedModel qm = MakeHandPlan(e.m, e.x, e.batch, 4, 4);
  // Block 1 is shifted and gets a log2 probability quantizer (sim_hand_plan.h choice 1).
  ASSERT_GT(e.m.blocks.size(), 1u);
  ASSERT_GT(e.m.blocks[1].shift_size, 0);
  ASSERT_EQ(qm.plan.blocks[1].attn.probs.kind, ActQuant::Kind::kLog);
  ProbsProbe fp32_probe(1);
  ExecutorFp32 fp(e.m, Opts(e.batch, 1));
  fp.SetObserver(&fp32_probe);
  RunOn(fp, e);
  // The -100 mask makes some FP32 probabilities (almost) zero.
  EXPECT_GT(fp32_probe.tiny, 0) << "total " << fp32_probe.total;
  ProbsProbe sim_probe(1);  // after the rewrite: the quantized probabilities
  ExecutorSim sim(qm, Opts(e.batch, 1));
  sim.SetObserver(&sim_probe);
  RunOn(sim, e);
  EXPECT_GE(sim_probe.zero, fp32_probe.tiny);
  EXPECT_LT(sim_probe.zero, sim_probe.total);
}

// Higher bits approach FP32: the hand plan at W8A8 is closer to the FP32 logits than at W4A4.
TEST(SwinSim, EightBitsCloserToFp32ThanFourBits) {
  for (const char* name : {"tiny_swin_timm_op17_dyn", "tiny_swin_tv_op13_dyn_pad"}) {
    SCOPED_TRACE(name);
    const Export e = Load(name);
    ExecutorFp32 fp(e.m, Opts(e.batch, 1));
    const std::vector<float> ref = RunOn(fp, e);
    float d[2];
    for (int k = 0; k < 2; ++k) {
      const int bits = k == 0 ? 4 : 8;
      ExecutorSim sim(MakeHandPlan(e.m, e.x, e.batch, bits, bits), Opts(e.batch, 1));
      d[k] = MaxDiff(RunOn(sim, e), ref).first;
    }
    EXPECT_LT(d[1], d[0]);
    EXPECT_GT(d[1], 0.f);
  }
}

}  // namespace
}  // namespace adalog
