// The simulated (fake-quant) executor: weight fake-quantization at prepare, activation
// fake-quantization through the FP32 executor's rewrite hook.
#include "runtime/executor_sim.h"

#include <omp.h>

#include <optional>
#include <utility>
#include <vector>

#include "quant/error.h"
#include "quant/log_quantizers.h"
#include "quant/twin_uniform.h"
#include "quant/uniform.h"
#include "runtime/parallel.h"
#include "runtime/sim_swin.h"

namespace adalog {
namespace {

// Arrays below this many elements are fake-quantized on the calling thread.
constexpr int64_t kParallelMin = 1 << 15;

// Calls f(begin, end) on disjoint chunks of [0, n), in parallel for large n. Element-wise maps
// only, so the result does not depend on the thread count.
template <typename F>
void ParallelChunks(int64_t n, const F& f) {
  exec::ParallelRows(n, n < kParallelMin ? 1 : omp_get_max_threads(), f);
}

// One prepared activation quantizer (tables built once).
class ActFq {
 public:
  ActFq() = default;
  explicit ActFq(const ActQuant& q) : kind_(q.kind) {
    switch (q.kind) {
      case ActQuant::Kind::kNone: break;
      case ActQuant::Kind::kUniform: uniform_.emplace(q.uniform.params); break;
      case ActQuant::Kind::kLog:
        if (q.shift == 0.f && !q.shift_folded) {
          log_.emplace(q.log);
        } else {
          shift_log_.emplace(q.log, q.shift, q.shift_folded);
        }
        break;
      case ActQuant::Kind::kTwin: twin_.emplace(q.twin); break;
    }
  }
  void Apply(float* x, int64_t n) const {
    if (kind_ == ActQuant::Kind::kNone) return;
    ParallelChunks(n, [&](int64_t b, int64_t e) {
      if (uniform_) uniform_->FakeQuant(x + b, e - b, x + b);
      if (log_) log_->FakeQuant(x + b, e - b, x + b);
      if (shift_log_) shift_log_->FakeQuant(x + b, e - b, x + b);
      if (twin_) twin_->FakeQuant(x + b, e - b, x + b);
    });
  }

 private:
  ActQuant::Kind kind_ = ActQuant::Kind::kNone;
  std::optional<UniformQuantizer> uniform_;
  std::optional<LogQuantizer> log_;
  std::optional<ShiftLogQuantizer> shift_log_;
  std::optional<TwinUniformQuantizer> twin_;
};

// Per-head uniform quantizers; empty when the plan's UniformPerHead is empty (not quantized).
std::vector<UniformQuantizer> HeadQuantizers(const UniformPerHead& q, int heads, const char* what,
                                             size_t block) {
  std::vector<UniformQuantizer> out;
  if (q.scales.empty()) return out;
  q.Validate();
  ADALOG_CHECK(q.num_heads() == heads, "quantized model: block ", block, " ", what, " has ",
               q.num_heads(), " per-head parameters, the model has ", heads, " heads");
  for (int h = 0; h < heads; ++h) out.emplace_back(q.head(h));
  return out;
}

void FakeQuantWeight(const UniformPerChannel& q, int out, int in, std::vector<float>* w,
                     const std::string& what) {
  if (q.scales.empty()) return;  // not quantized
  ADALOG_CHECK(q.num_channels() == out, "quantized model: ", what, " weight has ", q.num_channels(),
               " per-channel parameters, expected ", out);
  ADALOG_CHECK(static_cast<int64_t>(w->size()) == static_cast<int64_t>(out) * in, "quantized model: ",
               what, " weight size mismatch");
  FakeQuantize(q, w->data(), {out, in}, w->data());
}

// The rewriter: fake-quantizes the input of every quantized op at its tap.
class SimRewriter : public Fp32Rewriter {
 public:
  SimRewriter(const QuantPlan& plan, const VitModel& m) : blocks_(plan.blocks.size()) {
    // Blocks are filled in place: moving a Block (std::optional members) trips GCC 12's
    // -Wmaybe-uninitialized false positive.
    for (size_t b = 0; b < plan.blocks.size(); ++b) {
      const BlockQuant& bq = plan.blocks[b];
      const int heads = m.blocks[b].heads;
      Block& blk = blocks_[b];
      blk.qkv = ActFq(bq.qkv.input);
      blk.proj = ActFq(bq.proj.input);
      blk.fc1 = ActFq(bq.fc1.input);
      blk.fc2 = ActFq(bq.fc2.input);
      blk.probs = ActFq(bq.attn.probs);
      blk.q = HeadQuantizers(bq.attn.q, heads, "q", b);
      blk.k = HeadQuantizers(bq.attn.k, heads, "k", b);
      blk.v = HeadQuantizers(bq.attn.v, heads, "v", b);
    }
    head_ = ActFq(plan.head.input);
    if (m.pooling == Pooling::kClsDistAvg) head_dist_ = ActFq(plan.head_dist.input);
    // Swin: the merge after stage s fires kMergeIn with block = the stage's last block.
    const std::vector<int> merge_blocks = SwinMergeBlocks(m);
    ADALOG_CHECK(plan.merges.size() == merge_blocks.size(), "quantized model: the plan has ",
                 plan.merges.size(), " patch-merge quantizers, the model ", merge_blocks.size(),
                 " patch merges");
    merges_.resize(m.blocks.size());
    for (size_t i = 0; i < merge_blocks.size(); ++i) {
      merges_[static_cast<size_t>(merge_blocks[i])] = ActFq(plan.merges[i].input);
    }
  }

