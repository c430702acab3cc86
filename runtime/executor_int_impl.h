// The integer executor's state, shared by its two source files: executor_int_prepare.cc builds
// it (weight codes, packing, encoders, workspace, per-thread scratch) and executor_int.cc runs the
// schedule over it (step implementations, threading). Private to runtime/.
#pragma once

#include <cstdint>
#include <dnnl.hpp>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "quant/log_quantizers.h"
#include "runtime/executor_common.h"
#include "runtime/executor_int.h"
#include "runtime/executor_int_profile.h"
#include "runtime/kernels/float_kernels.h"
#include "runtime/kernels/int/code_encoders.h"
#include "runtime/kernels/int/logcode_writers.h"
#include "runtime/quant_plan.h"
#include "runtime/vit_model.h"
#include "runtime/vit_schedule.h"

namespace adalog {
namespace intexec {

// One block's prepared operators.
struct BlockInt {
  // Float -> code encoders: quant's codes bit for bit (runtime/kernels/int/code_encoders.h).
  std::optional<intk::VectorUniformEncoder> qkv_in, proj_in, fc1_in, fc2_in;
  intk::QLinear qkv, proj, fc1, fc2_uniform;
  std::vector<intk::VectorUniformEncoder> q, k, v;
  intk::SegmentedUniformEncoder qkv_codes;  // q, k, v heads of a qkv output row, one call
  std::vector<float> alpha_qk;  // per head: sq * sk * attn_scale
  // Softmax / attn@V.
  bool probs_log = true;
  std::optional<intk::LogCodeWriter> softmax_writer;  // fused writer
  std::optional<intk::ThresholdLogEncoder> probs_encoder;  // FP32 softmax + quant's codes
  AdaLogTables probs_tables;
  std::optional<intk::VectorUniformEncoder> probs_uniform;
  std::vector<float> alpha_av;  // per head: s_p sv / D (log) or s_p sv (uniform)
  // GELU / fc2.
  bool gelu_log = true;
  std::optional<intk::LogCodeWriter> gelu_writer;    // erf GELU
  std::optional<intk::ThresholdLogEncoder> gelu_encoder;  // FP32 GELU + quant's shift codes
  intk::LogMatmul fc2_log;
};

struct AttnThread {
  intk::Matmul1Workspace m1;        // q @ k^T
  intk::Matmul1Workspace m2;        // uniform probs @ v
  std::vector<float> scores;        // [T][T]
  std::vector<uint8_t> pcodes;      // [T][T]
  std::vector<uint8_t> vt;          // [hd][T] (uniform probs)
  std::vector<intk::LogMatmul> av;  // per block (log probs)
  intk::LogScratch av_scratch;
  // Swin: one window's q / k / v codes gathered through the window rows [N][hd], and its attn@V
  // output [N][hd] before the scatter to the real tokens' rows.
  std::vector<uint8_t> qw, kw, vw;
  std::vector<float> ow;
};

// Swin's prepared parts (executor_int_swin.cc), read-only after prepare and shared by forks.
struct SwinInt {
  std::vector<std::vector<int32_t>> window_rows;  // per block: SwinWindowRows of its stage
  std::vector<std::vector<uint8_t>> pad_codes;    // per block: q/k/v codes of a padding row [3D]
  std::vector<std::vector<int32_t>> merge_rows;   // per stage: SwinMergeRows (empty: no merge)
  struct Merge {
    std::optional<intk::VectorUniformEncoder> in;  // the reduction's uniform input
    intk::QLinear lin;                             // the bias-free 4C -> C' reduction
  };
  std::vector<Merge> merges;   // per stage (unset without a merge)
  std::vector<int> step_stage;  // per schedule step: the stage of a merge step, else -1
  int max_n = 0, max_hd = 0, max_tokens = 0;  // largest window, head width, stage tokens
};

// ModelDims of a Swin model: D, T = P (no prefix tokens) and heads / hd of stage 0, F the widest
// fc1; the Swin code sizes its work per block / stage instead.
exec::ModelDims SwinDims(const VitModel& m);

// A uniform-input GEMM (qkv, proj, fc1, head, a patch merge's reduction): the input encoder into
// *input and the packed weight codes; throws "integer path does not support ..." as the prepare
// steps do (executor_int_prepare.cc).
intk::QLinear PrepareUniformLinear(const LinearParams& l, const LinearQuant& lq,
                                   const std::string& op,
                                   std::optional<intk::VectorUniformEncoder>* input, IsaLevel cap);

// Grows every buffer of `dst` to at least the size the same buffer has in `src` (the log-code
// kernels' scratch, sized for the largest op a thread runs).
void MergeScratch(const intk::LogScratch& src, intk::LogScratch* dst);

}  // namespace intexec

struct ExecutorInt::Impl : exec::ModelDims {
  using BlockInt = intexec::BlockInt;
  using AttnThread = intexec::AttnThread;
  using OpProfile = intexec::OpProfile;

