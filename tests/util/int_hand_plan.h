// The integer executor tests' hand-made plans (FP32 min/max ranges, one PlanKind per block mix),
// the logits agreement metrics and executor options, shared by executor_int_test.cc and
// executor_int_threads_test.cc. Header-only: runs the FP32 executor, runtime/ test binaries only.
#pragma once

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <random>
#include <tuple>
#include <utility>
#include <vector>

#include "quant/log_quantizers.h"
#include "quant/uniform.h"
#include "runtime/executor_fp32.h"
#include "runtime/quant_plan.h"

namespace adalog::int_test {


// Min/max of every FP32 tap, keyed by (tap, block, head).
class RangeObserver : public Fp32Observer {
 public:
  void OnTensor(const TapInfo& t, const float* d, int rows, int cols) override {
    auto it = ranges.try_emplace({static_cast<int>(t.tap), t.block, t.head},
                                 std::numeric_limits<float>::infinity(),
                                 -std::numeric_limits<float>::infinity()).first;
    for (int64_t i = 0; i < int64_t(rows) * cols; ++i) {
      it->second.first = std::min(it->second.first, d[i]);
      it->second.second = std::max(it->second.second, d[i]);
    }
  }
  std::pair<float, float> Get(TapPoint tap, int block, int head = -1) const {
    std::pair<float, float> r{std::numeric_limits<float>::infinity(),
                              -std::numeric_limits<float>::infinity()};
    for (const auto& [key, v] : ranges) {
      if (std::get<0>(key) == static_cast<int>(tap) && std::get<1>(key) == block &&
          (head < 0 || std::get<2>(key) == head)) {
        r.first = std::min(r.first, v.first);
        r.second = std::max(r.second, v.second);
      }
    }
    return r;
  }
  std::map<std::tuple<int, int, int>, std::pair<float, float>> ranges;
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

inline UniformPerHead HeadQuant(const RangeObserver& obs, TapPoint tap, int block, int heads, int bits) {
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

// Post-softmax / post-GELU quantizer combinations the integer path runs.
enum class PlanKind {
  kAdaLog,   // softmax AdaLog (scale 1), GELU shift-AdaLog with the shift folded into fc2's bias
  kLog2,     // softmax Log2, GELU shift-Log2, shift NOT folded (the executor folds it)
  kUniform,  // uniform softmax and GELU (the int8 GEMM path)
  kMixed,    // block b: kAdaLog, kLog2, kUniform by b % 3
};

// A hand-made plan from FP32 min/max ranges over `images` (calibration stand-in).
inline QuantizedModel MakePlan(const VitModel& m, const std::vector<float>& images, int batch, int wb,
                        int ab, PlanKind kind, uint32_t seed = 7) {
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
  std::mt19937 rng(seed);
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
    const float gelu_hi = obs.Get(TapPoint::kGeluOut, bi).second;
    PlanKind k = kind;
    if (kind == PlanKind::kMixed) {
      k = b % 3 == 0 ? PlanKind::kAdaLog : (b % 3 == 1 ? PlanKind::kLog2 : PlanKind::kUniform);
    }
    // AdaLog q: at 8 bits q >= 8; pick from a range that keeps the zero code reachable below.
    const int q_probs = std::uniform_int_distribution<int>(ab == 8 ? 8 : 12, 40)(rng);
    const int q_gelu = std::uniform_int_distribution<int>(ab == 8 ? 8 : 12, 40)(rng);
    ActQuant& probs = bq.attn.probs;
    ActQuant& gelu = bq.fc2.input;
    switch (k) {
      case PlanKind::kAdaLog:
      case PlanKind::kMixed: {
        probs.kind = ActQuant::Kind::kLog;
        probs.log = LogParams{LogKind::kAdaLog, ab, 1.f, q_probs};
        gelu.kind = ActQuant::Kind::kLog;
        gelu.log = LogParams{LogKind::kAdaLog, ab, gelu_hi + kGeluShift, q_gelu};
        gelu.shift = kGeluShift;
        gelu.shift_folded = true;
        std::vector<float> w_hat = mb.fc2.weight;
        FakeQuantize(bq.fc2.weight, w_hat.data(), {mb.fc2.out, mb.fc2.in}, w_hat.data());
        mb.fc2.bias = FoldShiftIntoBias(w_hat.data(), mb.fc2.out, mb.fc2.in, mb.fc2.bias.data(),
                                        kGeluShift);
        break;
      }
      case PlanKind::kLog2:
        probs.kind = ActQuant::Kind::kLog;
        probs.log = LogParams{LogKind::kLog2, ab, 1.f, kAdaLogR};
        gelu.kind = ActQuant::Kind::kLog;
        gelu.log = LogParams{LogKind::kLog2, ab, gelu_hi + kGeluShift, kAdaLogR};
        gelu.shift = kGeluShift;
        gelu.shift_folded = false;
        break;
      case PlanKind::kUniform:
        probs = UniformAct({0.f, 1.f}, ab);
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

struct Agreement {
  double top1_same = 0, mean_cos = 0, min_cos = 1, max_rel = 0;  // max_rel: max |d| / max |sim|
};

inline Agreement Compare(const std::vector<float>& a, const std::vector<float>& b, int rows, int classes) {
  Agreement g;
  int same = 0;
  for (int r = 0; r < rows; ++r) {
    const float* x = a.data() + size_t(r) * classes;
    const float* y = b.data() + size_t(r) * classes;
    same += std::max_element(x, x + classes) - x == std::max_element(y, y + classes) - y;
    double xy = 0, xx = 0, yy = 0, amax = 0, dmax = 0;
    for (int c = 0; c < classes; ++c) {
      xy += double(x[c]) * y[c];
      xx += double(x[c]) * x[c];
      yy += double(y[c]) * y[c];
      amax = std::max(amax, std::fabs(double(y[c])));
      dmax = std::max(dmax, std::fabs(double(x[c]) - y[c]));
    }
    const double cos = xy / std::sqrt(std::max(xx * yy, 1e-300));
    g.mean_cos += cos / rows;
    g.min_cos = std::min(g.min_cos, cos);
    g.max_rel = std::max(g.max_rel, dmax / std::max(amax, 1e-30));
  }
  g.top1_same = double(same) / rows;
  return g;
}

inline ExecutorOptions Opts(int batch, int threads) {
  ExecutorOptions eo;
  eo.max_batch = batch;
  eo.num_threads = threads;
  return eo;
}

}  // namespace adalog::int_test
