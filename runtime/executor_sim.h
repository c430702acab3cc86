// The simulated (fake-quant) executor: the accuracy reference of a QuantizedModel ("one math,
// three executions": when the integer kernels and this executor disagree, this one is the judge).
//
// It is the FP32 executor run over
//   * a copy of the model whose Linear and patch-embed weights are replaced by their fake-quantized
//     values under the plan's per-output-channel uniform quantizers (quant/uniform.h), and
//   * an Fp32Rewriter that fake-quantizes, in place, each tensor a quantized op consumes, with the
//     plan's quantizer at the method §3.2 placement:
//       qkv.in / proj.in / fc1.in / head.in / head_dist.in   ActQuant (uniform per tensor)
//       q, k (unscaled q: attn_scale is applied after q@k^T)  uniform per head
//       softmax probs                                         ActQuant (log / uniform, per tensor)
//       v                                                     uniform per head
//       gelu.out (fc2.in)                                     ActQuant: Shift-log Q(x+shift), minus
//                                                             shift unless shift_folded (then the
//                                                             -shift is already in fc2's bias)
//   The image (patch-embed input) and everything else stay FP32.
// All quantizer math is quant/'s (array FakeQuant forms); nothing is re-implemented here.
#pragma once

#include <memory>
#include <string>

#include "runtime/executor_fp32.h"
#include "runtime/quant_plan.h"

namespace adalog {

// Fake-quantizes x[0..n) in place with an activation quantizer (no-op for kNone).
// Throws adalog::Error on invalid parameters.
void FakeQuantizeAct(const ActQuant& q, float* x, int64_t n);

// The model an ExecutorSim runs: `qm.model` with every quantized weight replaced by its
// fake-quantized value (idempotent on a loaded file's already dequantized weights). Validates the
// plan against the model's shapes (throws adalog::Error). A per-channel / per-head parameter set
// left EMPTY means "not quantized" (FP32): tests use it; calibration and model files never do.
VitModel MakeSimulatedModel(const QuantizedModel& qm);

// The rewriter ExecutorSim installs: fake-quantizes each input-side tap of an ExecutorFp32 running
// `model` (which must be the simulated model, or at least have its shapes) with `plan`'s quantizer.
// Exposed for tests that check each placement element by element.
std::unique_ptr<Fp32Rewriter> MakeFakeQuantRewriter(const QuantPlan& plan, const VitModel& model);

class ExecutorSim {
 public:
  // Prepares a private copy of the model (MakeSimulatedModel) and the quantizers; `qm` need not
  // outlive the executor. May throw adalog::Error.
  ExecutorSim(const QuantizedModel& qm, const ExecutorOptions& options);
  ~ExecutorSim();
  ExecutorSim(const ExecutorSim&) = delete;
  ExecutorSim& operator=(const ExecutorSim&) = delete;

  // As ExecutorFp32::Run (one call at a time per executor).
  void Run(const float* images, int batch, float* logits);
  // As ExecutorFp32::Fork: shares the simulated model and the quantizers read-only, owns a fresh
  // FP32 workspace; forks may Run concurrently. The observer is not carried over.
  std::unique_ptr<ExecutorSim> Fork() const;
  size_t workspace_bytes() const;
  // Observes the fake-quantized inputs (and FP32 outputs) of every op. Not owned.
  void SetObserver(Fp32Observer* observer);

  int max_batch() const;
  int num_threads() const;
  const VitModel& model() const;  // the simulated (weight fake-quantized) model
  std::string DescribeKernels() const;

 private:
  struct Impl;
  explicit ExecutorSim(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace adalog