  // Prepared state, read-only once the constructor returns and shared by every fork (Fork()):
  // the model skeleton, the schedule, the packed weights and encoders, the patch-embed primitive
  // and its reordered weights (dnnl handles share their object when copied).
  std::shared_ptr<const VitModel> model_owner;
  const VitModel& m;  // the model's FP32 parts without the Linear / patch-embed weights (Skeleton)
  Schedule sched;
  int max_batch, threads;
  IsaLevel cap;
  IntPathOptions io;
  const FloatKernels& fk;
  intk::QgemmImpl qimpl;
  // The model's dimensions (D, T, P, pre, heads, hd, F, C, ps, H, W, classes, patch_k) are the
  // exec::ModelDims base.

  struct Weights {
    std::vector<BlockInt> blocks;
    std::optional<intk::VectorUniformEncoder> head_in, head_dist_in;
    intk::QLinear head, head_dist;
  };
  std::shared_ptr<Weights> weights;  // written only by the prepare constructor
  std::vector<BlockInt>& blocks;
  std::optional<intk::VectorUniformEncoder>& head_in;
  std::optional<intk::VectorUniformEncoder>& head_dist_in;
  intk::QLinear& head;
  intk::QLinear& head_dist;

  // Patch embedding: oneDNN f32 matmul for one image (M = P), made for and run on one OpenMP
  // thread, the images spread over the pool's threads. The primitive and its weights are shared;
  // the streams, the src / dst views of the workspace and the user scratchpads belong to each
  // executor, one set per pool thread (EmbedThread).
  dnnl::engine eng{dnnl::engine::kind::cpu, 0};
  dnnl::stream strm{eng};
  std::vector<float> embed_w_hat;
  dnnl::primitive embed_prim;
  dnnl::memory embed_wei, embed_bias;
  dnnl::memory::desc embed_src_md, embed_dst_md, embed_scratch_md;
  std::string embed_impl;
  std::string description;
  int row_chunk = 1;  // IntPathOptions::row_chunk
  int max_chunk_rows = 0;  // rows of the largest row chunk (row_chunk or fewer)

  // Per executor (each fork has its own).
  struct EmbedThread {
    dnnl::stream strm;
    dnnl::memory src, dst;
    std::unordered_map<int, dnnl::memory> args;
    std::unique_ptr<void, exec::FreeDeleter> scratch;
  };
  std::vector<EmbedThread> embed_threads;  // [min(threads, max_batch)]

