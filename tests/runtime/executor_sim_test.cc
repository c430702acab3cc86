// The simulated (fake-quant) executor, the judge of the integer one, judged itself:
//  * every weight of the simulated model is quant/'s scalar FakeQuant of the FP32 weight, bit for
//    bit, and every other field is unchanged (tests/util/model_compare.h);
//  * every activation placement is bit-exact against quant/'s scalar FakeQuant, with every
//    quantizer kind seen at every placement it can take (counted);
//  * every op, fed the executor's own inputs, matches a plain scalar reference to FP32
//    accumulation error at 3, 4 and 8 bits (tests/util/sim_reference_ops.h), and the whole
//    forward matches the free-running scalar reference at 8 bits;
//  * FP32 equality when nothing is quantized, and the model file round trip through LoadModel.
#include "runtime/executor_sim.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "quant/error.h"
#include "quant/log_quantizers.h"
#include "quant/twin_uniform.h"
#include "quant/uniform.h"
#include "runtime/adalog_runtime.h"
#include "runtime/model_file.h"
#include "tests/util/exec_random_vit.h"
#include "tests/util/model_compare.h"
#include "tests/util/sim_hand_plan.h"
#include "tests/util/sim_reference_forward.h"
#include "tests/util/sim_reference_ops.h"

namespace adalog {
namespace {

using testing_util::kHandPlanChoices;
using testing_util::MakeHandPlan;
using testing_util::MakeRandomVit;
using testing_util::RandomVitSpec;

std::vector<float> RandomImages(const VitModel& m, int batch, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-2.f, 2.f);
  std::vector<float> x(static_cast<size_t>(batch) * m.embed.in_channels * m.embed.image_h *
                       m.embed.image_w);
  for (float& v : x) v = u(rng);
  return x;
}

QuantizedModel MakePlan(const VitModel& m, const std::vector<float>& images, int batch, int wb, int ab) {
  return MakeHandPlan(m, images, batch, wb, ab);
}

RandomVitSpec Spec(uint32_t seed) {
  RandomVitSpec s;
  s.depth = kHandPlanChoices;  // one block per quantizer combination of MakeHandPlan
  s.dim = 32;
  s.heads = 2;
  s.seed = seed;
  return s;
}

// The model variants the judge must handle: cls pooling, distilled, mean pooling, no class token
// with the position embedding on the patches only, tanh GELU.
struct Variant {
  const char* name;
  bool dist = false, mean_pool = false, no_cls = false, tanh = false;
};
const Variant kVariants[] = {
    {"cls", false, false, false, false},
    {"distilled", true, false, false, false},
    {"mean_pool_tanh", false, true, false, true},
    {"no_cls_patches_only", false, false, true, false},
};

RandomVitSpec VariantSpec(const Variant& v, uint32_t seed) {
  RandomVitSpec s = Spec(seed);
  s.dist = v.dist;
  s.mean_pool = v.mean_pool;
  s.no_cls = v.no_cls;
  if (v.no_cls) s.pos_mode = PosEmbedMode::kPatchesOnly;
  if (v.tanh) s.gelu = GeluKind::kTanh;
  return s;
}

// "placement/kind" of an activation quantizer, for the coverage counts.
std::string KindLabel(const ActQuant& a) {
  switch (a.kind) {
    case ActQuant::Kind::kNone: return "none";
    case ActQuant::Kind::kUniform: return "uniform";
    case ActQuant::Kind::kTwin: return "twin";
    case ActQuant::Kind::kLog: {
      std::string s = a.log.kind == LogKind::kAdaLog ? "adalog" : a.log.kind == LogKind::kLog2 ? "log2" : "logsqrt2";
      if (a.shift != 0.f) s += a.shift_folded ? "+shift_folded" : "+shift";
      return s;
    }
  }
  return "?";
}

// Wraps the executor's rewriter: checks every output element against quant/'s SCALAR FakeQuant of
// the input at that placement (bit-exact), and counts the taps seen, and per (placement, kind) the
// values seen and changed.
class CheckingRewriter : public Fp32Rewriter {
 public:
  CheckingRewriter(const QuantPlan& plan, const VitModel& m)
      : plan_(plan), inner_(MakeFakeQuantRewriter(plan, m)) {}
  void Rewrite(const TapInfo& t, float* d, int rows, int cols) override {
    const int64_t n = int64_t(rows) * cols;
    std::vector<float> in(d, d + n);
    inner_->Rewrite(t, d, rows, cols);
    ++count[t.tap];
    const std::string label = std::string(TapPointName(t.tap)) + "/" + Label(t);
    for (int64_t i = 0; i < n; ++i) {
      const float want = Expected(t, in[i]);
      uint32_t a, b;
      std::memcpy(&a, &d[i], 4);
      std::memcpy(&b, &want, 4);
      if (a != b) {
        ++mismatches;
        if (mismatches < 5) {
          ADD_FAILURE() << TapPointName(t.tap) << " block " << t.block << " head " << t.head
                        << " element " << i << ": in " << in[i] << " got " << d[i] << " want " << want;
        }
      }
      if (d[i] != in[i]) {
        ++changed;
        ++kind_changed[label];
      }
    }
    kind_seen[label] += n;
  }
  std::string Label(const TapInfo& t) const {
    const BlockQuant* b = t.block >= 0 ? &plan_.blocks[t.block] : nullptr;
    switch (t.tap) {
      case TapPoint::kQkvIn: return KindLabel(b->qkv.input);
      case TapPoint::kQ:
      case TapPoint::kK:
      case TapPoint::kV: return "uniform_per_head";
      case TapPoint::kAttnProbs: return KindLabel(b->attn.probs);
      case TapPoint::kProjIn: return KindLabel(b->proj.input);
      case TapPoint::kFc1In: return KindLabel(b->fc1.input);
      case TapPoint::kGeluOut: return KindLabel(b->fc2.input);
      case TapPoint::kHeadIn: return KindLabel(plan_.head.input);
      case TapPoint::kHeadDistIn: return KindLabel(plan_.head_dist.input);
      default: return "fp32";
    }
  }
  float Expected(const TapInfo& t, float x) const {
    const BlockQuant* b = t.block >= 0 ? &plan_.blocks[t.block] : nullptr;
    switch (t.tap) {
      case TapPoint::kQkvIn: return test::SimReferenceAct(b->qkv.input, x);
      case TapPoint::kQ: return UniformQuantizer(b->attn.q.head(t.head)).FakeQuant(x);
      case TapPoint::kK: return UniformQuantizer(b->attn.k.head(t.head)).FakeQuant(x);
      case TapPoint::kV: return UniformQuantizer(b->attn.v.head(t.head)).FakeQuant(x);
      case TapPoint::kAttnProbs: return test::SimReferenceAct(b->attn.probs, x);
      case TapPoint::kProjIn: return test::SimReferenceAct(b->proj.input, x);
      case TapPoint::kFc1In: return test::SimReferenceAct(b->fc1.input, x);
      case TapPoint::kGeluOut: return test::SimReferenceAct(b->fc2.input, x);
      case TapPoint::kHeadIn: return test::SimReferenceAct(plan_.head.input, x);
      case TapPoint::kHeadDistIn: return test::SimReferenceAct(plan_.head_dist.input, x);
      default: return x;  // the image stays FP32
    }
  }
  std::map<TapPoint, int> count;
  std::map<std::string, int64_t> kind_seen, kind_changed;
  int64_t mismatches = 0, changed = 0;

