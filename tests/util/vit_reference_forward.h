// The one reference forward of the tests: a plain, slow, scalar forward pass of adalog::VitModel
// (double accumulation) with hooks, written directly from the conventions in runtime/vit_model.h
// and never optimized. With no hooks it is the FP32 oracle (the importer against PyTorch output);
// the simulated reference (sim_reference_forward.h) is this forward over W_hat with hooks that
// fake-quantize every GEMM input, and the teacher-forced checker (sim_reference_ops.h) states
// each op with the same math (reference_kernels.h).
//
// Why it does not walk runtime's BuildSchedule (runtime/vit_schedule.h), which every executor
// walks: this forward is the oracle those executors are judged against, so its order of steps is
// written out independently here, as a plain loop per image. A mistake in the shared schedule
// (a step or a tap out of order, a residual add in the wrong place) then shows as a mismatch
// instead of being repeated by the judge. (It also keeps tests/util/*.cc free of the runtime
// library, which adalog_quant_tests does not link.)
#pragma once

#include <cstddef>
#include <functional>
#include <vector>

#include "runtime/vit_model.h"
#include "runtime/vit_schedule.h"

namespace adalog::test {

struct ReferenceHooks {
  // Called on the tensor a GEMM / attention matmul consumes next, at its input-side tap, before
  // the product; may rewrite the n values of x in place. Calls, per image, in forward order:
  //   each block: kQkvIn [T][dim]; for each head: kQ, kK, kV [T][head_dim] (head >= 0), then
  //   kAttnProbs [T][T]; kProjIn [T][dim]; kFc1In [T][dim]; kGeluOut [T][hidden] (fc2's input);
  //   then kHeadIn [dim] and, for distilled models, kHeadDistIn [dim] (block -1).
  // Swin (swin_reference_forward.cc): the same per block, kQ / kK / kV [windows*N][head_dim]
  // and kAttnProbs [windows*N][N] over the block's window rows (padding rows included), and
  // after a stage with a merge kMergeIn [T'][4C] with block = the stage's last block and
  // head = the merge's index (QuantPlan::merges).
  // `head` is -1 except for the per-head taps. The images (the patch embedding's input) are
  // never hooked. Unset: identity, the FP32 reference.
  std::function<void(TapPoint tap, int block, int head, double* x, size_t n)> input;
};

// images: [batch][in_channels][image_h][image_w]; returns logits [batch][num_classes].
// Swin models (m.is_swin()) go to SwinReferenceForward.
std::vector<float> VitReferenceForward(const VitModel& m, const std::vector<float>& images,
                                       int batch, const ReferenceHooks& hooks = {});

// The Swin path (swin_reference_forward.cc); same contract.
std::vector<float> SwinReferenceForward(const VitModel& m, const std::vector<float>& images,
                                        int batch, const ReferenceHooks& hooks = {});

}  // namespace adalog::test