  // Workspace: the schedule's tensors by name (buf[Buf]: float rows; codes[Buf]: the u8 codes
  // the next GEMM reads, for kQkv (per-head q/k/v codes) and kHidden (fc2's input codes);
  // kImages and kLogits are bound to the caller's arrays per Run), the u8 input codes of the
  // uniform-input GEMMs (acodes), and the mixing steps' private buffers.
  std::unique_ptr<void, exec::FreeDeleter> ws;
  size_t ws_bytes = 0;
  float* buf[static_cast<int>(Buf::kNumBufs)] = {};
  uint8_t* codes[static_cast<int>(Buf::kNumBufs)] = {};
  uint8_t* acodes = nullptr;
  float *patches, *pooled, *pooled_dist, *head_logits, *logits_dist;
  std::vector<AttnThread> attn_threads;
  std::vector<intk::LogScratch> row_scratch;  // fc2 LogMatmul, per thread, relative rows
  std::shared_ptr<const intexec::SwinInt> swin;  // Swin models only (null for a ViT)
  Fp32Observer* observer = nullptr;
  std::unique_ptr<OpProfile> prof;  // ADALOG_PROFILE=1

  float* B(Buf b) const { return buf[static_cast<int>(b)]; }
  uint8_t* Codes(Buf b) const { return codes[static_cast<int>(b)]; }

  void Mark(int t, OpProfile::Op op) {
    if (prof) prof->Mark(t, op);
  }
  void StartThread(int t) {
    if (prof) prof->Start(t);
  }
  // Runs f() (a parallel region or a serial step) and adds its wall time to region g.
  template <typename Fn>
  void Region(OpProfile::Region g, const Fn& f) {
    if (!prof) {
      f();
      return;
    }
    const int64_t t0 = OpProfile::Now();
    f();
    prof->region_ns[g] += OpProfile::Now() - t0;
    prof->region_calls[g] += 1;
  }

  // Prepare (executor_int_prepare.cc).
  Impl(const VitModel& src, const QuantPlan& plan, const ExecutorOptions& o,
       const IntPathOptions& iopt);
  // A fork: shares src's prepared state, allocates its own workspace and per-thread scratch.
  // Reads only the prepared state, so it may run while src or another fork runs.
  explicit Impl(const Impl& src);
  ~Impl();
  void BindPatchEmbed();
  void StartProfile();
  void PrepareBlock(const QuantPlan& plan, const BlockParams& mb, size_t bi);
  void AllocateWorkspace();
  void PreparePatchEmbed(const QuantPlan& plan, const std::vector<float>& weight);
  void PrepareThreads();
  void Describe(const QuantPlan& plan);

  // Run (executor_int.cc): the schedule walk and the step implementations.
  void Run(const float* images, int batch, float* out);
  void RowStage(const Stage& stage, int batch, OpProfile::Region region);
  void ObservedRowStage(const Stage& stage, int batch);
  void RowStep(const Step& st, int t, int64_t r0, int64_t r1);
  void PatchEmbed(const float* images, int batch);
  void Attention(int block, int batch);
  void AttentionUnit(size_t bi, int t, int img, int h, int i0, int i1);
  void Head(int batch, float* out);
  void Observe(TapPoint tap, int block, int batch, const float* data, int rows, int cols);

  // Swin (executor_int_swin.cc): prepare, then the Swin steps of the schedule.
  void PrepareSwin(const VitModel& src, const QuantPlan& plan);
  void AllocateSwinWorkspace();
  void PrepareSwinThreads();
  void SwinRowStep(const Step& st, int t, int64_t r0, int64_t r1);
  void WindowAttention(const Step& st, int batch);
  void WindowUnit(size_t bi, int tokens, int t, int img, int win, int h);
  void PatchMerge(const Step& st, int batch);
  void SwinHead(int batch, float* out);
  // A patch merge's 4C rows: the gather writes them (the schedule's kHidden), the merge norm
  // normalizes them in place and the reduction reads them there, not in kLn as the schedule names
  // it: the merge's row stage goes on with the next block's LN1 into kLn at C' = 2C floats a row,
  // so chunk by chunk those rows would overlap another chunk's 4C rows still to be read.
  float* MergeRows() const { return B(Buf::kHidden); }
};

}  // namespace adalog
