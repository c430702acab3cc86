// The FP32 executor: runs a VitModel on a batch of NCHW float32 images and returns logits.
// GEMMs through oneDNN f32 matmul (weights pre-packed at prepare), float islands through the
// run-time dispatched kernels of runtime/kernels/float_kernels.h, threads through OpenMP.
//
// Prepare (the constructor) validates the model, allocates the whole workspace for max_batch and
// packs the weights; it may throw adalog::Error. Run never allocates once a batch size has been
// seen: the oneDNN primitives and their argument lists for a batch size are built at the first
// Run with that batch size (oneDNN picks kernels per M = rows) and cached.
//
// Capture: an optional Fp32Observer sees the FP32 input/output of every quantizable op (see
// TapPoint). With no observer set, the cost is one pointer test per op.
//
// Rewrite: an optional Fp32Rewriter may modify, in place, every INPUT-side tap (the tensors a
// GEMM consumes next: kPatchEmbedIn, kQkvIn, kQ, kK, kV, kAttnProbs, kProjIn, kFc1In, kGeluOut,
// kHeadIn, kHeadDistIn). It runs before the observer, so the next op and the observer both see
// the rewritten values. The simulated (fake-quant) executor (executor_sim.h) is built on it.
#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include "runtime/cpu_features.h"
#include "runtime/vit_model.h"
#include "runtime/vit_schedule.h"

namespace adalog {

// TapPoint, TapInfo: runtime/vit_schedule.h (the schedule says where each tap fires).

// Called synchronously from Run (on the calling thread, between ops); `data` is valid only during
// the call. Implementations must not call back into the executor.
class Fp32Observer {
 public:
  virtual ~Fp32Observer() = default;
  virtual void OnTensor(const TapInfo& info, const float* data, int rows, int cols) = 0;
};

// Called synchronously from Run (on the calling thread, between ops) at the input-side taps only.
// `data` is the exact buffer the next GEMM reads; rewriting it in place changes what that GEMM
// computes. It may use OpenMP internally. Implementations must not call back into the executor.
class Fp32Rewriter {
 public:
  virtual ~Fp32Rewriter() = default;
  virtual void Rewrite(const TapInfo& info, float* data, int rows, int cols) = 0;
};

struct ExecutorOptions {
  int max_batch = 1;    // 1..1024
  int num_threads = 0;  // 0: omp_get_max_threads()
  // Highest ISA level the float islands may use; defaults to ActiveIsaLevel() (env ADALOG_ISA).
  IsaLevel isa_cap = ActiveIsaLevel();
};

class ExecutorFp32 {
 public:
  // `model` must outlive the executor (LayerNorm parameters and tokens are read from it).
  ExecutorFp32(const VitModel& model, const ExecutorOptions& options);
  ~ExecutorFp32();
  ExecutorFp32(const ExecutorFp32&) = delete;
  ExecutorFp32& operator=(const ExecutorFp32&) = delete;

  // images: [batch][C][H][W] float32; logits: [batch][num_classes]. 1 <= batch <= max_batch.
  // Inputs are trusted here (the public API in adalog_runtime.h validates shape and finiteness).
  // One Run at a time per executor (the workspace is shared); for concurrent calls use Fork().
  // Runs on `num_threads` OpenMP threads; the caller's OpenMP setting is restored afterwards.
  void Run(const float* images, int batch, float* logits);

  // A new executor over the same model and options that shares this one's packed weights
  // read-only and owns a fresh workspace and oneDNN plans (workspace_bytes() plus the plans'
  // scratchpad). Executors of one fork family may Run concurrently, one call per executor at a
  // time; Fork itself may run while the family runs. Observer and rewriter are not carried over.
  // The model must outlive every fork. May throw adalog::Error (allocation).
  std::unique_ptr<ExecutorFp32> Fork() const;

  // Stepping API (calibration capture streams the model block by block): the same computation
  // as Run, split at block boundaries, with the observer / rewriter taps of each part. The
  // residual stream x [batch * tokens][dim] lives in the caller's buffer between calls:
  //   RunEmbed(images, b, x); for each block i: RunBlock(i, x, b); RunHead(x, b, logits)
  // gives the same logits (bit for bit) as Run(images, b, logits).
  // Swin: x is [batch * tokens][dim] at the stream's current stage (contiguous); a stage's last
  // block includes the patch merge, so it leaves the next stage's (smaller) stream in x. Size x
  // for the largest stage (executor_fp32_swin.h).
  void RunEmbed(const float* images, int batch, float* x);
  void RunBlock(int block, float* x, int batch);
  void RunHead(const float* x, int batch, float* logits);

  // nullptr disables capture. Not owned.
  void SetObserver(Fp32Observer* observer);
  // nullptr disables rewriting (the default). Not owned.
  void SetRewriter(Fp32Rewriter* rewriter);

  int max_batch() const;
  int num_threads() const;
  const VitModel& model() const;
  // One line per op kind: the kernel chosen (oneDNN implementation names, float-island table).
  std::string DescribeKernels() const;
  // The workspace (fixed at prepare; tests check Run does not move it).
  const void* workspace_data() const;
  size_t workspace_bytes() const;

 private:
  struct Impl;
  explicit ExecutorFp32(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace adalog
