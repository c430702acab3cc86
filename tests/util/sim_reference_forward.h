// A plain, slow, scalar fake-quant forward of a QuantizedModel, written directly from the AdaLog
// method §3.2 placement table and NOT sharing code with runtime/executor_sim: every quantized value
// goes through quant/'s SCALAR FakeQuant (one call per element). Accumulation in double, values
// rounded to float32 where a quantizer reads them. Test oracle for the simulated executor.
#pragma once

#include <vector>

#include "runtime/quant_plan.h"

namespace adalog::test {

// Scalar fake-quant of one activation value with an ActQuant (kNone: identity).
float SimReferenceAct(const ActQuant& q, float x);

// qm.model with every weight the plan quantizes (patch embed; every block's qkv, proj, fc1, fc2;
// head; head_dist when distilled) replaced, element by element, by quant/'s scalar FakeQuant
// under its row's parameters; an empty parameter set leaves the weight FP32. Everything else is
// copied unchanged. What MakeSimulatedModel must produce, and what a model file loads.
VitModel SimReferenceWeights(const QuantizedModel& qm);

// images: [batch][C][H][W]; returns logits [batch][num_classes].
std::vector<float> SimReferenceForward(const QuantizedModel& qm, const std::vector<float>& images,
                                       int batch);

}  // namespace adalog::test
