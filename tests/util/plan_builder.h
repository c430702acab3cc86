// PlanBuilder: the tests' hand-made QuantizedModel plans from FP32 min/max ranges (a calibration
// stand-in), built fluently: uniform min/max quantizers at every weight, GEMM input and per-head
// q/k/v placement, and a per-block choice of the softmax-probability and post-GELU quantizers.
// Used by sim_hand_plan.h (every quantizer kind the simulated executor knows) and int_hand_plan.h
// (the combinations the integer executor runs). Header-only: it runs the FP32 executor, so only
// runtime/ test binaries may include it.
//
//   QuantizedModel qm = PlanBuilder(m, images, batch)
//                           .Bits(4, 4)
//                           .Blocks([](BlockQuantizers& q) {
//                             q.ProbsLog(LogKind::kAdaLog, 23).GeluShiftLog(LogKind::kAdaLog, 29,
//                             true);
//                           })
//                           .Build();
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <map>
#include <tuple>
#include <utility>
#include <vector>

#include "quant/log_quantizers.h"
#include "quant/twin_uniform.h"
#include "quant/uniform.h"
#include "runtime/executor_fp32.h"
#include "runtime/quant_plan.h"

namespace adalog {
namespace testing_util {

// Min/max of every FP32 tap, keyed by (tap, block, head); images of a batch merge into one entry.
class RangeObserver : public Fp32Observer {
 public:
  void OnTensor(const TapInfo& t, const float* d, int rows, int cols) override {
    auto it = ranges
                  .try_emplace({static_cast<int>(t.tap), t.block, t.head},
                               std::numeric_limits<float>::infinity(),
                               -std::numeric_limits<float>::infinity())
                  .first;
    for (int64_t i = 0; i < int64_t(rows) * cols; ++i) {
      it->second.first = std::min(it->second.first, d[i]);
      it->second.second = std::max(it->second.second, d[i]);
    }
  }
  // The range at (tap, block, head); head < 0 merges every head of a per-head tap (and is the
  // only key of the other taps). A tap never observed is a test failure.
  std::pair<float, float> Get(TapPoint tap, int block, int head = -1) const {
    std::pair<float, float> r{std::numeric_limits<float>::infinity(),
                              -std::numeric_limits<float>::infinity()};
    bool seen = false;
    for (const auto& [key, v] : ranges) {
      if (std::get<0>(key) == static_cast<int>(tap) && std::get<1>(key) == block &&
          (head < 0 || std::get<2>(key) == head)) {
        r.first = std::min(r.first, v.first);
        r.second = std::max(r.second, v.second);
        seen = true;
      }
    }
    if (!seen) {
      ADD_FAILURE() << "no range observed at tap " << static_cast<int>(tap) << " block " << block
                    << " head " << head;
    }
    return r;
  }
  std::map<std::tuple<int, int, int>, std::pair<float, float>> ranges;
};

// Asymmetric uniform parameters covering [min(lo, 0), max(hi, 0)].
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

// Per output row min/max of a weight [out][in].
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

// Per-head min/max (each head's range merged over the images).
inline UniformPerHead HeadQuant(const RangeObserver& obs, TapPoint tap, int block, int heads,
                                int bits) {
  UniformPerHead q;
  q.bits = bits;
  for (int h = 0; h < heads; ++h) {
    const auto r = obs.Get(tap, block, h);
    const UniformParams p = MinMaxParams(r.first, r.second, bits);
    q.scales.push_back(p.scale);
    q.zero_points.push_back(p.zero_point);
  }
  return q;
}

// One block's softmax-probability and post-GELU (fc2 input) quantizers, chosen in the callback
// given to PlanBuilder::Blocks. Both start as kNone (FP32) until a setter runs.
class BlockQuantizers {
 public:
  // gelu_range: the FP32 min/max observed at the block's GELU output.
  BlockQuantizers(int block, int act_bits, std::pair<float, float> gelu_range, BlockParams& params,
                  BlockQuant& quant)
      : block_(block), ab_(act_bits), gelu_range_(gelu_range), mb_(params), bq_(quant) {}
  int block() const { return block_; }
  int act_bits() const { return ab_; }

