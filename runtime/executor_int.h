// The integer executor: runs a QuantizedModel with the integer kernels of runtime/kernels/int/
// (u8 activation codes x s8 weights, log-code GEMMs) and FP32 float islands, and returns logits.
// It computes the same math as the simulated executor (executor_sim.h), which is its judge:
// activation codes are bit-identical wherever they come from the same float input through the
// same quantizer; outputs differ only by fp32 summation order / epilogue rounding (a code can
// then move across a decision boundary downstream), by the polynomial exp/erf of the fused log-code
// writers when selected, and by the log-code GEMM design's named approximation (int_kernels.h,
// "Designs").
//
// Per op (method §3.2 placement, quant_plan.h):
//   patch_embed          FP32 GEMM (oneDNN) over the dequantized weights; the image stays FP32
//   qkv, proj, fc1,      Encode input (uniform per tensor, quant/uniform.h) -> u8 codes ->
//   head(, head_dist)    qgemm u8 x s8 with the per-row weight zero points folded into an int32
//                        bias, fp32 epilogue sa*sw[n] + bias[n] (PrepareQLinear / RunQLinear)
//   q@k^T                per (image, head): q, k encoded per head straight from the qkv output
//                        rows; Matmul1Head with alpha = sq*sk*attn_scale
//   softmax              log probs: FP32 softmax + quant's LogQuantizer::Encode (default), or the
//                        fused SoftmaxToLogCodes writer (IntPathOptions::fused_log_writers);
//                        uniform probs: FP32 softmax + Encode
//   attn@V               log probs: LogMatmul (B = this head's v codes, repacked per (image, head));
//                        uniform probs: Matmul1Head(P codes, v^T codes)
//   GELU -> fc2          log: FP32 GELU + quant's ShiftLogQuantizer::Encode (default), or the fused
//                        GeluToLogCodes writer (erf GELU) -> LogMatmul over fc2's weight codes,
//                        bias = bias' (the GELU shift folded:
//                        by calibration when shift_folded, else here at prepare);
//                        uniform: FP32 GELU + Encode -> qgemm
//   LayerNorm, residual adds, tokens, pooling: FP32 (float_kernels.h)
// Swin (executor_int_swin.cc; conventions in swin_model.h): the same block operators with window
// attention over (image, window, head) units: q/k/v codes gathered through the block's window-row
// map (padding, cyclic shift, partition; a padding row takes the codes of the qkv bias), the
// relative position bias and the shift mask added to the q@k^T scores before the softmax, the
// attn@V rows written back through the map (window reverse, crop); the patch-embedding norm, the
// merges' 2x2 gather and LayerNorm in FP32, each merge's bias-free reduction a uniform-input qgemm
// (QuantPlan::merges); the head over the mean of the last stage's normed tokens.
// Not supported (Prepare throws adalog::Error "integer path does not support <quantizer> for
// <op>; use --simulate"; Session then falls back to the simulated executor): log-sqrt2 (no
// integer decode table), twin uniform, symmetric or
// missing (FP32) activation quantizers, missing weight quantizers, K > 4096.
//
// Prepare (the constructor) validates, packs every weight and allocates the whole workspace for
// max_batch; it may throw adalog::Error. Run never allocates. Run walks the forward schedule
// (vit_schedule.h). Threads: the runtime's thread pool (thread_pool.h; not OpenMP) over row chunks
// (everything between two attentions is one row-local stage, so one parallel region runs proj ..
// fc2 .. next LN1 .. qkv), over (image, head) pairs for the attention and over images for the
// patch-embed GEMM (oneDNN, one OpenMP thread per image); every row's
// result is computed by one thread with the same code, so the output bytes do not depend on the
// thread count.
#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include "runtime/executor_fp32.h"
#include "runtime/kernels/int/int_kernels.h"
#include "runtime/quant_plan.h"

