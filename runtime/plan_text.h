// Human-readable text of a quantized model's plan (`adalog inspect`): one line per quantizer.
#pragma once

#include <string>

#include "runtime/quant_plan.h"
#include "runtime/vit_model.h"

namespace adalog {

// The plan's header (bits, quantizer choices, LN reparam, FPCS), its meta pairs, then every
// quantizer by op: patch_embed, each block (qkv, q@k^T, probs@v, proj, fc1, fc2), the head(s).
// Ends with a newline. `model` gives the pooling (a distilled head is listed when present).
std::string DescribePlan(const QuantPlan& plan, const VitModel& model);

}  // namespace adalog
