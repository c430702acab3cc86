// FP32 capture through the executor's Fp32Observer taps.
#include "search/capture.h"

#include <algorithm>
#include <cstring>

#include "quant/error.h"
#include "runtime/swin_model.h"

namespace adalog::search {
namespace {

void Append(std::vector<float>* v, const float* d, int rows, int cols) {
  v->insert(v->end(), d, d + static_cast<int64_t>(rows) * cols);
}

// Keeps one block's taps; `image_base` is the index of the current executor batch's first image.
class BlockObserver : public Fp32Observer {
 public:
  BlockObserver(int block, BlockCapture* out) : block_(block), out_(out) {}
  int image_base = 0;

  void OnTensor(const TapInfo& info, const float* data, int rows, int cols) override {
    if (info.block != block_) return;
    BlockCapture& c = *out_;
    switch (info.tap) {
      case TapPoint::kQkvIn: Append(&c.qkv_in, data, rows, cols); break;
      case TapPoint::kQkvOut: Append(&c.qkv_out, data, rows, cols); break;
      case TapPoint::kProjIn: Append(&c.proj_in, data, rows, cols); break;
      case TapPoint::kProjOut: Append(&c.proj_out, data, rows, cols); break;
      case TapPoint::kFc1In: Append(&c.fc1_in, data, rows, cols); break;
      case TapPoint::kFc1Out: Append(&c.fc1_out, data, rows, cols); break;
      case TapPoint::kGeluOut: Append(&c.gelu_out, data, rows, cols); break;
      case TapPoint::kFc2Out: Append(&c.fc2_out, data, rows, cols); break;
      case TapPoint::kQ: PerHead(&c.q, info, data, rows, cols); break;
      case TapPoint::kK: PerHead(&c.k, info, data, rows, cols); break;
      case TapPoint::kV: PerHead(&c.v, info, data, rows, cols); break;
      case TapPoint::kAttnProbs: PerHead(&c.probs, info, data, rows, cols); break;
      case TapPoint::kMergeIn: Append(&c.merge_in, data, rows, cols); break;
      default: break;
    }
  }

 private:
  void PerHead(std::vector<float>* v, const TapInfo& info, const float* data, int rows, int cols) {
    const BlockCapture& c = *out_;
    const int64_t per = static_cast<int64_t>(rows) * cols;
    const int64_t img = image_base + info.image;
    std::memcpy(v->data() + (static_cast<int64_t>(info.head) * c.images + img) * per, data,
                sizeof(float) * per);
  }
  int block_;
  BlockCapture* out_;
};

class EdgeObserver : public Fp32Observer {
 public:
  explicit EdgeObserver(EdgeCapture* out) : out_(out) {}
  void OnTensor(const TapInfo& info, const float* data, int rows, int cols) override {
    EdgeCapture& c = *out_;
    switch (info.tap) {
      case TapPoint::kPatchEmbedIn: Append(&c.patch_in, data, rows, cols); break;
      case TapPoint::kPatchEmbedOut: Append(&c.patch_out, data, rows, cols); break;
      case TapPoint::kHeadIn: Append(&c.head_in, data, rows, cols); break;
      case TapPoint::kHeadOut: Append(&c.head_out, data, rows, cols); break;
      case TapPoint::kHeadDistIn: Append(&c.head_dist_in, data, rows, cols); break;
      case TapPoint::kHeadDistOut: Append(&c.head_dist_out, data, rows, cols); break;
      default: break;
    }
  }

