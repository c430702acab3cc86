// A hand-made QuantizedModel plan from FP32 min/max ranges that puts every quantizer kind the
// simulated executor knows at the placements it can take (tests of the judge and of the model
// file). Header-only: it runs the FP32 executor, so only runtime/ test binaries may include it.
#pragma once

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <tuple>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "quant/log_quantizers.h"
#include "quant/twin_uniform.h"
#include "quant/uniform.h"
#include "runtime/executor_fp32.h"
#include "runtime/quant_plan.h"

namespace adalog {
namespace testing_util {

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
    if (it == ranges.end()) {
      ADD_FAILURE() << "no range observed at tap " << static_cast<int>(tap) << " block " << block;
      return {0.f, 0.f};
    }
    return it->second;
  }
  std::map<Key, std::pair<float, float>> ranges;
  static constexpr float kInf = std::numeric_limits<float>::infinity();
};

inline UniformParams MinMaxParams(float lo, float hi, int bits) {
  lo = std::min(lo, 0.f);
  hi = std::max(hi, 0.f);
  const int levels = (1 << bits) - 1;
  UniformParams p;
  p.bits = bits;
  p.scale = std::max(hi - lo, 1e-6f) / levels;
  p.zero_point = std::clamp(static_cast<int32_t>(std::nearbyint(-lo / p.scale)), 0, levels);
  return p;
}

inline UniformPerChannel RowQuant(const std::vector<float>& w, int out, int in, int bits) {
  UniformPerChannel q;
  q.bits = bits;
  for (int o = 0; o < out; ++o) {
    const auto [lo, hi] =
        std::minmax_element(w.begin() + int64_t(o) * in, w.begin() + int64_t(o + 1) * in);
    const UniformParams p = MinMaxParams(*lo, *hi, bits);
    q.scales.push_back(p.scale);
    q.zero_points.push_back(p.zero_point);
  }
  return q;
}

inline ActQuant UniformAct(std::pair<float, float> r, int bits) {
  ActQuant a;
  a.kind = ActQuant::Kind::kUniform;
  a.uniform.params = MinMaxParams(r.first, r.second, bits);
  return a;
}

// Per-head ranges merged over the images.
inline UniformPerHead HeadQuant(const RangeObserver& obs, TapPoint tap, int block, int heads,
                                int bits) {
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

// The (softmax probs, post-GELU) quantizer pair of block b is choice (b % kHandPlanChoices):
//   0: AdaLog (q 23)    / Shift-AdaLog (q 29), shift folded into fc2's bias
//   1: log2             / Shift-log2, shift not folded
//   2: log-sqrt2        / twin uniform
//   3: uniform          / uniform
//   4: AdaLog (q 31)    / Shift-AdaLog (q 19), shift not folded
//   5: none (FP32)      / Shift-log-sqrt2, shift folded into fc2's bias
// so a model of depth >= 6 holds every kind; depth 4 gives the first four only. Every other
// placement (qkv/proj/fc1/head inputs, per-head q/k/v, every weight) is uniform min/max.
inline constexpr int kHandPlanChoices = 6;

inline QuantizedModel MakeHandPlan(const VitModel& m, const std::vector<float>& images, int batch,
                                   int wb, int ab) {
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
    auto shift_log = [&](LogKind kind, int q, bool folded) {
      gelu.kind = ActQuant::Kind::kLog;
      gelu.log = LogParams{kind, ab, gelu_hi + kGeluShift, q};
      gelu.shift = kGeluShift;
      gelu.shift_folded = folded;
      if (folded) {
        std::vector<float> w_hat = mb.fc2.weight;
        FakeQuantize(bq.fc2.weight, w_hat.data(), {mb.fc2.out, mb.fc2.in}, w_hat.data());
        mb.fc2.bias = FoldShiftIntoBias(w_hat.data(), mb.fc2.out, mb.fc2.in, mb.fc2.bias.data(),
                                        kGeluShift);
      }
    };
    switch (b % kHandPlanChoices) {
      case 0:
        probs.kind = ActQuant::Kind::kLog;
        probs.log = LogParams{LogKind::kAdaLog, ab, 1.f, 23};
        shift_log(LogKind::kAdaLog, 29, true);
        break;
      case 1:
        probs.kind = ActQuant::Kind::kLog;
        probs.log = LogParams{LogKind::kLog2, ab, 1.f, kAdaLogR};
        shift_log(LogKind::kLog2, kAdaLogR, false);
        break;
      case 2:
        probs.kind = ActQuant::Kind::kLog;
        probs.log = LogParams{LogKind::kLogSqrt2, ab, 1.f, kAdaLogR};
        gelu.kind = ActQuant::Kind::kTwin;
        gelu.twin.bits = ab;
        gelu.twin.scale_pos = gelu_hi / ((1 << (ab - 1)) - 0.5f);
        gelu.twin.scale_neg = TwinUniformDefaultNegScale(ab);
        break;
      case 3:
        probs.kind = ActQuant::Kind::kUniform;
        probs.uniform.params = MinMaxParams(0.f, 1.f, ab);
        gelu = UniformAct(obs.Get(TapPoint::kGeluOut, bi), ab);
        break;
      case 4:
        probs.kind = ActQuant::Kind::kLog;
        probs.log = LogParams{LogKind::kAdaLog, ab, 1.f, 31};
        shift_log(LogKind::kAdaLog, 19, false);
        break;
      default:
        probs.kind = ActQuant::Kind::kNone;
        shift_log(LogKind::kLogSqrt2, kAdaLogR, true);
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

}  // namespace testing_util
}  // namespace adalog
