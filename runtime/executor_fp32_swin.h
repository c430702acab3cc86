// The FP32 executor's Swin path (ExecutorFp32 delegates to it for m.is_swin()): one implementation
// per Swin schedule step (vit_schedule.h, swin_schedule.cc), walked in schedule order over whole
// tensors. Linears are oneDNN matmuls over chunks of at most 64 rows of one image, one thread
// each, so an image's bytes depend on neither the thread count nor the batch; attention runs per
// (image, head, 8 windows) and the float islands per 64 rows. Every parallel step runs on the
// runtime's pool (thread_pool.h), none on OpenMP: OpenMP's spinning workers beside the pool's
// took the second core (swin_t b1: 2 threads no faster than 1; with OMP_WAIT_POLICY=PASSIVE
// 2.2x faster, under load).
//
// Taps as ExecutorFp32 fires them (observer: every tap; rewriter: the input-side ones, in place).
// kWindowAttention's per-head taps are per (image, head) over the block's window rows, padding
// rows included (a padding row's q/k/v is the qkv bias): kQ / kK / kV [windows*N][head_dim] and
// kAttnProbs [windows*N][N] (softmax after the relative position bias and the mask, window by
// window); TapInfo::tokens is the stage's token count. kMergeIn (input side) is the patch merge's
// normed [B*T'][4C] rows before the reduction Linear, block = the stage's last block.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "runtime/kernels/float_kernels.h"
#include "runtime/vit_model.h"
#include "runtime/vit_schedule.h"

namespace adalog {

class Fp32Observer;
class Fp32Rewriter;

class SwinFp32 {
 public:
  // `m` and `s` must outlive this; m is a validated Swin model, s its schedule.
  SwinFp32(const VitModel& m, const Schedule& s, int max_batch, int threads, const FloatKernels& fk);
  // A fork for an executor whose schedule `s` equals src's (its own copy, so the fork does not
  // depend on src's lifetime): shares the transposed weights and row maps, owns a workspace.
  SwinFp32(const SwinFp32& src, const Schedule& s);
  SwinFp32(const SwinFp32&) = delete;
  SwinFp32& operator=(const SwinFp32&) = delete;
  ~SwinFp32();

  // images [batch][C][H][W] -> logits [batch][classes]; 1 <= batch <= max_batch.
  void Run(const float* images, int batch, float* logits);
  // Stepping (ExecutorFp32::RunEmbed / RunBlock / RunHead): the steps of schedule range
  // s.embed / s.blocks[block] / s.head, the residual stream x in the caller's buffer, contiguous
  // [batch * tokens][dim] at the stage it is at: after RunEmbed stage 0's; RunBlock reads its
  // block's stage and, for a stage's last block, writes the merged stream of the next stage (the
  // merge belongs to that block's range). The same bytes as Run, step for step.
  void RunEmbed(const float* images, int batch, float* x);
  void RunBlock(int block, float* x, int batch);
  void RunHead(const float* x, int batch, float* logits);
  void SetHooks(Fp32Observer* observer, Fp32Rewriter* rewriter) {
    observer_ = observer;
    rewriter_ = rewriter;
  }
  const void* workspace_data() const { return ws_.data(); }
  size_t workspace_bytes() const { return ws_.size() * sizeof(float); }

  struct Shared;  // executor_fp32_swin.cc
  struct Dnn;     // executor_fp32_swin.cc

 private:
  void Allocate();
  void RunStep(size_t i, int batch, const float* images, float* logits);
  void RunRange(StepRange r, int batch, const float* images, float* logits);
  // Elements per image of the residual stream (Buf::kX) at stage `stage`.
  int64_t StreamElems(size_t stage) const;
  void Linear(const float* x, int64_t rows, int64_t tokens, int wi, float* y);
  void WindowAttention(const Step& st, int batch);
  void Tap(TapPoint tap, int block, int batch, int tokens, float* data, int rows, int cols,
           int image = -1, int head = -1);

  const VitModel& m_;
  const Schedule& s_;
  int max_batch_, threads_;
  const FloatKernels& fk_;
  std::shared_ptr<const Shared> sh_;
  std::unique_ptr<Dnn> dnn_;
  std::vector<float> ws_;
  float* buf_[static_cast<int>(Buf::kNumBufs)] = {};
  float* patches_ = nullptr;
  float* pooled_ = nullptr;
  float *qh_ = nullptr, *kh_ = nullptr, *vh_ = nullptr;  // [batch][heads][windows*N][head_dim]
  float* probs_ = nullptr;                                // [batch][heads][windows*N][N]
  Fp32Observer* observer_ = nullptr;
  Fp32Rewriter* rewriter_ = nullptr;
};

}  // namespace adalog
