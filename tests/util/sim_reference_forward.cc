// The simulated reference: weights and activation hooks of the plan (see sim_reference_forward.h).
#include "tests/util/sim_reference_forward.h"

#include <utility>

#include "quant/log_quantizers.h"
#include "quant/twin_uniform.h"
#include "quant/uniform.h"

namespace adalog::test {
namespace {

// W_hat: per output row, scalar FakeQuant of every element (empty plan: FP32).
std::vector<float> QuantWeight(const UniformPerChannel& q, const std::vector<float>& w, int out,
                               int in) {
  if (q.scales.empty()) return w;
  std::vector<float> r(w.size());
  for (int o = 0; o < out; ++o) {
    const UniformQuantizer u(q.channel(o));
    for (int i = 0; i < in; ++i) r[size_t(o) * in + i] = u.FakeQuant(w[size_t(o) * in + i]);
  }
  return r;
}

}  // namespace

float SimReferenceAct(const ActQuant& q, float x) {
  switch (q.kind) {
    case ActQuant::Kind::kNone:
      return x;
    case ActQuant::Kind::kUniform:
      return UniformQuantizer(q.uniform.params).FakeQuant(x);
    case ActQuant::Kind::kTwin:
      return TwinUniformQuantizer(q.twin).FakeQuant(x);
    case ActQuant::Kind::kLog: {
      // Spec 2.6: y = Q(x + shift); the network sees y - shift unless the -shift lives in the
      // next layer's bias.
      const float y = LogQuantizer(q.log).FakeQuant(x + q.shift);
      return q.shift_folded ? y : y - q.shift;
    }
  }
  return x;
}

VitModel SimReferenceWeights(const QuantizedModel& qm) {
  VitModel m = qm.model;
  const QuantPlan& plan = qm.plan;
  PatchEmbedParams& e = m.embed;
  e.weight =
      QuantWeight(plan.patch_embed_weight, e.weight, e.dim, e.in_channels * e.patch * e.patch);
  for (size_t b = 0; b < m.blocks.size() && b < plan.blocks.size(); ++b) {
    BlockParams& mb = m.blocks[b];
    const BlockQuant& bq = plan.blocks[b];
    for (auto [l, q] : {std::pair{&mb.qkv, &bq.qkv}, std::pair{&mb.proj, &bq.proj},
                        std::pair{&mb.fc1, &bq.fc1}, std::pair{&mb.fc2, &bq.fc2}}) {
      l->weight = QuantWeight(q->weight, l->weight, l->out, l->in);
    }
  }
  m.head.weight = QuantWeight(plan.head.weight, m.head.weight, m.head.out, m.head.in);
  if (m.pooling == Pooling::kClsDistAvg) {
    m.head_dist.weight =
        QuantWeight(plan.head_dist.weight, m.head_dist.weight, m.head_dist.out, m.head_dist.in);
  }
  return m;
}

ReferenceHooks SimReferenceHooks(const QuantPlan& plan) {
  ReferenceHooks hooks;
  hooks.input = [&plan](TapPoint tap, int block, int head, double* x, size_t n) {
    const BlockQuant* bq = block >= 0 ? &plan.blocks[size_t(block)] : nullptr;
    const UniformPerHead* per_head = nullptr;
    const ActQuant* act = nullptr;
    switch (tap) {
      case TapPoint::kQkvIn:
        act = &bq->qkv.input;
        break;
      case TapPoint::kQ:
        per_head = &bq->attn.q;
        break;
      case TapPoint::kK:
        per_head = &bq->attn.k;
        break;
      case TapPoint::kV:
        per_head = &bq->attn.v;
        break;
      case TapPoint::kAttnProbs:
        act = &bq->attn.probs;
        break;
      case TapPoint::kProjIn:
        act = &bq->proj.input;
        break;
      case TapPoint::kFc1In:
        act = &bq->fc1.input;
        break;
      case TapPoint::kGeluOut:
        act = &bq->fc2.input;
        break;
      case TapPoint::kHeadIn:
        act = &plan.head.input;
        break;
      case TapPoint::kHeadDistIn:
        act = &plan.head_dist.input;
        break;
      default:
        return;  // not an input the plan quantizes
    }
    if (act) {
      for (size_t i = 0; i < n; ++i) x[i] = SimReferenceAct(*act, static_cast<float>(x[i]));
      return;
    }
    if (per_head->scales.empty()) {
      for (size_t i = 0; i < n; ++i) x[i] = static_cast<float>(x[i]);
      return;
    }
    const UniformQuantizer u(per_head->head(head));
    for (size_t i = 0; i < n; ++i) x[i] = u.FakeQuant(static_cast<float>(x[i]));
  };
  return hooks;
}

std::vector<float> SimReferenceForward(const QuantizedModel& qm, const std::vector<float>& images,
                                       int batch) {
  return VitReferenceForward(SimReferenceWeights(qm), images, batch, SimReferenceHooks(qm.plan));
}

}  // namespace adalog::test