 private:
  const QuantPlan& plan_;
  std::unique_ptr<Fp32Rewriter> inner_;
};

class ExecutorSimBits : public ::testing::TestWithParam<std::tuple<int, int, bool>> {};

TEST_P(ExecutorSimBits, EveryPlacementBitExactAgainstScalarFakeQuant) {
  const auto [wb, ab, dist] = GetParam();
  RandomVitSpec s = Spec(11);
  s.dist = dist;
  const VitModel m = MakeRandomVit(s);
  const int batch = 3;
  const std::vector<float> x = RandomImages(m, batch, 5);
  const QuantizedModel qm = MakePlan(m, x, batch, wb, ab);
  const VitModel sim_model = MakeSimulatedModel(qm);
  ExecutorOptions eo;
  eo.max_batch = batch;
  eo.num_threads = 2;
  ExecutorFp32 exec(sim_model, eo);
  CheckingRewriter rw(qm.plan, sim_model);
  exec.SetRewriter(&rw);
  std::vector<float> logits(size_t(batch) * m.num_classes(), -777.f);
  exec.Run(x.data(), batch, logits.data());
  EXPECT_EQ(rw.mismatches, 0);
  // Not vacuous: quantization changed most values, and every placement was visited.
  EXPECT_GT(rw.changed, 1000);
  const int depth = static_cast<int>(m.blocks.size()), heads = m.blocks[0].heads;
  for (TapPoint t : {TapPoint::kQkvIn, TapPoint::kProjIn, TapPoint::kFc1In, TapPoint::kGeluOut}) {
    EXPECT_EQ(rw.count[t], depth) << TapPointName(t);
  }
  for (TapPoint t : {TapPoint::kQ, TapPoint::kK, TapPoint::kV, TapPoint::kAttnProbs}) {
    EXPECT_EQ(rw.count[t], depth * batch * heads) << TapPointName(t);
  }
  EXPECT_EQ(rw.count[TapPoint::kHeadIn], 1);
  EXPECT_EQ(rw.count[TapPoint::kHeadDistIn], dist ? 1 : 0);
  EXPECT_EQ(rw.count[TapPoint::kPatchEmbedIn], 1);
  // Every quantizer kind at every placement it can take was seen, and (kNone and the FP32 image
  // aside) changed values there, so each bit-exact comparison above had something to compare.
  std::set<std::string> want = {
      "qkv.in/uniform", "proj.in/uniform", "fc1.in/uniform", "head.in/uniform",
      "q/uniform_per_head", "k/uniform_per_head", "v/uniform_per_head",
      "softmax.out/adalog", "softmax.out/log2", "softmax.out/logsqrt2", "softmax.out/uniform",
      "softmax.out/none", "gelu.out/adalog+shift_folded", "gelu.out/adalog+shift",
      "gelu.out/log2+shift", "gelu.out/logsqrt2+shift_folded", "gelu.out/twin",
      "gelu.out/uniform", "patch_embed.in/fp32"};
  if (dist) want.insert("head_dist.in/uniform");
  std::set<std::string> seen;
  for (const auto& [label, n] : rw.kind_seen) seen.insert(label);
  EXPECT_EQ(seen, want);
  for (const std::string& label : want) {
    EXPECT_GT(rw.kind_seen[label], 0) << label;
    const bool identity = label == "softmax.out/none" || label == "patch_embed.in/fp32";
    if (identity) {
      EXPECT_EQ(rw.kind_changed[label], 0) << label;
    } else {
      EXPECT_GT(rw.kind_changed[label], rw.kind_seen[label] / 10) << label;
    }
  }
  // Weights: the simulated model is the FP32 model with every weight replaced by its scalar
  // FakeQuant, every other field unchanged (field by field, bit for bit).
  test::ExpectSameVitModel(test::SimReferenceWeights(qm), sim_model, "simulated model");
}

INSTANTIATE_TEST_SUITE_P(Bits, ExecutorSimBits,
                         ::testing::Values(std::make_tuple(4, 4, false), std::make_tuple(4, 4, true),
                                           std::make_tuple(3, 3, true), std::make_tuple(8, 8, false),
                                           std::make_tuple(4, 8, true)));

// Fraction of elements of `got` that differ from `fp32`.
double ChangedFraction(const std::vector<float>& fp32, const std::vector<float>& got) {
  if (fp32.size() != got.size() || fp32.empty()) return -1.0;
  int64_t n = 0;
  for (size_t i = 0; i < got.size(); ++i) n += got[i] != fp32[i];
  return double(n) / double(got.size());
}

// MakeSimulatedModel, whole model, every variant: each weight tensor is the per-element scalar
// FakeQuant of the (calibrated) FP32 weight, everything else is bit-for-bit the calibrated model,
// and every weight the plan names was quantized (a plan entry skipped, or left FP32, fails).
TEST(ExecutorSimTest, SimulatedModelIsScalarFakeQuantOfEveryWeightAndNothingElse) {
  for (const Variant& v : kVariants) {
    SCOPED_TRACE(v.name);
    const VitModel m = MakeRandomVit(VariantSpec(v, 61));
    const int batch = 2;
    const std::vector<float> x = RandomImages(m, batch, 7);
    const QuantizedModel qm = MakePlan(m, x, batch, 4, 4);
    const VitModel sim = MakeSimulatedModel(qm);
    test::ExpectSameVitModel(test::SimReferenceWeights(qm), sim, v.name);
    // Every weight tensor changed from FP32 (4-bit fake quant moves nearly every float); the count
    // pins the placement list: patch embed, 4 per block, head (and head_dist).
    int quantized = 0;
    auto check = [&](const std::vector<float>& fp32, const std::vector<float>& got, const std::string& what) {
      const double f = ChangedFraction(fp32, got);
      EXPECT_GT(f, 0.9) << what;
      quantized += f > 0.9;
    };
    check(m.embed.weight, sim.embed.weight, "patch_embed");
    for (size_t b = 0; b < m.blocks.size(); ++b) {
      const std::string pre = "block " + std::to_string(b) + " ";
      check(m.blocks[b].qkv.weight, sim.blocks[b].qkv.weight, pre + "qkv");
      check(m.blocks[b].proj.weight, sim.blocks[b].proj.weight, pre + "proj");
      check(m.blocks[b].fc1.weight, sim.blocks[b].fc1.weight, pre + "fc1");
      check(m.blocks[b].fc2.weight, sim.blocks[b].fc2.weight, pre + "fc2");
    }
    check(m.head.weight, sim.head.weight, "head");
    if (v.dist) check(m.head_dist.weight, sim.head_dist.weight, "head_dist");
    EXPECT_EQ(quantized, 2 + 4 * static_cast<int>(m.blocks.size()) + (v.dist ? 1 : 0));
    // The only rewritten bias: fc2's where the GELU shift is folded (method §2.6), which must equal
    // its definition bias - shift * rowsum(W_hat) (row sum in double, rounded once) computed here
    // from the FP32 bias and the scalar W_hat; where not folded, the FP32 bias.
    int folded = 0;
    for (size_t b = 0; b < m.blocks.size(); ++b) {
      const ActQuant& g = qm.plan.blocks[b].fc2.input;
      const LinearParams& fp = m.blocks[b].fc2;
      const UniformPerChannel& wq = qm.plan.blocks[b].fc2.weight;
      std::vector<float> want = fp.bias;
      if (g.kind == ActQuant::Kind::kLog && g.shift_folded) {
        ++folded;
        for (int o = 0; o < fp.out; ++o) {
          const UniformQuantizer u(wq.channel(o));
          double rowsum = 0;
          for (int i = 0; i < fp.in; ++i) rowsum += u.FakeQuant(fp.weight[size_t(o) * fp.in + i]);
          want[size_t(o)] = static_cast<float>(double(fp.bias[size_t(o)]) - double(g.shift) * rowsum);
        }
        EXPECT_GT(ChangedFraction(fp.bias, sim.blocks[b].fc2.bias), 0.9) << "block " << b;
      }
      EXPECT_EQ(0, std::memcmp(want.data(), sim.blocks[b].fc2.bias.data(), want.size() * 4)) << "block " << b;
    }
    EXPECT_EQ(folded, 2);  // MakeHandPlan choices 0 and 5
  }
}

// Every op, fed what the executor fed it, against the scalar reference (tests/util/
// sim_reference_ops.h), with the plan's real quantizers (every kind, real log bases) at 3, 4 and 8
// bits. The error is normalized: |got - want| / (sum |w x| + |b|) for dot products, / (1 + |want|)
// for LayerNorm, GELU, pooling and logits, absolute for softmax probabilities; it measures an FP32
// op against the same op in double. Measured (all 8 cases below, every op, this build): at most
// 2.7e-7 (ln1; 2.6e-7 for proj/fc2/attn_v). A wrong quantizer parameter or a skipped placement moves
// inputs by whole quantization steps; the deliberate breakages of executor_sim.cc tried when this
// was written (proj/fc2 input quantizers swapped, proj/fc2 weight quantizers swapped, block 2's fc1
// input left FP32, the head weight left FP32, q/k/v quantized with the next head's parameters)
// failed every case here, the smallest failing op error being 1.9e-3 (head weight left FP32, W8A8).
// kOpTol sits ~40x above the noise and ~200x below that.
constexpr double kOpTol = 1e-5;

struct OpCase {
  int wb, ab;
  Variant v;
};

void PrintTo(const OpCase& c, std::ostream* os) { *os << "W" << c.wb << "A" << c.ab << " " << c.v.name; }

class ExecutorSimOps : public ::testing::TestWithParam<OpCase> {};

TEST_P(ExecutorSimOps, EveryOpFedTheSameInputsMatchesTheScalarReference) {
  const OpCase c = GetParam();
  const VitModel m = MakeRandomVit(VariantSpec(c.v, 71));
  const int batch = 2;
  const std::vector<float> x = RandomImages(m, batch, 17);
  const QuantizedModel qm = MakePlan(m, x, batch, c.wb, c.ab);
  // The parts ExecutorSim is made of, with a recorder between the rewriter and the executor.
  ExecutorOptions eo;
  eo.max_batch = batch;
  eo.num_threads = 2;
  const VitModel sim_model = MakeSimulatedModel(qm);
  const std::unique_ptr<Fp32Rewriter> rewriter = MakeFakeQuantRewriter(qm.plan, sim_model);
  test::TapRecorder rec(rewriter.get());
  ExecutorFp32 exec(sim_model, eo);
  exec.SetRewriter(&rec);
  exec.SetObserver(&rec);
  std::vector<float> logits(size_t(batch) * m.num_classes(), -777.f);
  exec.Run(x.data(), batch, logits.data());
  // ... and they are what ExecutorSim runs: the same logits, bit for bit.
  ExecutorSim sim(qm, eo);
  std::vector<float> sim_logits(logits.size(), -555.f);
  sim.Run(x.data(), batch, sim_logits.data());
  EXPECT_EQ(0, std::memcmp(logits.data(), sim_logits.data(), logits.size() * 4));

  const std::vector<test::OpCheck> ops = test::CheckOpsTeacherForced(qm, x, batch, rec.rec);
  std::ostringstream report;
  report.precision(3);
  for (const test::OpCheck& op : ops) {
    report << "\n  " << op.op << ": " << op.values << " values, max err " << op.max_err << " at "
           << op.worst;
  }
  SCOPED_TRACE(report.str());
  EXPECT_EQ(ops.size(), c.v.dist ? 15u : 14u);
  double worst = 0;
  for (const test::OpCheck& op : ops) {
    EXPECT_FALSE(op.missing) << op.op << ": " << op.worst;
    EXPECT_GT(op.values, 0) << op.op;
    EXPECT_LE(op.max_err, kOpTol) << op.op << " at " << op.worst;
    worst = std::max(worst, op.max_err);
  }
  RecordProperty("max_normalized_op_error", (std::ostringstream() << worst).str());
  // Not the FP32 forward: quantization changed the logits.
  ExecutorFp32 fp(m, eo);
  std::vector<float> fp_logits(logits.size());
  fp.Run(x.data(), batch, fp_logits.data());
  EXPECT_NE(fp_logits, logits);
}

INSTANTIATE_TEST_SUITE_P(
    Plans, ExecutorSimOps,
    ::testing::Values(OpCase{4, 4, kVariants[0]}, OpCase{4, 4, kVariants[1]}, OpCase{4, 4, kVariants[2]},
                      OpCase{4, 4, kVariants[3]}, OpCase{3, 3, kVariants[1]}, OpCase{8, 8, kVariants[0]},
                      OpCase{8, 8, kVariants[2]}, OpCase{4, 8, kVariants[3]}),
    [](const ::testing::TestParamInfo<OpCase>& i) {
      return "W" + std::to_string(i.param.wb) + "A" + std::to_string(i.param.ab) + "_" + i.param.v.name;
    });

// End to end against the plain scalar reference (double accumulation, no shared code). Outside the
// quantizers both are FP32 forwards that differ by accumulation order (~1e-6 relative), which can
// move a value across a rounding boundary. A log quantizer's step is a fixed RATIO whatever the
// bits (x2 for log2), so one such flip moves a probability a lot; the end-to-end check therefore
// uses 8 bits with fine log bases (AdaLog q = 8, base 1.16), where one step is small and the logits
// agree to kLogitsTol relative to their range. Measured on these random models: scaling the input
// by (1 + 1e-5) moves both executors' logits identically by up to 1.6% of their range (rounding
// flips compound through 4 random blocks), so a few percent is the honest end-to-end tolerance.
// The tight checks are per placement (EveryPlacementBitExactAgainstScalarFakeQuant, bit-exact) and
// per op fed the executor's own inputs (EveryOpFedTheSameInputsMatchesTheScalarReference, FP32
// accumulation error, real log settings at 3 and 4 bits); this one checks the free-running chain.
// Depth 4 (MakeHandPlan's first four choices), as measured.
constexpr float kLogitsTol = 3e-2f;

TEST(ExecutorSimTest, MatchesScalarFakeQuantReferenceForward) {
  for (bool dist : {false, true}) {
    RandomVitSpec s = Spec(21);
    s.depth = 4;
    s.dist = dist;
    const VitModel m = MakeRandomVit(s);
    const int batch = 2;
    const std::vector<float> x = RandomImages(m, batch, 9);
    QuantizedModel qm = MakePlan(m, x, batch, 8, 8);
    for (BlockQuant& bq : qm.plan.blocks) {
      for (ActQuant* a : {&bq.attn.probs, &bq.fc2.input}) {
        if (a->kind == ActQuant::Kind::kLog) {
          a->log.kind = LogKind::kAdaLog;
          a->log.q = kAdaLogMinQ8Bit;
        }
      }
    }
    ExecutorOptions eo;
    eo.max_batch = batch;
    ExecutorSim sim(qm, eo);
    std::vector<float> got(size_t(batch) * m.num_classes(), -777.f);
    sim.Run(x.data(), batch, got.data());
    const std::vector<float> want = test::SimReferenceForward(qm, x, batch);
    float range = 0, diff = 0;
    for (size_t i = 0; i < want.size(); ++i) {
      range = std::max(range, std::fabs(want[i]));
      diff = std::max(diff, std::fabs(want[i] - got[i]));
    }
    EXPECT_GT(range, 0.1f);
    EXPECT_LE(diff, kLogitsTol * range) << "dist " << dist << " range " << range;
    // And it is not the FP32 forward: quantization changed the logits.
    ExecutorFp32 fp(m, eo);
    std::vector<float> fp_logits(got.size());
    fp.Run(x.data(), batch, fp_logits.data());
    EXPECT_NE(fp_logits, got);
  }
}

TEST(ExecutorSimTest, NothingQuantizedEqualsFp32BitForBit) {
  RandomVitSpec s = Spec(31);
  s.dist = true;
  const VitModel m = MakeRandomVit(s);
  QuantizedModel qm;
  qm.model = m;
  qm.plan.blocks.resize(m.blocks.size());  // every ActQuant kNone, every parameter set empty
  const int batch = 4;
  const std::vector<float> x = RandomImages(m, batch, 3);
  ExecutorOptions eo;
  eo.max_batch = batch;
  ExecutorSim sim(qm, eo);
  ExecutorFp32 fp(m, eo);
  std::vector<float> a(size_t(batch) * m.num_classes(), -1.f), b(a.size(), -2.f);
  sim.Run(x.data(), batch, a.data());
  fp.Run(x.data(), batch, b.data());
  EXPECT_EQ(0, std::memcmp(a.data(), b.data(), a.size() * sizeof(float)));
}

TEST(ExecutorSimTest, PlanShapeMismatchIsAnError) {
  const VitModel m = MakeRandomVit(Spec(41));
  const std::vector<float> x = RandomImages(m, 1, 3);
  QuantizedModel qm = MakePlan(m, x, 1, 4, 4);
  qm.plan.blocks[0].attn.q.scales.pop_back();
  qm.plan.blocks[0].attn.q.zero_points.pop_back();
  EXPECT_THROW({ ExecutorSim sim(qm, ExecutorOptions{}); }, Error);
  qm = MakePlan(m, x, 1, 4, 4);
  qm.plan.blocks.pop_back();
  EXPECT_THROW({ ExecutorSim sim(qm, ExecutorOptions{}); }, Error);
}

TEST(ExecutorSimTest, QuantizedFileRoundTripThroughLoadModelGivesIdenticalLogits) {
  const VitModel m = MakeRandomVit(Spec(51));
  const int batch = 3;
  const std::vector<float> x = RandomImages(m, batch, 13);
  const QuantizedModel qm = MakePlan(m, x, batch, 4, 4);
  const std::string dir = ::testing::TempDir() + "adalog_sim_test";
  std::filesystem::create_directories(dir);
  const std::string path = dir + "/model.adalog";
  SaveQuantizedModel(qm, path);
  auto loaded = LoadModel(path);
  ASSERT_EQ(loaded->format, ModelFormat::kQuantized);
  SessionOptions so;
  so.max_batch = batch;
  so.simulate = true;
  Session session(loaded, so);
  EXPECT_TRUE(session.simulated());
  const std::vector<float> from_file =
      session.Run(x.data(), {batch, m.embed.in_channels, m.embed.image_h, m.embed.image_w});
  ExecutorOptions eo;
  eo.max_batch = batch;
  ExecutorSim sim(qm, eo);
  std::vector<float> in_memory(from_file.size(), -777.f);
  sim.Run(x.data(), batch, in_memory.data());
  EXPECT_EQ(0, std::memcmp(from_file.data(), in_memory.data(), in_memory.size() * sizeof(float)));
  // The default session on a quantized model runs a quantized executor (integer, or simulated
  // where the integer one declines), never FP32.
  Session session2(loaded, SessionOptions{batch, 0, false});
  EXPECT_NE(std::string(session2.executor_kind()), "fp32");
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace adalog
