// The differentiable transformer block of block reconstruction: one ViT block's forward with the
// plan's fake quantization in training mode (AdaRound soft weights, straight-through activation
// quantizers), the official reconstruction loss, and the backward to the AdaRound alphas and the
// activation step sizes (docs/method.md "Block reconstruction").
//
// The order of the forward is the schedule's (runtime/vit_schedule.h, Schedule::blocks[b]): the
// walker runs one training implementation per StepOp and, after a step whose tap is an input
// tap, that tap's activation quantizer, exactly where the simulated executor's rewriter
// fake-quantizes; the per-head q / k / v / probability quantizers live inside the attention step,
// as in the other executors. Each step saves what its backward needs; Backward walks the steps in
// reverse.
//
// Threads: the runtime's pool (runtime/thread_pool.h), four regions per Forward + Backward: the
// soft weights (by output-channel blocks), the forward of every step for one image per item, the
// backward of every step for one image per item, and the Linears' dW over the whole batch (by
// output-channel blocks). Items are claimed dynamically, and the pool does not wait for a worker
// that has not started, so a descheduled second thread delays little on a busy machine.
//
// Numbers: T = float for training, double for the gradient checks. Deterministic for any thread
// count: every output element and every per-row / per-(image, head) partial sum is computed by
// the same code whatever the split (the partition into images and channel blocks depends only on
// the batch and the shapes), and partial sums are added in a fixed order.
//
// Not supported (throws adalog::Error): twin-uniform post-GELU quantizers, Swin windows.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "quant/ste.h"
#include "search/recon/qdrop.h"
#include "runtime/quant_plan.h"
#include "runtime/vit_model.h"
#include "runtime/vit_schedule.h"

namespace adalog::search {

// The Linears of a block whose weights get AdaRound alphas.
enum ReconLinear { kReconQkv, kReconProj, kReconFc1, kReconFc2, kNumReconLinears };
// The activation quantizers of a block (scales: 1 per tensor, `heads` for q, k, v).
enum ReconAct {
  kActQkvIn,
  kActQ,
  kActK,
  kActV,
  kActProbs,
  kActProjIn,
  kActFc1In,
  kActFc2In,
  kNumReconActs
};
const char* ReconLinearName(int l);
const char* ReconActName(int a);

// The trainable state of one block, and equally the layout of its gradients.
template <typename T>
struct BlockTrainParams {
  std::array<std::vector<T>, kNumReconLinears> alpha;   // [out][in] per Linear
  std::array<std::vector<T>, kNumReconActs> act_scale;  // empty where the act is not quantized
  void SetZeroLike(const BlockTrainParams& o);
};

// How the rounding is handled in a forward (quant/ste.h): normally, recording the rounding
// offsets and clamp decisions, or replaying recorded ones (the frozen, smooth surrogate that the
// gradient checks difference).
enum class SteMode { kNormal, kRecord, kReplay };

template <typename T>
class BlockRecon {
 public:
  // Block `b` of `m` (the calibrated model, whose plan is `bq`), for up to `max_batch` images of
  // m.num_tokens() tokens, on `threads` pool threads. Throws adalog::Error for an unsupported
  // plan (twin post-GELU quantizer, per-head tensors of the wrong size).
  BlockRecon(const VitModel& m, int b, const BlockQuant& bq, int max_batch, int threads);

  // The starting point: alphas from the weights' rounding rests (quant/adaround.h), scales from
  // the plan.
  BlockTrainParams<T> InitialParams() const;

  // Forward of `batch` images: x [batch*T][D] in, the block output written to `out` (may be
  // null) and the reconstruction loss against `target` (may be null, then 0) returned:
  //   sum over images, tokens, channels of (out - target)^2 / (batch * D) / 10
  // (utils/block_recon.py LossFunction.lp_loss, reduction 'none': (pred-tgt)^2 summed over dim 1,
  // the token axis of [B, N, C], then the mean over B and C; then / 10). Saves what Backward needs.
  double Forward(const BlockTrainParams<T>& p, const T* x, int batch, const T* target,
                 T* out, SteMode mode = SteMode::kNormal);
  // Gradients of the last Forward's loss w.r.t. p (written, not accumulated) and, if dx is not
  // null, w.r.t. the block input x ([batch*T][D]).
  void Backward(const BlockTrainParams<T>& p, BlockTrainParams<T>* grad, T* dx = nullptr);

  // QDrop (search/recon/qdrop.h) for the following Forward calls: each activation quantizer's
  // element keeps its unquantized value where `mask` says so. The default mask drops nothing.
  void SetDrop(const QDropMask& mask) { drop_ = mask; }

