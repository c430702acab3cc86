// The simulated executor's Swin parts: the patch merges' plan entries (see sim_swin.h).
#include "runtime/sim_swin.h"

#include "quant/error.h"
#include "quant/uniform.h"

namespace adalog {

std::vector<int> SwinMergeBlocks(const VitModel& m) {
  std::vector<int> out;
  int last = -1;
  for (const SwinStage& st : m.swin.stages) {
    last += st.depth;
    if (st.has_merge) out.push_back(last);
  }
  return out;
}

void FakeQuantSwinMergeWeights(const QuantPlan& plan, VitModel* m) {
  size_t i = 0;
  for (SwinStage& st : m->swin.stages) {
    if (!st.has_merge) continue;
    ADALOG_CHECK(i < plan.merges.size(), "quantized model: the plan has ", plan.merges.size(),
                 " patch-merge quantizers, the model has more patch merges");
    const UniformPerChannel& q = plan.merges[i].weight;
    LinearParams& lin = st.merge.reduction;
    if (!q.scales.empty()) {
      ADALOG_CHECK(q.num_channels() == lin.out, "quantized model: patch merge ", i, " weight has ",
                   q.num_channels(), " per-channel parameters, expected ", lin.out);
      ADALOG_CHECK(static_cast<int64_t>(lin.weight.size()) == int64_t{lin.out} * lin.in,
                   "quantized model: patch merge ", i, " weight size mismatch");
      FakeQuantize(q, lin.weight.data(), {lin.out, lin.in}, lin.weight.data());
    }
    ++i;
  }
  ADALOG_CHECK(i == plan.merges.size(), "quantized model: the plan has ", plan.merges.size(),
               " patch-merge quantizers, the model ", i, " patch merges");
}

}  // namespace adalog