  void Rewrite(const TapInfo& t, float* d, int rows, int cols) override {
    const int64_t n = static_cast<int64_t>(rows) * cols;
    auto per_head = [&](const std::vector<UniformQuantizer>& qs) {
      if (!qs.empty()) qs[static_cast<size_t>(t.head)].FakeQuant(d, n, d);
    };
    switch (t.tap) {
      case TapPoint::kQkvIn: blocks_[t.block].qkv.Apply(d, n); break;
      case TapPoint::kQ: per_head(blocks_[t.block].q); break;
      case TapPoint::kK: per_head(blocks_[t.block].k); break;
      case TapPoint::kV: per_head(blocks_[t.block].v); break;
      case TapPoint::kAttnProbs: blocks_[t.block].probs.Apply(d, n); break;
      case TapPoint::kProjIn: blocks_[t.block].proj.Apply(d, n); break;
      case TapPoint::kFc1In: blocks_[t.block].fc1.Apply(d, n); break;
      case TapPoint::kGeluOut: blocks_[t.block].fc2.Apply(d, n); break;
      case TapPoint::kHeadIn: head_.Apply(d, n); break;
      case TapPoint::kHeadDistIn: head_dist_.Apply(d, n); break;
      case TapPoint::kMergeIn: merges_[static_cast<size_t>(t.block)].Apply(d, n); break;
      default: break;  // the image (patch-embed input) stays FP32 (method §3.2)
    }
  }

