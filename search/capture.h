// FP32 activation capture for calibration: runs the FP32 executor over the calibration images
// and keeps only the tensors of the op group being calibrated (one transformer block, or the
// patch embedding + head), so memory stays bounded by one block's activations. Every layer is
// calibrated on FP inputs and FP targets (method §4.2), so blocks are independent.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "runtime/executor_fp32.h"
#include "runtime/vit_model.h"

namespace adalog::search {

// One block's FP tensors over all calibration images. Rows of [rows][cols] tensors are
// image-major (image * tokens + token), `tokens` x `dim` the block's (for Swin its stage's).
// Per-head tensors are [heads][groups][group_rows][...]: attention is global within a group and
// never across groups. A ViT image is one group of `tokens` rows; a Swin image is `windows`
// groups of N = window^2 rows (the FP32 executor's window rows, padding rows included, so the
// layout [heads][images][windows*N][...] is the same memory).
struct BlockCapture {
  int images = 0, tokens = 0, dim = 0, heads = 0, head_dim = 0;
  int groups = 0, group_rows = 0;
  std::vector<float> qkv_in, qkv_out;        // [I*T][D], [I*T][3D]
  std::vector<float> q, k, v;                // [H][G][R][hd]
  std::vector<float> probs;                  // [H][G][R][R]
  std::vector<float> proj_in, proj_out;      // [I*T][D]
  std::vector<float> fc1_in, fc1_out;        // [I*T][D], [I*T][hidden] (GELU input)
  std::vector<float> gelu_out, fc2_out;      // [I*T][hidden], [I*T][D]
  // Swin, a stage's last block when the stage ends with a patch merge (else empty): the
  // reduction Linear's FP input (the merge's normed 4C rows) and output, [I*merge_tokens][...].
  int merge_tokens = 0;
  std::vector<float> merge_in, merge_out;
  int64_t rows() const { return static_cast<int64_t>(images) * tokens; }
  int64_t merge_rows() const { return static_cast<int64_t>(images) * merge_tokens; }
};

// Patch embedding and classifier head(s).
struct EdgeCapture {
  std::vector<float> patch_in, patch_out;        // [I*P][C*p*p], [I*P][D]
  std::vector<float> head_in, head_out;          // [I][D], [I][classes]
  std::vector<float> head_dist_in, head_dist_out;
};

// Streams the FP32 model over the calibration images block by block: the residual stream of all
// images ([n * tokens][dim], 9.7 MB at DeiT-S / 32 images; Swin: sized for its largest stage,
// each batch's rows contiguous at the stage the stream is at) is kept between calls, so each block
// runs once over the images in total (one FP forward for the whole calibration) and only the
// current block's taps are held. Calls in model order are streamed: CapturePatchEmbed, then
// CaptureBlock(0), CaptureBlock(1), ..., then CaptureHead. Any other order is still correct
// (the stream restarts from the embedding or skips blocks without keeping their taps), only
// slower.
class CaptureRunner {
 public:
  // `model` and `images` ([n][C][H][W]) must outlive the runner. batch: images per executor run.
  CaptureRunner(const VitModel& model, const float* images, int n, int batch, int threads);
  ~CaptureRunner();
  // Patch-embedding taps (patch_in / patch_out of `out`); starts the stream.
  void CapturePatchEmbed(EdgeCapture* out);
  // One block's taps; advances the stream past the block.
  void CaptureBlock(int block, BlockCapture* out);
  // Head taps (head_in / head_out, and the distillation head's); runs the remaining blocks.
  void CaptureHead(EdgeCapture* out);
  // Patch embedding and head taps together (one full FP forward, not streamed).
  void CaptureEdges(EdgeCapture* out);

 private:
  void RunAll(Fp32Observer* obs);
  // Runs the embedding (observed by obs, may be null) into the stream; next block 0.
  void StartStream(Fp32Observer* obs);
  // Advances the stream (unobserved) until the next block is `block`.
  void AdvanceTo(int block);
  int64_t ImageElems() const;
  // Residual-stream elements reserved per image (ViT: tokens x dim; Swin: the largest stage's).
  int64_t StreamRow() const;
  const VitModel& model_;
  const float* images_;
  int n_, batch_;
  std::unique_ptr<ExecutorFp32> exec_;
  std::vector<float> stream_;  // residual stream, StreamRow() per image, before block next_block_
  int next_block_ = -1;        // -1: stream not started
};

}  // namespace adalog::search
