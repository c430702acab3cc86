// The simulated executor's Swin parts (executor_sim.cc): where the patch merges' quantizers sit
// (QuantPlan::merges) and their weights' fake quantization. Everything else of a Swin plan is
// ViT's per-block placement, applied at the same taps by the Swin FP32 executor.
#pragma once

#include <vector>

#include "runtime/quant_plan.h"
#include "runtime/vit_model.h"

namespace adalog {

// For each patch merge (stages with has_merge, in stage order) the block whose index its kMergeIn
// tap carries: the last block of that stage. Empty for a ViT.
std::vector<int> SwinMergeBlocks(const VitModel& m);

// Fake-quantizes each merge's reduction weight [out][4C] per output row with plan.merges[i].weight
// (an empty parameter set leaves it FP32). Throws adalog::Error when plan.merges does not have one
// entry per merge or a parameter count does not match the weight.
void FakeQuantSwinMergeWeights(const QuantPlan& plan, VitModel* m);

}  // namespace adalog
