// The FP32 executor's Swin path (ExecutorFp32 delegates to it for m.is_swin()): one implementation
// per Swin schedule step (vit_schedule.h, swin_schedule.cc), walked in schedule order over whole
// tensors. GEMMs are a row-parallel loop with a fixed summation order per output element (not
// oneDNN yet), so the bytes do not depend on the thread count.
#pragma once

#include <cstddef>
#include <memory>
#include <vector>

#include "runtime/kernels/float_kernels.h"
#include "runtime/vit_model.h"
#include "runtime/vit_schedule.h"

namespace adalog {

class SwinFp32 {
 public:
  // `m` and `s` must outlive this; m is a validated Swin model, s its schedule.
  SwinFp32(const VitModel& m, const Schedule& s, int max_batch, int threads, const FloatKernels& fk);
  // A fork: shares the transposed weights and row maps, owns a workspace.
  SwinFp32(const SwinFp32& src);
  ~SwinFp32();

  // images [batch][C][H][W] -> logits [batch][classes]; 1 <= batch <= max_batch.
  void Run(const float* images, int batch, float* logits);
  const void* workspace_data() const { return ws_.data(); }
  size_t workspace_bytes() const { return ws_.size() * sizeof(float); }

  struct Shared;  // executor_fp32_swin.cc

 private:
  void Allocate();
  void RunStep(size_t i, int batch, const float* images, float* logits);
  void Linear(const float* x, int64_t rows, int wi, float* y) const;
  void WindowAttention(const Step& st, int batch);

  const VitModel& m_;
  const Schedule& s_;
  int max_batch_, threads_;
  const FloatKernels& fk_;
  std::shared_ptr<const Shared> sh_;
  std::vector<float> ws_;
  float* buf_[static_cast<int>(Buf::kNumBufs)] = {};
  float* patches_ = nullptr;
  float* pooled_ = nullptr;
};

}  // namespace adalog
