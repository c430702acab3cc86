// One block's reconstruction (utils/block_recon.py BlockReconstructor.reconstruct_single_block of
// the official code, for a transformer block): Adam on the AdaRound alphas (+ the rounding
// regulariser) and, with train_act, Adam with cosine decay on the activation step sizes, against
// the FP32 block output on the FP32 block input; then the learned state written into the
// quantized model (hard codes into the weights, step sizes into the plan).
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "runtime/quant_plan.h"
#include "search/recon/block_grad.h"

namespace adalog::search {

// torch.optim.Adam with its defaults (betas 0.9 / 0.999, eps 1e-8, no weight decay), element-wise,
// so deterministic. `t` is the 1-based step count.
struct AdamState {
  std::vector<float> m, v;
};
void AdamStep(float* param, const float* grad, int64_t n, double lr, int64_t t, AdamState* s);
// The same update on the elements [i0, i1) only; s->m and s->v must already hold n entries.
void AdamStepRange(float* param, const float* grad, int64_t i0, int64_t i1, double lr, int64_t t,
                   AdamState* s);

struct ReconOptions {
  int iters = 20000;         // per block (official default)
  int batch = 32;            // images per iteration, drawn without replacement each iteration
  double lr_alpha = 1e-3;    // Adam default lr: the official w_optimizer passes none
  double lr_act = 4e-5;      // cosine-annealed to 0 over `iters`
  double round_weight = 0.01;
  double warmup = 0.2;       // regulariser off, b held at b_start, for the first 20%
  double b_start = 20.0, b_end = 2.0;
  bool train_act = true;
  // QDrop (search/recon/qdrop.h): the probability that an activation quantizer's element keeps
  // its unquantized value in a training forward; 0 = the official method.
  double drop_prob = 0.0;
  uint32_t seed = 0;         // batch sampling
  int threads = 1;
};

struct ReconStats {
  double first_loss = 0.0;  // reconstruction loss of the first iteration's batch
  double last_loss = 0.0;   // ... and of the last one (soft rounding, straight-through)
};

// Reconstructs block `b` of `qm` from n FP32 block inputs / outputs ([n * tokens][dim] each),
// returns the learned state. `qm` must be calibration's output (FP32 weights): a loaded model
// file holds the dequantized weights, whose rounding rests are all 0, so AdaRound has nothing to
// learn from. Progress (iteration, loss) every `report_every` iterations if set.
BlockTrainParams<float> ReconstructBlock(
    const QuantizedModel& qm, int b, const float* inputs, const float* targets, int n,
    const ReconOptions& o, ReconStats* stats,
    const std::function<void(int it, double rec, double round)>& progress = nullptr,
    int report_every = 0);

// Writes the learned state into qm: each quantized weight element becomes its hard-rounded level
// (code - z) * s (quant/adaround.h AdaRoundHardCode), so the plan's encoder gives the learned
// code; the activation step sizes become the plan's scales; a folded post-GELU shift is folded
// again with the new quantized fc2 weight.
void ApplyBlockReconstruction(const BlockTrainParams<float>& p, int b, QuantizedModel* qm);

}  // namespace adalog::search