  // Log quantizer of the probabilities (scale 1, base parameter q).
  BlockQuantizers& ProbsLog(LogKind kind, int q) {
    bq_.attn.probs.kind = ActQuant::Kind::kLog;
    bq_.attn.probs.log = LogParams{kind, ab_, 1.f, q};
    return *this;
  }
  // Uniform over [0, 1].
  BlockQuantizers& ProbsUniform() {
    bq_.attn.probs = UniformAct({0.f, 1.f}, ab_);
    return *this;
  }
  BlockQuantizers& ProbsNone() {
    bq_.attn.probs.kind = ActQuant::Kind::kNone;
    return *this;
  }
  // Shift-log of the GELU output: log quantizer of x + kGeluShift with scale (observed max +
  // shift). fold_shift: the -shift lives in fc2's bias (computed from W_hat), else the quantizer
  // subtracts it.
  BlockQuantizers& GeluShiftLog(LogKind kind, int q, bool fold_shift) {
    ActQuant& gelu = bq_.fc2.input;
    gelu.kind = ActQuant::Kind::kLog;
    gelu.log = LogParams{kind, ab_, gelu_range_.second + kGeluShift, q};
    gelu.shift = kGeluShift;
    gelu.shift_folded = fold_shift;
    if (fold_shift) {
      std::vector<float> w_hat = mb_.fc2.weight;
      FakeQuantize(bq_.fc2.weight, w_hat.data(), {mb_.fc2.out, mb_.fc2.in}, w_hat.data());
      mb_.fc2.bias =
          FoldShiftIntoBias(w_hat.data(), mb_.fc2.out, mb_.fc2.in, mb_.fc2.bias.data(), kGeluShift);
    }
    return *this;
  }
  // Twin uniform: positive scale from the observed max, the default negative scale.
  BlockQuantizers& GeluTwin() {
    ActQuant& gelu = bq_.fc2.input;
    gelu.kind = ActQuant::Kind::kTwin;
    gelu.twin.bits = ab_;
    gelu.twin.scale_pos = gelu_range_.second / ((1 << (ab_ - 1)) - 0.5f);
    gelu.twin.scale_neg = TwinUniformDefaultNegScale(ab_);
    return *this;
  }
  // Uniform min/max over the observed GELU output range.
  BlockQuantizers& GeluUniform() {
    bq_.fc2.input = UniformAct(gelu_range_, ab_);
    return *this;
  }

 private:
  int block_, ab_;
  std::pair<float, float> gelu_range_;
  BlockParams& mb_;
  BlockQuant& bq_;
};

class PlanBuilder {
 public:
  // Observes the FP32 ranges of m over images [batch][C][H][W] (one thread). m must outlive the
  // builder.
  PlanBuilder(const VitModel& m, const std::vector<float>& images, int batch) : m_(m) {
    ExecutorOptions eo;
    eo.max_batch = batch;
    eo.num_threads = 1;
    ExecutorFp32 fp(m, eo);
    fp.SetObserver(&obs_);
    std::vector<float> logits(size_t(batch) * m.num_classes());
    fp.Run(images.data(), batch, logits.data());
  }
  PlanBuilder& Bits(int weight_bits, int act_bits) {
    wb_ = weight_bits;
    ab_ = act_bits;
    return *this;
  }
  // Called once per block, in block order, after the block's uniform placements are set.
  PlanBuilder& Blocks(std::function<void(BlockQuantizers&)> choose) {
    choose_ = std::move(choose);
    return *this;
  }
  const RangeObserver& ranges() const { return obs_; }

  QuantizedModel Build() const {
    const VitModel& m = m_;
    const int wb = wb_, ab = ab_;
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
      bq.qkv.input = UniformAct(obs_.Get(TapPoint::kQkvIn, bi), ab);
      bq.proj.weight = RowQuant(mb.proj.weight, mb.proj.out, mb.proj.in, wb);
      bq.proj.input = UniformAct(obs_.Get(TapPoint::kProjIn, bi), ab);
      bq.fc1.weight = RowQuant(mb.fc1.weight, mb.fc1.out, mb.fc1.in, wb);
      bq.fc1.input = UniformAct(obs_.Get(TapPoint::kFc1In, bi), ab);
      bq.fc2.weight = RowQuant(mb.fc2.weight, mb.fc2.out, mb.fc2.in, wb);
      bq.attn.q = HeadQuant(obs_, TapPoint::kQ, bi, mb.heads, ab);
      bq.attn.k = HeadQuant(obs_, TapPoint::kK, bi, mb.heads, ab);
      bq.attn.v = HeadQuant(obs_, TapPoint::kV, bi, mb.heads, ab);
      if (choose_) {
        BlockQuantizers q(bi, ab, obs_.Get(TapPoint::kGeluOut, bi), mb, bq);
        choose_(q);
      }
      p.blocks.push_back(bq);
    }
    // Swin: each patch merge's reduction (its kMergeIn tap carries the stage's last block).
    int last = -1;
    for (const SwinStage& st : m.swin.stages) {
      last += st.depth;
      if (!st.has_merge) continue;
      const LinearParams& r = st.merge.reduction;
      LinearQuant mq;
      mq.weight = RowQuant(r.weight, r.out, r.in, wb);
      mq.input = UniformAct(obs_.Get(TapPoint::kMergeIn, last), ab);
      p.merges.push_back(mq);
    }
    p.head.weight = RowQuant(m.head.weight, m.head.out, m.head.in, wb);
    p.head.input = UniformAct(obs_.Get(TapPoint::kHeadIn, -1), ab);
    if (m.pooling == Pooling::kClsDistAvg) {
      p.head_dist.weight = RowQuant(m.head_dist.weight, m.head_dist.out, m.head_dist.in, wb);
      p.head_dist.input = UniformAct(obs_.Get(TapPoint::kHeadDistIn, -1), ab);
    }
    return qm;
  }

 private:
  const VitModel& m_;
  RangeObserver obs_;
  int wb_ = 8, ab_ = 8;
  std::function<void(BlockQuantizers&)> choose_;
};

}  // namespace testing_util
}  // namespace adalog
