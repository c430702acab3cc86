// The two one-Linear reconstruction units of `--optimize` besides the transformer blocks: the
// patch embedding (its convolution as a Linear over im2col patch rows) and the head (the head
// Linear on the pooled, normed features). Forward with the plan's fake quantization in training
// mode (AdaRound soft weight, straight-through uniform input quantizer), the official loss of the
// unit, and the backward to the AdaRound alphas and the input step size (docs/method.md §10).
//
// Source of the method: the official AdaLog code, utils/block_recon.py (the PatchEmbed and `head`
// units of BlockReconstructor, LossFunction: lp_loss / 10 for every unit but the head, whose loss
// is F.kl_div(log_softmax(pred), softmax(target), reduction='batchmean')).
//
// Numbers: T = float for training, double for the gradient checks
// (tests/search/linear_recon_test.cc). Deterministic for any thread count: every output element
// and every per-row partial sum is computed by the same sequential code whatever the split, and
// partial sums are added in row order. The workspace is sized once (no allocation per Forward /
// Backward).
#pragma once

#include <cstdint>
#include <vector>

#include "quant/ste.h"
#include "runtime/quant_plan.h"
#include "runtime/vit_model.h"
#include "search/recon/block_grad.h"  // SteMode
#include "search/recon/qdrop.h"

namespace adalog::search {

enum class LinearLoss {
  // sum over images, rows of the image, channels of (y - t)^2 / (images * out) / 10: lp_loss(p=2,
  // reduction='none') / 10 on a [B, rows, out] output (dim 1, summed, is the row (patch) axis).
  kMse,
  // (1/B) sum over images and classes of p (log p - log_softmax(y)), p = softmax(t): torch's
  // F.kl_div(log_softmax(y), softmax(t), reduction='batchmean') (target 0 contributes 0).
  kKl,
};

// The trainable state of one unit, and equally the layout of its gradients.
template <typename T>
struct LinearTrainParams {
  std::vector<T> alpha;      // [out][in]
  std::vector<T> act_scale;  // 1 entry for a uniform input quantizer; empty when the input is FP32
  void SetZeroLike(const LinearTrainParams& o) {
    alpha.assign(o.alpha.size(), T(0));
    act_scale.assign(o.act_scale.size(), T(0));
  }
};

template <typename T>
class LinearRecon {
 public:
  // `lin` (FP32 weight [out][in] and bias, copied), its per-output-row weight quantizer `wq`,
  // the input quantizer `in_q` (kNone or kUniform; anything else throws adalog::Error), for up to
  // `max_batch` images of `rows_per_image` rows (patches for the embedding, 1 for the head).
  LinearRecon(const LinearParams& lin, const UniformPerChannel& wq, const ActQuant& in_q,
              int rows_per_image, LinearLoss loss, int max_batch, int threads);

  // The starting point: alphas from the weight's rounding rests (quant/adaround.h), the input
  // step size from the plan.
  LinearTrainParams<T> InitialParams() const;

  // Forward of `batch` images: x [batch * rows_per_image][in], the output written to `out` (may
  // be null) and the loss against `target` ([batch * rows_per_image][out]; may be null, then 0)
  // returned. Saves what Backward needs.
  double Forward(const LinearTrainParams<T>& p, const T* x, int batch, const T* target, T* out,
                 SteMode mode = SteMode::kNormal);
  // Gradients of the last Forward's loss w.r.t. p (written, not accumulated) and, if dx is not
  // null, w.r.t. x.
  void Backward(const LinearTrainParams<T>& p, LinearTrainParams<T>* grad, T* dx = nullptr);

  // QDrop (search/recon/qdrop.h) on the input quantizer for the following Forward calls (site 0).
  void SetDrop(const QDropMask& mask) { drop_ = mask; }

  int in() const { return lin_.in; }
  int out() const { return lin_.out; }
  int rows_per_image() const { return rows_per_image_; }

 private:
  const LinearParams lin_;
  const UniformPerChannel wq_;
  const bool quant_in_;
  int32_t zp_ = 0, cmin_ = 0, cmax_ = 0;
  float init_scale_ = 1.f;
  const int rows_per_image_;
  const LinearLoss loss_;
  const int max_batch_, threads_;
  int batch_ = 0;
  QDropMask drop_;

  // Workspace (sized once for max_batch).
  std::vector<T> xq_, dxdx_, dxds_;   // quantized input and its derivatives
  std::vector<SteRecord<T>> rec_;     // frozen rounding (record / replay)
  std::vector<T> w_soft_, w_soft_t_, dw_dalpha_;
  std::vector<T> y_, gy_, gx_;
  std::vector<double> partial_;       // per row
};

extern template class LinearRecon<float>;
extern template class LinearRecon<double>;

}  // namespace adalog::search
