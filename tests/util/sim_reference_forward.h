// The simulated (fake-quant) reference: the one reference forward (vit_reference_forward.h) run
// over W_hat with hooks that fake-quantize every GEMM input, written directly from the AdaLog
// method §3.2 placement table and NOT sharing code with runtime/executor_sim: every quantized
// value goes through quant/'s SCALAR FakeQuant (one call per element). Accumulation in double,
// values rounded to float32 where a quantizer reads them. Test oracle for the simulated executor.
#pragma once

#include <vector>

#include "runtime/quant_plan.h"
#include "tests/util/vit_reference_forward.h"

namespace adalog::test {

// Scalar fake-quant of one activation value with an ActQuant (kNone: identity).
float SimReferenceAct(const ActQuant& q, float x);

// qm.model with every weight the plan quantizes (patch embed; every block's qkv, proj, fc1, fc2;
// head; head_dist when distilled) replaced, element by element, by quant/'s scalar FakeQuant
// under its row's parameters; an empty parameter set leaves the weight FP32. Everything else is
// copied unchanged. What MakeSimulatedModel must produce, and what a model file loads.
VitModel SimReferenceWeights(const QuantizedModel& qm);

// The hooks that put the plan's activation quantizers at their placements: every input tap's
// value is rounded to float32 and fake-quantized by SimReferenceAct (the per-head q, k, v by
// their head's uniform quantizer; an empty per-head set only rounds to float32). `plan` must
// outlive the hooks.
ReferenceHooks SimReferenceHooks(const QuantPlan& plan);

// images: [batch][C][H][W]; returns logits [batch][num_classes]:
// VitReferenceForward(SimReferenceWeights(qm), images, batch, SimReferenceHooks(qm.plan)).
std::vector<float> SimReferenceForward(const QuantizedModel& qm, const std::vector<float>& images,
                                       int batch);

}  // namespace adalog::test