 private:
  EdgeCapture* out_;
};

}  // namespace

CaptureRunner::CaptureRunner(const VitModel& model, const float* images, int n, int batch,
                             int threads)
    : model_(model), images_(images), n_(n), batch_(std::max(1, std::min(batch, n))) {
  ExecutorOptions eo;
  eo.max_batch = batch_;
  eo.num_threads = threads;
  exec_ = std::make_unique<ExecutorFp32>(model, eo);
}

CaptureRunner::~CaptureRunner() = default;

void CaptureRunner::RunAll(Fp32Observer* obs) {
  const int64_t img_elems = static_cast<int64_t>(model_.embed.in_channels) * model_.embed.image_h *
                            model_.embed.image_w;
  std::vector<float> logits(static_cast<size_t>(batch_) * model_.num_classes());
  exec_->SetObserver(obs);
  for (int b0 = 0; b0 < n_; b0 += batch_) {
    if (auto* bo = dynamic_cast<BlockObserver*>(obs)) bo->image_base = b0;
    const int nb = std::min(batch_, n_ - b0);
    exec_->Run(images_ + b0 * img_elems, nb, logits.data());
  }
  exec_->SetObserver(nullptr);
}

int64_t CaptureRunner::StreamRow() const {
  if (!model_.is_swin()) return static_cast<int64_t>(model_.num_tokens()) * model_.dim;
  int64_t row = 0;
  for (const SwinStage& st : model_.swin.stages)
    row = std::max(row, static_cast<int64_t>(st.grid_h) * st.grid_w * st.dim);
  return row;
}

int64_t CaptureRunner::ImageElems() const {
  return static_cast<int64_t>(model_.embed.in_channels) * model_.embed.image_h *
         model_.embed.image_w;
}

void CaptureRunner::StartStream(Fp32Observer* obs) {
  const int64_t row = StreamRow();
  stream_.resize(static_cast<size_t>(n_ * row));
  exec_->SetObserver(obs);
  for (int b0 = 0; b0 < n_; b0 += batch_) {
    const int nb = std::min(batch_, n_ - b0);
    exec_->RunEmbed(images_ + b0 * ImageElems(), nb, stream_.data() + b0 * row);
  }
  exec_->SetObserver(nullptr);
  next_block_ = 0;
}

void CaptureRunner::AdvanceTo(int block) {
  if (next_block_ < 0 || next_block_ > block) StartStream(nullptr);
  const int64_t row = StreamRow();
  for (; next_block_ < block; ++next_block_) {
    for (int b0 = 0; b0 < n_; b0 += batch_) {
      const int nb = std::min(batch_, n_ - b0);
      exec_->RunBlock(next_block_, stream_.data() + b0 * row, nb);
    }
  }
}

void CaptureRunner::CapturePatchEmbed(EdgeCapture* out) {
  out->patch_in.clear();
  out->patch_out.clear();
  EdgeObserver obs(out);
  StartStream(&obs);
  ADALOG_CHECK(!out->patch_in.empty() && !out->patch_out.empty(), "capture: patch taps incomplete");
}

void CaptureRunner::CaptureBlock(int block, BlockCapture* out) {
  ADALOG_CHECK(block >= 0 && block < static_cast<int>(model_.blocks.size()), "capture: block ",
               block, " out of range");
  const BlockParams& bp = model_.blocks[static_cast<size_t>(block)];
  *out = BlockCapture{};
  out->images = n_;
  out->tokens = model_.num_tokens();
  out->dim = model_.dim;
  out->groups = n_;
  out->group_rows = out->tokens;
  const SwinStage* merge_stage = nullptr;
  if (model_.is_swin()) {
    const std::vector<int> stages = SwinBlockStages(model_);
    const size_t si = static_cast<size_t>(stages[static_cast<size_t>(block)]);
    const SwinStage& st = model_.swin.stages[si];
    const int w = bp.window_size;
    out->tokens = st.grid_h * st.grid_w;
    out->dim = st.dim;
    out->group_rows = w * w;
    out->groups = n_ * (SwinPadded(st.grid_h, w) / w) * (SwinPadded(st.grid_w, w) / w);
    const bool last = static_cast<size_t>(block) + 1 == stages.size() ||
                      stages[static_cast<size_t>(block) + 1] != static_cast<int>(si);
    if (last && st.has_merge) {
      merge_stage = &st;
      out->merge_tokens = ((st.grid_h + 1) / 2) * ((st.grid_w + 1) / 2);
    }
  }
  out->heads = bp.heads;
  out->head_dim = out->dim / bp.heads;
  const int64_t per_head = static_cast<int64_t>(out->groups) * out->group_rows;
  out->q.resize(static_cast<size_t>(bp.heads * per_head * out->head_dim));
  out->k.resize(out->q.size());
  out->v.resize(out->q.size());
  out->probs.resize(static_cast<size_t>(bp.heads * per_head * out->group_rows));
  AdvanceTo(block);
  BlockObserver obs(block, out);
  const int64_t row = StreamRow();
  exec_->SetObserver(&obs);
  for (int b0 = 0; b0 < n_; b0 += batch_) {
    obs.image_base = b0;
    const int nb = std::min(batch_, n_ - b0);
    exec_->RunBlock(block, stream_.data() + b0 * row, nb);
    // The block's range ends with the merge: the stream now holds the reduction's output.
    if (merge_stage != nullptr)
      Append(&out->merge_out, stream_.data() + b0 * row, nb * out->merge_tokens,
             merge_stage->merge.reduction.out);
  }
  exec_->SetObserver(nullptr);
  ++next_block_;
  const int64_t rows = out->rows();
  ADALOG_CHECK(static_cast<int64_t>(out->qkv_in.size()) == rows * out->dim &&
                   static_cast<int64_t>(out->fc2_out.size()) == rows * out->dim,
               "capture: block ", block, " taps incomplete");
  if (merge_stage != nullptr) {
    ADALOG_CHECK(static_cast<int64_t>(out->merge_in.size()) == out->merge_rows() * 4 * out->dim,
                 "capture: block ", block, " patch-merge taps incomplete");
  }
}

void CaptureRunner::CaptureHead(EdgeCapture* out) {
  out->head_in.clear();
  out->head_out.clear();
  out->head_dist_in.clear();
  out->head_dist_out.clear();
  AdvanceTo(static_cast<int>(model_.blocks.size()));
  EdgeObserver obs(out);
  const int64_t row = StreamRow();
  std::vector<float> logits(static_cast<size_t>(batch_) * model_.num_classes());
  exec_->SetObserver(&obs);
  for (int b0 = 0; b0 < n_; b0 += batch_) {
    const int nb = std::min(batch_, n_ - b0);
    exec_->RunHead(stream_.data() + b0 * row, nb, logits.data());
  }
  exec_->SetObserver(nullptr);
  ADALOG_CHECK(!out->head_in.empty() && !out->head_out.empty(), "capture: head taps incomplete");
  // The stream is finished; free it.
  std::vector<float>().swap(stream_);
  next_block_ = -1;
}

void CaptureRunner::CaptureEdges(EdgeCapture* out) {
  *out = EdgeCapture{};
  EdgeObserver obs(out);
  RunAll(&obs);
  ADALOG_CHECK(!out->patch_in.empty() && !out->head_in.empty(), "capture: edge taps incomplete");
}

}  // namespace adalog::search
