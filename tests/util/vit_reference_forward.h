// A plain, slow, scalar forward pass of adalog::VitModel (double accumulation), written directly
// from the conventions in runtime/vit_model.h. Test oracle for the importer against PyTorch output;
// never optimized.
#pragma once

#include <vector>

#include "runtime/vit_model.h"

namespace adalog::test {

// images: [batch][in_channels][image_h][image_w]; returns logits [batch][num_classes].
std::vector<float> VitReferenceForward(const VitModel& m, const std::vector<float>& images,
                                       int batch);

}  // namespace adalog::test