 private:
  struct Block {
    ActFq qkv, proj, fc1, fc2, probs;
    std::vector<UniformQuantizer> q, k, v;
  };
  std::vector<Block> blocks_;
  std::vector<ActFq> merges_;  // by block: the merge ending at that block (kNone elsewhere)
  ActFq head_, head_dist_;
};

}  // namespace

void FakeQuantizeAct(const ActQuant& q, float* x, int64_t n) { ActFq(q).Apply(x, n); }

std::unique_ptr<Fp32Rewriter> MakeFakeQuantRewriter(const QuantPlan& plan, const VitModel& model) {
  ADALOG_CHECK(plan.blocks.size() == model.blocks.size(), "quantized model: the plan has ",
               plan.blocks.size(), " blocks, the model ", model.blocks.size());
  return std::make_unique<SimRewriter>(plan, model);
}

VitModel MakeSimulatedModel(const QuantizedModel& qm) {
  ValidateVitModel(qm.model);
  VitModel m = qm.model;
  const QuantPlan& plan = qm.plan;
  ADALOG_CHECK(plan.blocks.size() == m.blocks.size(), "quantized model: the plan has ",
               plan.blocks.size(), " blocks, the model ", m.blocks.size());
  FakeQuantWeight(plan.patch_embed_weight, m.embed.dim,
                  m.embed.in_channels * m.embed.patch * m.embed.patch, &m.embed.weight,
                  "patch_embed");
  for (size_t b = 0; b < m.blocks.size(); ++b) {
    BlockParams& mb = m.blocks[b];
    const BlockQuant& bq = plan.blocks[b];
    const std::string pre = "block " + std::to_string(b) + " ";
    FakeQuantWeight(bq.qkv.weight, mb.qkv.out, mb.qkv.in, &mb.qkv.weight, pre + "qkv");
    FakeQuantWeight(bq.proj.weight, mb.proj.out, mb.proj.in, &mb.proj.weight, pre + "proj");
    FakeQuantWeight(bq.fc1.weight, mb.fc1.out, mb.fc1.in, &mb.fc1.weight, pre + "fc1");
    FakeQuantWeight(bq.fc2.weight, mb.fc2.out, mb.fc2.in, &mb.fc2.weight, pre + "fc2");
  }
  FakeQuantSwinMergeWeights(plan, &m);
  FakeQuantWeight(plan.head.weight, m.head.out, m.head.in, &m.head.weight, "head");
  if (m.pooling == Pooling::kClsDistAvg) {
    FakeQuantWeight(plan.head_dist.weight, m.head_dist.out, m.head_dist.in, &m.head_dist.weight,
                    "head_dist");
  }
  return m;
}

struct ExecutorSim::Impl {
  // Shared read-only by forks: the simulated model and the rewriter (its Rewrite only reads the
  // prepared quantizers, so concurrent forks may call it at once).
  std::shared_ptr<const VitModel> model;
  std::shared_ptr<Fp32Rewriter> rewriter;
  std::unique_ptr<ExecutorFp32> exec;  // per executor: the workspace
  Impl(const QuantizedModel& qm, const ExecutorOptions& o)
      : model(std::make_shared<const VitModel>(MakeSimulatedModel(qm))),
        rewriter(MakeFakeQuantRewriter(qm.plan, *model)),
        exec(std::make_unique<ExecutorFp32>(*model, o)) {
    exec->SetRewriter(rewriter.get());
  }
  explicit Impl(const Impl& src)
      : model(src.model), rewriter(src.rewriter), exec(src.exec->Fork()) {
    exec->SetRewriter(rewriter.get());
  }
};

ExecutorSim::ExecutorSim(const QuantizedModel& qm, const ExecutorOptions& options)
    : impl_(std::make_unique<Impl>(qm, options)) {}
ExecutorSim::ExecutorSim(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ExecutorSim::~ExecutorSim() = default;

std::unique_ptr<ExecutorSim> ExecutorSim::Fork() const {
  return std::unique_ptr<ExecutorSim>(new ExecutorSim(std::make_unique<Impl>(*impl_)));
}

void ExecutorSim::Run(const float* images, int batch, float* logits) {
  impl_->exec->Run(images, batch, logits);
}
void ExecutorSim::SetObserver(Fp32Observer* observer) { impl_->exec->SetObserver(observer); }
int ExecutorSim::max_batch() const { return impl_->exec->max_batch(); }
int ExecutorSim::num_threads() const { return impl_->exec->num_threads(); }
const VitModel& ExecutorSim::model() const { return *impl_->model; }
size_t ExecutorSim::workspace_bytes() const { return impl_->exec->workspace_bytes(); }
std::string ExecutorSim::DescribeKernels() const {
  return "simulated (fake-quant) executor over the FP32 executor:\n" + impl_->exec->DescribeKernels();
}

}  // namespace adalog
