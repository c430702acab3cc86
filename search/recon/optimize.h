// The whole-model block reconstruction of `adalog quantize --optimize` (docs/method.md §10): the
// official BlockReconstructor.reconstruct_model, unit by unit in model order (the patch
// embedding, every transformer block, the head). Each unit is trained to reproduce the FP32
// model's output of that unit on the FP32 model's input of that unit (both captured from the
// FP32 model, as the official code's full_model hooks do), then its learned state (hard-rounded
// weight codes, learned activation step sizes) is written into the quantized model, which stays
// an ordinary calibrated model for every executor.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "runtime/quant_plan.h"
#include "runtime/vit_model.h"
#include "search/recon/linear_recon.h"
#include "search/recon/reconstruct.h"

namespace adalog::search {

struct OptimizeOptions {
  // Per-unit schedule (iters, batch, learning rates, regulariser, train_act, threads). `seed`
  // seeds the batch sampling; unit u samples with mt19937 seeded by seed_seq{seed, u}.
  ReconOptions recon;
  int capture_batch = 32;  // images per FP32 executor run while capturing unit inputs / targets
  // The units' inputs: false (the official code) takes them from the FP32 model; true takes them
  // from the quantized model as optimised so far (the simulated executor of the units before,
  // BRECQ's setting), so that a unit learns to correct the error that reaches it. The targets
  // are the FP32 model's outputs of the unit in both cases.
  bool quantized_inputs = false;
};

// The units of `m` in the order OptimizeModel trains them: "patch_embed", "block0" ..
// "block<L-1>", "head". (A distilled model's head_dist is not a unit: the official code selects
// modules named `head`, which head_dist is not, and keeps head_dist as calibrated.)
std::vector<std::string> OptimizeUnitNames(const VitModel& m);

// Multiply-adds per image of each unit's forward, in OptimizeUnitNames order: the relative cost of
// the units' iterations (their backward is about twice the forward for each), for a total ETA.
std::vector<double> OptimizeUnitMacs(const VitModel& m);

// Called on the calling thread after every iteration of every unit: unit index (0-based) of
// `units`, its name, the iteration just done (1-based) of `iters`, the reconstruction loss of
// that iteration's batch. May throw (e.g. on SIGINT) to abandon the run; *qm is then partly
// optimised and must be discarded.
using OptimizeProgressFn = std::function<void(int unit, int units, const std::string& name,
                                              int it, int iters, double loss)>;

struct OptimizeUnitStats {
  std::string name;
  double first_loss = 0.0, last_loss = 0.0;  // reconstruction loss, first / last batch
};

// Optimises `qm` (calibration's output: FP32 weights and a plan; a loaded model file holds
// dequantized weights, whose rounding rests are all 0) in place on `n` images [n][C][H][W] of
// `fp`, the FP32 model that was calibrated (the source of every unit's inputs and targets; same
// shapes as qm->model). Deterministic: the same inputs and options give the same bytes for any
// thread count. Throws adalog::Error for n < recon.batch, mismatched models, plans the
// differentiable block does not support (twin post-GELU quantizers, Swin), or a step size that
// leaves the positive floats.
std::vector<OptimizeUnitStats> OptimizeModel(const VitModel& fp, const float* images, int n,
                                             const OptimizeOptions& o, QuantizedModel* qm,
                                             const OptimizeProgressFn& progress = nullptr);

// One Linear unit's training loop (the patch embedding or the head): the loop of
// ReconstructBlock (same sampling, Adam on the alphas with the rounding regulariser, cosine-decayed
// Adam on the input step size when `o.train_act`) on `n` inputs [n * rows_per_image][in] and
// targets [n * rows_per_image][out]. Returns the learned state.
LinearTrainParams<float> ReconstructLinear(LinearRecon<float>* unit, const float* inputs,
                                           const float* targets, int n, const ReconOptions& o,
                                           ReconStats* stats,
                                           const std::function<void(int it, double rec)>& progress);

// Writes a Linear unit's learned state: every weight element becomes its hard-rounded level
// (code - z) * s (quant/adaround.h AdaRoundHardCode), and, if `in_q` is uniform and the state has
// a step size, the step size becomes in_q's scale.
void ApplyLinearReconstruction(const LinearTrainParams<float>& p, const UniformPerChannel& wq,
                               int out, int in, float* weight, ActQuant* in_q);

}  // namespace adalog::search