  const std::vector<Step>& steps() const { return steps_; }
  int tokens() const { return tokens_; }
  int dim() const { return dim_; }

 private:
  struct ActSpec {
    ActQuant::Kind kind = ActQuant::Kind::kNone;
    int bits = 0, num = 1, den = 1;
    int32_t zp = 0, cmin = 0, cmax = 0;  // uniform
    std::vector<int32_t> head_zp;       // per-head uniform
    T shift = T(0);
    bool folded = false;
    std::vector<T> levels;  // log: LogSteLevels (search/recon/ste_batch.h)
    std::vector<float> log_th;  // log, T = float: LogSteThresholdsF32 (ste_batch_kernels.h)
  };
  // Saved per activation site: the derivatives of every element and (record / replay) its frozen
  // rounding.
  struct ActSave {
    std::vector<T> dxdx, dxds;
    std::vector<SteRecord<T>> rec;
  };

  // One (Linear, block of output channels) item of the soft weights and of WeightGradients.
  struct WeightBlock {
    int linear;
    int64_t o0, o1;
  };

  // The site's straight-through quantizer on data[0, n) (the site's elements offset .. offset +
  // n), then the QDrop mask: QuantizeKinds does the first part.
  void Quantize(int site, const BlockTrainParams<T>& p, int scale_index, T* data, int64_t offset,
                int64_t n);
  void QuantizeKinds(int site, const BlockTrainParams<T>& p, int scale_index, T* data,
                     int64_t offset, int64_t n);
  void ScaleGradMask(int site, T* g, int64_t offset, int64_t n, double* partial) const;
  // Per image `img` (its rows [img T, (img + 1) T)); `slot` indexes per-thread scratch.
  void RunStep(const Step& st, const BlockTrainParams<T>& p, int64_t img);
  void BackStep(const Step& st, int64_t img, int slot);
  void AttentionForward(const BlockTrainParams<T>& p, int64_t img);
  void AttentionBackward(int64_t img, int slot);
  void LinearForward(int l, const T* in, T* out, int64_t r0, int64_t r1);
  void LinearBackward(int l, const T* gout, T* gin, int64_t r0, int64_t r1);
  void TapBackward(TapPoint tap, T* g, int64_t img);
  // dW of all four Linears over the whole batch, after every image's backward.
  void WeightGradients(BlockTrainParams<T>* grad);
  int SiteOfTap(TapPoint tap) const;

  const BlockParams blk_;
  std::array<UniformPerChannel, kNumReconLinears> wq_;
  std::array<const LinearParams*, kNumReconLinears> lin_;
  std::array<ActSpec, kNumReconActs> act_;
  std::vector<Step> steps_;
  int tokens_, dim_, hidden_, heads_, hd_, max_batch_, threads_;
  int batch_ = 0;
  SteMode mode_ = SteMode::kNormal;

  // Workspace (sized once for max_batch).
  std::vector<T> buf_[static_cast<int>(Buf::kNumBufs)];
  std::vector<T> gbuf_[static_cast<int>(Buf::kNumBufs)];
  std::array<std::vector<T>, kNumReconLinears> w_soft_, dw_dalpha_, lin_in_, bias_;
  std::vector<T> ln_in_[2], ln_rstd_[2], ln_xhat_[2];  // ln1, ln2
  std::vector<T> gelu_d_;  // GELU'(input), saved by the forward
  std::vector<T> qh_, kh_, vh_, probs_, probs_q_;  // per (image, head)
  std::vector<T> attn_scratch_;  // per thread: the attention backward's gP, gq, gk, gv
  std::array<ActSave, kNumReconActs> save_;
  QDropMask drop_;
  std::array<std::vector<float>, kNumReconActs> init_scale_;  // the plan's scales
  std::vector<T> diff_;  // out - target of the last Forward
  // Partial sums, each written by one image's item and added up in a fixed order afterwards:
  // the loss per row, the tap step sizes' per [site][row], attention's per [q,k,v,probs][pair].
  std::vector<double> loss_part_, tap_part_, attn_part_;
  std::vector<int> tap_sites_;  // the active input-tap sites the steps run, ascending
  std::vector<WeightBlock> wblocks_;
  std::array<Buf, kNumReconLinears> lin_out_buf_{};  // each Linear's output buffer
  // The Linears' output gradients that a later backward step overwrites (else empty).
  std::array<std::vector<T>, kNumReconLinears> gout_keep_;
};

extern template class BlockRecon<float>;
extern template class BlockRecon<double>;

}  // namespace adalog::search
