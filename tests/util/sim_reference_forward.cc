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

// The activation quantizer the plan puts at input tap `tap` of `block` (block -1: the head's);
// null at the per-head taps and at taps the plan does not quantize.
const ActQuant* InputActQuant(const QuantPlan& plan, TapPoint tap, int block) {
  const BlockQuant* bq = block >= 0 ? &plan.blocks[size_t(block)] : nullptr;
  switch (tap) {
    case TapPoint::kQkvIn: return &bq->qkv.input;
    case TapPoint::kAttnProbs: return &bq->attn.probs;
    case TapPoint::kProjIn: return &bq->proj.input;
    case TapPoint::kFc1In: return &bq->fc1.input;
    case TapPoint::kGeluOut: return &bq->fc2.input;
    case TapPoint::kHeadIn: return &plan.head.input;
    case TapPoint::kHeadDistIn: return &plan.head_dist.input;
    default: return nullptr;
  }
}

// The per-head quantizer at kQ / kK / kV of `block`; null elsewhere.
const UniformPerHead* InputHeadQuant(const QuantPlan& plan, TapPoint tap, int block) {
  if (block < 0) return nullptr;
  const BlockQuant& bq = plan.blocks[size_t(block)];
  switch (tap) {
    case TapPoint::kQ: return &bq.attn.q;
    case TapPoint::kK: return &bq.attn.k;
    case TapPoint::kV: return &bq.attn.v;
    default: return nullptr;
  }
}

}  // namespace

float SimReferenceAct(const ActQuant& q, float x) {
  switch (q.kind) {
    case ActQuant::Kind::kNone: return x;
    case ActQuant::Kind::kUniform: return UniformQuantizer(q.uniform.params).FakeQuant(x);
    case ActQuant::Kind::kTwin: return TwinUniformQuantizer(q.twin).FakeQuant(x);
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
  size_t merge = 0;
  for (SwinStage& st : m.swin.stages) {
    if (!st.has_merge || merge >= plan.merges.size()) continue;
    LinearParams& l = st.merge.reduction;
    l.weight = QuantWeight(plan.merges[merge++].weight, l.weight, l.out, l.in);
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
    if (tap == TapPoint::kMergeIn) {  // Swin: head is the merge's index
      const ActQuant& act = plan.merges[static_cast<size_t>(head)].input;
      for (size_t i = 0; i < n; ++i) x[i] = SimReferenceAct(act, static_cast<float>(x[i]));
      return;
    }
    if (const ActQuant* act = InputActQuant(plan, tap, block)) {
      for (size_t i = 0; i < n; ++i) x[i] = SimReferenceAct(*act, static_cast<float>(x[i]));
      return;
    }
    const UniformPerHead* per_head = InputHeadQuant(plan, tap, block);
    if (!per_head) return;  // not an input the plan quantizes
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