namespace adalog {

struct IntPathOptions {
  // Log-code GEMM designs (runtime/kernels/int/README.md): kS16 is ~100x closer to the real-valued
  // decode than kU8 at 45-60% of its speed; kBuckets is exact and slow (checking only).
  intk::LogDesign attn_design = intk::LogDesign::kS16;
  intk::LogDesign fc2_design = intk::LogDesign::kS16;
  // Log codes of softmax / GELU: true = the fused writers (logcode_writers.h: polynomial exp/erf,
  // codes without a float tensor); false = the FP32 island kernels (float_kernels.h) followed by
  // quant's encoder, which gives the simulated executor's codes exactly whenever the island's
  // input is the same. Default islands: measured faster on this CPU (DeiT-S W4A4 batch 8, 1
  // thread: ~10% less CPU time per forward; digits eval 0.8 s vs 1.1 s) and exact against the
  // simulated path's codes. Env ADALOG_LOG_WRITERS=fused|islands.
  bool fused_log_writers = false;
  // Rows per chunk of the row-local work (proj .. fc2 .. next qkv): chunks are claimed by the
  // threads one at a time, so a thread slowed by other work on its core takes fewer of them, and
  // a chunk's intermediates (fc1 output, GELU codes, decoded levels) stay in L2. Results do not
  // depend on it (every row is computed by the same code). Env ADALOG_ROW_CHUNK=N.
  int row_chunk = 48;
};

// The defaults, overridden by ADALOG_LOG_DESIGN=buckets|s16|u8 (both ops), ADALOG_LOG_WRITERS and
// ADALOG_ROW_CHUNK when set; an unknown value throws adalog::Error.
IntPathOptions DefaultIntPathOptions();
// "buckets" | "s16" | "u8" -> design; false for anything else.
bool ParseLogDesign(const std::string& text, intk::LogDesign* design);

class ExecutorInt {
 public:
  // Prepares from `qm` (copied what it needs; qm need not outlive the executor). May throw
  // adalog::Error (unsupported plan, inconsistent shapes / parameters).
  ExecutorInt(const QuantizedModel& qm, const ExecutorOptions& options,
              const IntPathOptions& int_options = DefaultIntPathOptions());
  // The same from the pair (no QuantizedModel copy needed: Session uses it on a LoadedModel).
  ExecutorInt(const VitModel& model, const QuantPlan& plan, const ExecutorOptions& options,
              const IntPathOptions& int_options = DefaultIntPathOptions());
  ~ExecutorInt();

  // "" when the integer path can run `plan` on `model`, else the first reason it cannot, as
  // "integer path does not support <quantizer> for <op>" (ops in prepare order: the blocks, a
  // Swin model's "patch merge <i> reduction", the heads; the constructor throws it with
  // "; use --simulate" appended; Session falls back to the simulated executor with it). Checks
  // quantizer kinds only, not shapes or parameter values.
  static std::string WhyUnsupported(const QuantPlan& plan, const VitModel& model);
  ExecutorInt(const ExecutorInt&) = delete;
  ExecutorInt& operator=(const ExecutorInt&) = delete;

  // images: [batch][C][H][W] float32; logits: [batch][num_classes]; 1 <= batch <= max_batch.
  // Inputs are trusted (adalog_runtime.h validates them). One Run at a time per executor (the
  // workspace and per-thread scratch are its own); for concurrent calls use Fork().
  void Run(const float* images, int batch, float* logits);

  // A new executor sharing this one's prepared state read-only (model skeleton, packed weights,
  // encoders, the patch-embed primitive) with a fresh workspace and per-thread scratch
  // (workspace_bytes() plus the attention / fc2 scratch of num_threads threads). Executors of one
  // fork family may Run concurrently, one call per executor at a time; Fork itself may run while
  // the family runs. The observer is not carried over. May throw adalog::Error (allocation).
  std::unique_ptr<ExecutorInt> Fork() const;

  // Test / debugging hook: reports, between ops, the float tensors the integer path computes at
  // kPatchEmbedOut, kQkvIn (LN1 output, before encode), kQkvOut, kProjIn (merged attn@V output),
  // kProjOut, kFc1In, kFc1Out (GELU input), kFc2Out, kHeadIn, kHeadOut, kHeadDistIn,
  // kHeadDistOut, kLogits, and for Swin kMergeIn (block / batch / tokens filled; image = head =
  // -1). With an observer
  // set, the row-local ops run one parallel region each (same row code, same results). Not owned.
  void SetObserver(Fp32Observer* observer);

  int max_batch() const;
  int num_threads() const;
  // One line per op: the kernel selected for this CPU / ISA cap.
  std::string DescribeKernels() const;
  // The workspace (fixed at prepare; tests check Run does not move it).
  const void* workspace_data() const;
  size_t workspace_bytes() const;

 private:
  struct Impl;
  explicit ExecutorInt(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace adalog
