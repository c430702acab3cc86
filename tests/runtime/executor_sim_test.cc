// The simulated (fake-quant) executor: every placement bit-exact against quant/'s scalar
// FakeQuant, the whole forward against a plain scalar fake-quant reference, FP32 equality when
// nothing is quantized, and the quantized model file round trip through LoadModel / Session.
#include "runtime/executor_sim.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>
#include <map>
#include <tuple>
#include <vector>

#include "quant/error.h"
#include "quant/log_quantizers.h"
#include "quant/twin_uniform.h"
#include "quant/uniform.h"
#include "runtime/adalog_runtime.h"
#include "runtime/model_file.h"
#include "tests/util/exec_random_vit.h"
#include "tests/util/sim_reference_forward.h"

namespace adalog {
namespace {

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

// Min/max of every FP32 tap, keyed by (tap, block, head).
class RangeObserver : public Fp32Observer {
 public:
  using Key = std::tuple<int, int, int>;
  void OnTensor(const TapInfo& t, const float* d, int rows, int cols) override {
    auto& r = ranges[{static_cast<int>(t.tap), t.block, t.head}];
    for (int64_t i = 0; i < int64_t(rows) * cols; ++i) {
      r.first = std::min(r.first, d[i]);
      r.second = std::max(r.second, d[i]);
    }
  }
  std::pair<float, float> Get(TapPoint tap, int block, int head = -1) const {
    auto it = ranges.find({static_cast<int>(tap), block, head});
    EXPECT_TRUE(it != ranges.end());
    return it->second;
  }
  std::map<Key, std::pair<float, float>> ranges;
  static constexpr float kInf = std::numeric_limits<float>::infinity();
};

UniformParams MinMaxParams(float lo, float hi, int bits) {
  lo = std::min(lo, 0.f);
  hi = std::max(hi, 0.f);
  const int levels = (1 << bits) - 1;
  UniformParams p;
  p.bits = bits;
  p.scale = std::max(hi - lo, 1e-6f) / levels;
  p.zero_point = std::clamp(static_cast<int32_t>(std::nearbyint(-lo / p.scale)), 0, levels);
  return p;
}

UniformPerChannel RowQuant(const std::vector<float>& w, int out, int in, int bits) {
  UniformPerChannel q;
  q.bits = bits;
  for (int o = 0; o < out; ++o) {
    const auto [lo, hi] = std::minmax_element(w.begin() + int64_t(o) * in, w.begin() + int64_t(o + 1) * in);
    const UniformParams p = MinMaxParams(*lo, *hi, bits);
    q.scales.push_back(p.scale);
    q.zero_points.push_back(p.zero_point);
  }
  return q;
}

ActQuant UniformAct(std::pair<float, float> r, int bits) {
  ActQuant a;
  a.kind = ActQuant::Kind::kUniform;
  a.uniform.params = MinMaxParams(r.first, r.second, bits);
  return a;
}

// Per-head ranges merged over the images.
UniformPerHead HeadQuant(const RangeObserver& obs, TapPoint tap, int block, int heads, int bits) {
  UniformPerHead q;
  q.bits = bits;
  for (int h = 0; h < heads; ++h) {
    float lo = RangeObserver::kInf, hi = -RangeObserver::kInf;
    for (const auto& [key, r] : obs.ranges) {
      if (std::get<0>(key) == static_cast<int>(tap) && std::get<1>(key) == block &&
          std::get<2>(key) == h) {
        lo = std::min(lo, r.first);
        hi = std::max(hi, r.second);
      }
    }
    const UniformParams p = MinMaxParams(lo, hi, bits);
    q.scales.push_back(p.scale);
    q.zero_points.push_back(p.zero_point);
  }
  return q;
}

// A hand-made plan from FP32 min/max ranges, exercising every quantizer kind across the blocks:
// softmax AdaLog / log2 / log-sqrt2 / uniform, post-GELU shift-AdaLog folded / shift-log2 not
// folded / twin uniform / uniform. Rewrites the fc2 bias where the shift is folded.
QuantizedModel MakePlan(const VitModel& m, const std::vector<float>& images, int batch, int wb,
                        int ab) {
  RangeObserver obs;
  {
    ExecutorOptions eo;
    eo.max_batch = batch;
    eo.num_threads = 1;
    ExecutorFp32 fp(m, eo);
    fp.SetObserver(&obs);
    std::vector<float> logits(size_t(batch) * m.num_classes());
    fp.Run(images.data(), batch, logits.data());
  }
  QuantizedModel qm;
  qm.model = m;
  QuantPlan& p = qm.plan;
  p.weight_bits = wb;
  p.act_bits = ab;
  const int pk = m.embed.in_channels * m.embed.patch * m.embed.patch;
  p.patch_embed_weight = RowQuant(m.embed.weight, m.dim, pk, wb);
  for (size_t b = 0; b < m.blocks.size(); ++b) {
    const int bi = static_cast<int>(b);
    BlockParams& mb = qm.model.blocks[b];
    BlockQuant bq;
    bq.qkv.weight = RowQuant(mb.qkv.weight, mb.qkv.out, mb.qkv.in, wb);
    bq.qkv.input = UniformAct(obs.Get(TapPoint::kQkvIn, bi), ab);
    bq.proj.weight = RowQuant(mb.proj.weight, mb.proj.out, mb.proj.in, wb);
    bq.proj.input = UniformAct(obs.Get(TapPoint::kProjIn, bi), ab);
    bq.fc1.weight = RowQuant(mb.fc1.weight, mb.fc1.out, mb.fc1.in, wb);
    bq.fc1.input = UniformAct(obs.Get(TapPoint::kFc1In, bi), ab);
    bq.fc2.weight = RowQuant(mb.fc2.weight, mb.fc2.out, mb.fc2.in, wb);
    bq.attn.q = HeadQuant(obs, TapPoint::kQ, bi, mb.heads, ab);
    bq.attn.k = HeadQuant(obs, TapPoint::kK, bi, mb.heads, ab);
    bq.attn.v = HeadQuant(obs, TapPoint::kV, bi, mb.heads, ab);
    ActQuant& probs = bq.attn.probs;
    ActQuant& gelu = bq.fc2.input;
    const float gelu_hi = obs.Get(TapPoint::kGeluOut, bi).second;
    switch (b % 4) {
      case 0:
        probs.kind = ActQuant::Kind::kLog;
        probs.log = LogParams{LogKind::kAdaLog, ab, 1.f, 23};
        gelu.kind = ActQuant::Kind::kLog;
        gelu.log = LogParams{LogKind::kAdaLog, ab, gelu_hi + kGeluShift, 29};
        gelu.shift = kGeluShift;
        gelu.shift_folded = true;
        {
          std::vector<float> w_hat = mb.fc2.weight;
          FakeQuantize(bq.fc2.weight, w_hat.data(), {mb.fc2.out, mb.fc2.in}, w_hat.data());
          mb.fc2.bias = FoldShiftIntoBias(w_hat.data(), mb.fc2.out, mb.fc2.in, mb.fc2.bias.data(),
                                          kGeluShift);
        }
        break;
      case 1:
        probs.kind = ActQuant::Kind::kLog;
        probs.log = LogParams{LogKind::kLog2, ab, 1.f, kAdaLogR};
        gelu.kind = ActQuant::Kind::kLog;
        gelu.log = LogParams{LogKind::kLog2, ab, gelu_hi + kGeluShift, kAdaLogR};
        gelu.shift = kGeluShift;
        gelu.shift_folded = false;
        break;
      case 2:
        probs.kind = ActQuant::Kind::kLog;
        probs.log = LogParams{LogKind::kLogSqrt2, ab, 1.f, kAdaLogR};
        gelu.kind = ActQuant::Kind::kTwin;
        gelu.twin.bits = ab;
        gelu.twin.scale_pos = gelu_hi / ((1 << (ab - 1)) - 0.5f);
        gelu.twin.scale_neg = TwinUniformDefaultNegScale(ab);
        break;
      default:
        probs = UniformAct(obs.Get(TapPoint::kAttnProbs, bi, 0), ab);
        probs.uniform.params = MinMaxParams(0.f, 1.f, ab);
        gelu = UniformAct(obs.Get(TapPoint::kGeluOut, bi), ab);
        break;
    }
    p.blocks.push_back(bq);
  }
  p.head.weight = RowQuant(m.head.weight, m.head.out, m.head.in, wb);
  p.head.input = UniformAct(obs.Get(TapPoint::kHeadIn, -1), ab);
  if (m.pooling == Pooling::kClsDistAvg) {
    p.head_dist.weight = RowQuant(m.head_dist.weight, m.head_dist.out, m.head_dist.in, wb);
    p.head_dist.input = UniformAct(obs.Get(TapPoint::kHeadDistIn, -1), ab);
  }
  return qm;
}

RandomVitSpec Spec(uint32_t seed) {
  RandomVitSpec s;
  s.depth = 4;  // one block per quantizer combination of MakePlan
  s.dim = 32;
  s.heads = 2;
  s.seed = seed;
  return s;
}

// Wraps the executor's rewriter: checks every output element against quant/'s SCALAR FakeQuant of
// the input at that placement (bit-exact), and counts the taps seen.
class CheckingRewriter : public Fp32Rewriter {
 public:
  CheckingRewriter(const QuantPlan& plan, const VitModel& m)
      : plan_(plan), inner_(MakeFakeQuantRewriter(plan, m)) {}
  void Rewrite(const TapInfo& t, float* d, int rows, int cols) override {
    const int64_t n = int64_t(rows) * cols;
    std::vector<float> in(d, d + n);
    inner_->Rewrite(t, d, rows, cols);
    ++count[t.tap];
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
      if (d[i] != in[i]) ++changed;
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
  // Weights: the simulated model holds exactly W_hat = scalar FakeQuant per element.
  const BlockParams& b0 = m.blocks[1];
  for (int o = 0; o < b0.fc1.out; ++o) {
    const UniformQuantizer u(qm.plan.blocks[1].fc1.weight.channel(o));
    for (int i = 0; i < b0.fc1.in; ++i) {
      ASSERT_EQ(sim_model.blocks[1].fc1.weight[size_t(o) * b0.fc1.in + i],
                u.FakeQuant(b0.fc1.weight[size_t(o) * b0.fc1.in + i]));
    }
  }
  EXPECT_NE(sim_model.embed.weight, m.embed.weight);
}

INSTANTIATE_TEST_SUITE_P(Bits, ExecutorSimBits,
                         ::testing::Values(std::make_tuple(4, 4, false), std::make_tuple(3, 3, true),
                                           std::make_tuple(8, 8, false), std::make_tuple(4, 8, true)));

// End to end against the plain scalar reference (double accumulation, no shared code). Outside the
// quantizers both are FP32 forwards that differ by accumulation order (~1e-6 relative), which can
// move a value across a rounding boundary. A log quantizer's step is a fixed RATIO whatever the
// bits (x2 for log2), so one such flip moves a probability a lot; the end-to-end check therefore
// uses 8 bits with fine log bases (AdaLog q = 8, base 1.16), where one step is small and the logits
// agree to kLogitsTol relative to their range. Measured on these random models: scaling the input
// by (1 + 1e-5) moves both executors' logits identically by up to 1.6% of their range (rounding
// flips compound through 4 random blocks), so a few percent is the honest end-to-end tolerance.
// The tight check is per placement: EveryPlacementBitExactAgainstScalarFakeQuant (bit-exact, log2
// and log-sqrt2 included).
constexpr float kLogitsTol = 3e-2f;

TEST(ExecutorSimTest, MatchesScalarFakeQuantReferenceForward) {
  for (bool dist : {false, true}) {
    RandomVitSpec s = Spec(21);
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
