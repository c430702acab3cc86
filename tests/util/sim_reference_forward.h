// A plain, slow, scalar fake-quant forward of a QuantizedModel, written directly from the AdaLog
// spec 3.2 placement table and NOT sharing code with runtime/executor_sim: every quantized value
// goes through quant/'s SCALAR FakeQuant (one call per element). Accumulation in double, values
// rounded to float32 where a quantizer reads them. Test oracle for the simulated executor.
#pragma once

#include <vector>

#include "runtime/quant_plan.h"

namespace adalog::test {

// Scalar fake-quant of one activation value with an ActQuant (kNone: identity).
float SimReferenceAct(const ActQuant& q, float x);

// images: [batch][C][H][W]; returns logits [batch][num_classes].
std::vector<float> SimReferenceForward(const QuantizedModel& qm, const std::vector<float>& images,
                                       int batch);

}  // namespace adalog::test
