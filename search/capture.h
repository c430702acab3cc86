// FP32 activation capture for calibration: runs the FP32 executor over the calibration images
// and keeps only the tensors of the op group being calibrated (one transformer block, or the
// patch embedding + head), so memory stays bounded by one block's activations. Every layer is
// calibrated on FP inputs and FP targets (AdaLog spec 4.2), so blocks are independent.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "runtime/executor_fp32.h"
#include "runtime/vit_model.h"

namespace adalog::search {

// One block's FP tensors over all calibration images. Rows of [rows][cols] tensors are
// image-major (image * tokens + token); per-head tensors are [heads][images][...].
struct BlockCapture {
  int images = 0, tokens = 0, heads = 0, head_dim = 0;
  std::vector<float> qkv_in, qkv_out;        // [I*T][D], [I*T][3D]
  std::vector<float> q, k, v;                // [H][I][T][hd]
  std::vector<float> probs;                  // [H][I][T][T]
  std::vector<float> proj_in, proj_out;      // [I*T][D]
  std::vector<float> fc1_in, fc1_out;        // [I*T][D], [I*T][hidden] (GELU input)
  std::vector<float> gelu_out, fc2_out;      // [I*T][hidden], [I*T][D]
  int64_t rows() const { return static_cast<int64_t>(images) * tokens; }
};

// Patch embedding and classifier head(s).
struct EdgeCapture {
  std::vector<float> patch_in, patch_out;        // [I*P][C*p*p], [I*P][D]
  std::vector<float> head_in, head_out;          // [I][D], [I][classes]
  std::vector<float> head_dist_in, head_dist_out;
};

class CaptureRunner {
 public:
  // `model` and `images` ([n][C][H][W]) must outlive the runner. batch: images per executor run.
  CaptureRunner(const VitModel& model, const float* images, int n, int batch, int threads);
  ~CaptureRunner();
  void CaptureBlock(int block, BlockCapture* out);
  void CaptureEdges(EdgeCapture* out);

 private:
  void RunAll(Fp32Observer* obs);
  const VitModel& model_;
  const float* images_;
  int n_, batch_;
  std::unique_ptr<ExecutorFp32> exec_;
};

}  // namespace adalog::search
