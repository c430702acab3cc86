// The FP32 executor's Swin steps (executor_fp32_swin.h; conventions in swin_model.h).
#include "runtime/executor_fp32_swin.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <dnnl.hpp>
#include <map>
#include <mutex>
#include <unordered_map>
#include <utility>

#include "quant/error.h"
#include "runtime/executor_common.h"
#include "runtime/executor_fp32.h"
#include "runtime/parallel.h"
#include "runtime/swin_model.h"

namespace adalog {

// Read-only after construction, shared by forks: every Linear's weight as [in][out] (so the inner
// loop runs over contiguous outputs), and each block's window rows / each merge's gather.
struct SwinFp32::Shared {
  struct Lin {
    int in = 0, out = 0;
    const float* w = nullptr;  // [out][in], the model's
    const float* bias = nullptr;
  };
  std::vector<Lin> lins;        // embed, then per block qkv, proj, fc1, fc2, then merges, head
  std::vector<int> block_lin;   // first Lin of block b
  std::vector<int> merge_lin;   // per stage (-1 without a merge)
  int head_lin = 0;
  std::vector<std::vector<int32_t>> window_rows;  // per block: SwinWindowRows of its stage
  std::vector<std::vector<int32_t>> merge_rows;   // per stage: SwinMergeRows (empty: none)
  std::vector<int> block_stage;
  std::vector<int> step_stage;  // per schedule step: the stage a merge step belongs to (else -1)
  // Per Linear, its weights in oneDNN's packed layout for the full chunk, made by the first
  // executor (or fork) that runs the Linear and shared by all of them (under `mu`).
  mutable std::mutex mu;
  mutable std::map<int, dnnl::memory> packed;
};

namespace {

SwinFp32::Shared::Lin Transposed(const float* w, const float* b, int out, int in) {
  SwinFp32::Shared::Lin l;
  l.in = in;
  l.out = out;
  l.w = w;
  l.bias = b;
  return l;
}

using dnnl::memory;

// GEMM rows per one-thread oneDNN call. Fixed (not derived from the thread count) so that a row's
// sums never depend on how many threads ran.
constexpr int64_t kChunkRows = 64;
// Windows per window-attention work item (one batched oneDNN call per product). Fixed, like
// kChunkRows, so a window's sums depend on neither the thread count nor the batch.
constexpr int64_t kWindowChunk = 8;

}  // namespace

// The oneDNN side (per executor: primitives are bound to nothing but descriptors): one matmul per
// (Linear, chunk row count), made under one OpenMP thread. The weights are reordered once per
// Linear into the layout the full-size chunk's primitive asks for (oneDNN's packed blocking; the
// tail chunk reads the same layout), so no call repacks them.
struct SwinFp32::Dnn {
  dnnl::engine eng{dnnl::engine::kind::cpu, 0};
  struct Piece {
    dnnl::matmul prim;
    memory::desc src, wei, bias, dst, scratch;
  };
  std::map<std::pair<int, int64_t>, Piece> pieces;

  // The full chunk (`rows` = min(kChunkRows, tokens)) must be made before a tail of that Linear.
  const Piece& Get(int wi, int64_t rows, const Shared::Lin& l, bool full, const Shared& sh) {
    auto it = pieces.find({wi, rows});
    if (it != pieces.end()) return it->second;
    Piece p;
    p.src = memory::desc({rows, l.in}, memory::data_type::f32, memory::format_tag::ab);
    std::lock_guard<std::mutex> lock(sh.mu);
    p.wei = full ? memory::desc({l.in, l.out}, memory::data_type::f32, memory::format_tag::any)
                 : sh.packed.at(wi).get_desc();
    p.bias = memory::desc({1, l.out}, memory::data_type::f32, memory::format_tag::ab);
    p.dst = memory::desc({rows, l.out}, memory::data_type::f32, memory::format_tag::ab);
    dnnl::primitive_attr attr;
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
    exec::ScopedOmpThreads one(1);
    const dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(p.src, p.wei, p.bias, p.dst), attr, eng);
    p.prim = dnnl::matmul(pd);
    p.wei = pd.weights_desc();
    p.scratch = pd.scratchpad_desc();
    if (full && sh.packed.count(wi) == 0) {
      const memory plain({{l.in, l.out}, memory::data_type::f32, memory::format_tag::ba}, eng,
                         const_cast<float*>(l.w));
      memory w(p.wei, eng);
      dnnl::stream st(eng);
      dnnl::reorder(plain, w).execute(st, const_cast<memory&>(plain), w);
      st.wait();
      sh.packed.emplace(wi, w);
    }
    ADALOG_CHECK(p.wei == sh.packed.at(wi).get_desc(),
                 "SwinFp32: oneDNN asks for another weight layout than the packed one (Linear ", wi, ")");
    return pieces.emplace(std::make_pair(wi, rows), std::move(p)).first->second;
  }

  // Batched window products, one per (kind, windows, N, head_dim): kind 0 = scores q k^T
  // ([w][N][hd] x k read as [w][hd][N] from its [w][N][hd] rows, "acb"), kind 1 = probs @ v
  // ([w][N][N] x [w][N][hd]). Made under one OpenMP thread, with a user scratchpad.
  struct Batched {
    dnnl::matmul prim;
    memory::desc src, wei, dst, scratch;
  };
  // One scratchpad per thread index of ParallelDynamic, grown (outside parallel regions) by
  // ReserveScratch before the items that use it run.
  std::vector<std::vector<char>> scratch;

  void ReserveScratch(int threads, size_t bytes) {
    if (scratch.size() < static_cast<size_t>(threads)) scratch.resize(static_cast<size_t>(threads));
    for (std::vector<char>& s : scratch) {
      if (s.size() < bytes) s.resize(bytes);
    }
  }
  std::map<std::array<int64_t, 4>, Batched> batched;

  const Batched& GetBatched(int kind, int64_t wins, int64_t n, int64_t hd) {
    const std::array<int64_t, 4> key{kind, wins, n, hd};
    auto it = batched.find(key);
    if (it != batched.end()) return it->second;
    using tag = memory::format_tag;
    const auto f32 = memory::data_type::f32;
    Batched b;
    if (kind == 0) {
      b.src = memory::desc({wins, n, hd}, f32, tag::abc);
      b.wei = memory::desc({wins, hd, n}, f32, tag::acb);
      b.dst = memory::desc({wins, n, n}, f32, tag::abc);
    } else {
      b.src = memory::desc({wins, n, n}, f32, tag::abc);
      b.wei = memory::desc({wins, n, hd}, f32, tag::abc);
      b.dst = memory::desc({wins, n, hd}, f32, tag::abc);
    }
    dnnl::primitive_attr attr;
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
    exec::ScopedOmpThreads one(1);
    const dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(b.src, b.wei, b.dst), attr, eng);
    b.prim = dnnl::matmul(pd);
    b.scratch = pd.scratchpad_desc();
    return batched.emplace(key, std::move(b)).first->second;
  }

  void RunBatched(const Batched& b, int thread, const float* src, const float* wei, float* dst) {
    dnnl::stream st(eng);
    std::unordered_map<int, memory> args = {
        {DNNL_ARG_SRC, memory(b.src, eng, const_cast<float*>(src))},
        {DNNL_ARG_WEIGHTS, memory(b.wei, eng, const_cast<float*>(wei))},
        {DNNL_ARG_DST, memory(b.dst, eng, dst)}};
    if (b.scratch.get_size() > 0) {
      args.insert({DNNL_ARG_SCRATCHPAD,
                   memory(b.scratch, eng, scratch[static_cast<size_t>(thread)].data())});
    }
    b.prim.execute(st, args);
  }
};

namespace {

}  // namespace

SwinFp32::SwinFp32(const VitModel& m, const Schedule& s, int max_batch, int threads,
                   const FloatKernels& fk)
    : m_(m), s_(s), max_batch_(max_batch), threads_(threads), fk_(fk) {
  ADALOG_CHECK(m.is_swin(), "SwinFp32: not a Swin model");
  auto sh = std::make_shared<Shared>();
  sh->lins.push_back(Transposed(m.embed.weight.data(), m.embed.bias.data(), m.dim,
                                m.embed.in_channels * m.embed.patch * m.embed.patch));
  sh->block_stage = SwinBlockStages(m);
  for (size_t b = 0; b < m.blocks.size(); ++b) {
    const BlockParams& bp = m.blocks[b];
    sh->block_lin.push_back(static_cast<int>(sh->lins.size()));
    for (const LinearParams* l : {&bp.qkv, &bp.proj, &bp.fc1, &bp.fc2}) {
      sh->lins.push_back(Transposed(l->weight.data(), l->bias.data(), l->out, l->in));
    }
    const SwinStage& st = m.swin.stages[static_cast<size_t>(sh->block_stage[b])];
    sh->window_rows.push_back(SwinWindowRows(st.grid_h, st.grid_w, bp.window_size, bp.shift_size));
  }
  for (const SwinStage& st : m.swin.stages) {
    sh->merge_lin.push_back(st.has_merge ? static_cast<int>(sh->lins.size()) : -1);
    sh->merge_rows.push_back(st.has_merge ? SwinMergeRows(st.grid_h, st.grid_w) : std::vector<int32_t>());
    if (st.has_merge) {
      const LinearParams& l = st.merge.reduction;
      sh->lins.push_back(Transposed(l.weight.data(), l.bias.data(), l.out, l.in));
    }
  }
  sh->head_lin = static_cast<int>(sh->lins.size());
  sh->lins.push_back(Transposed(m.head.weight.data(), m.head.bias.data(), m.head.out, m.head.in));
  int stage = 0;
  for (const Step& st : s.steps) {
    const bool merge = st.op == StepOp::kPatchMerge || st.op == StepOp::kMergeNorm ||
                       st.op == StepOp::kMergeReduce;
    sh->step_stage.push_back(merge ? stage : -1);
    if (st.op == StepOp::kMergeReduce) ++stage;
  }
  sh_ = std::move(sh);
  dnn_ = std::make_unique<Dnn>();
  Allocate();
}

SwinFp32::SwinFp32(const SwinFp32& src, const Schedule& s)
    : m_(src.m_), s_(s), max_batch_(src.max_batch_), threads_(src.threads_), fk_(src.fk_),
      sh_(src.sh_), dnn_(std::make_unique<Dnn>()) {
  Allocate();
}

void SwinFp32::Allocate() {
  // Workspace: each Buf as large as the largest step that reads or writes it, plus the im2col
  // patches and the pooled features.
  size_t need[static_cast<int>(Buf::kNumBufs)] = {};
  for (const Step& st : s_.steps) {
    const size_t n = static_cast<size_t>(max_batch_) * st.tokens * st.cols;
    need[static_cast<int>(st.out)] = std::max(need[static_cast<int>(st.out)], n);
  }
  const size_t P = static_cast<size_t>(m_.embed.num_patches());
  const size_t K = static_cast<size_t>(m_.embed.in_channels) * m_.embed.patch * m_.embed.patch;
  size_t total = 0;
  for (int b = 0; b < static_cast<int>(Buf::kNumBufs); ++b) {
    if (b != static_cast<int>(Buf::kImages) && b != static_cast<int>(Buf::kLogits)) total += need[b];
  }
  const size_t last_dim = static_cast<size_t>(m_.swin.stages.back().dim);
  size_t qkv_heads = 0, probs = 0;  // per image: the largest block's window rows x width / x N
  for (size_t b = 0; b < m_.blocks.size(); ++b) {
    const size_t rows = sh_->window_rows[b].size(), n = static_cast<size_t>(m_.blocks[b].window_size) *
                                                        m_.blocks[b].window_size;
    qkv_heads = std::max(qkv_heads, rows * static_cast<size_t>(m_.blocks[b].qkv.in));
    probs = std::max(probs, rows * n * static_cast<size_t>(m_.blocks[b].heads));
  }
  total += static_cast<size_t>(max_batch_) * (P * K + last_dim + 3 * qkv_heads + probs);
  ws_.assign(total, 0.f);
  float* p = ws_.data();
  for (int b = 0; b < static_cast<int>(Buf::kNumBufs); ++b) {
    if (b == static_cast<int>(Buf::kImages) || b == static_cast<int>(Buf::kLogits)) continue;
    buf_[b] = p;
    p += need[b];
  }
  patches_ = p;
  p += static_cast<size_t>(max_batch_) * P * K;
  pooled_ = p;
  p += static_cast<size_t>(max_batch_) * last_dim;
  qh_ = p;
  kh_ = qh_ + static_cast<size_t>(max_batch_) * qkv_heads;
  vh_ = kh_ + static_cast<size_t>(max_batch_) * qkv_heads;
  probs_ = vh_ + static_cast<size_t>(max_batch_) * qkv_heads;
}

void SwinFp32::Tap(TapPoint tap, int block, int batch, int tokens, float* data, int rows, int cols,
                   int image, int head) {
  const TapInfo info{tap, block, image, head, batch, tokens};
  if (rewriter_ && IsInputTap(tap)) rewriter_->Rewrite(info, data, rows, cols);
  if (observer_) observer_->OnTensor(info, data, rows, cols);
}

SwinFp32::~SwinFp32() = default;

// y = x W^T + b over `rows` = images x `tokens` rows, as chunks of at most kChunkRows rows that
// never straddle two images, each a one-thread oneDNN matmul claimed by the threads: an image's rows
// go through the same GEMM calls whatever the batch and the thread count, so its bytes do not
// depend on either (oneDNN's sgemm sums do depend on the call's row count: with chunks across
// images, batch 1 and the batched rows differed under ADALOG_ISA=avx2).
void SwinFp32::Linear(const float* x, int64_t rows, int64_t tokens, int wi, float* y) {
  const Shared::Lin& l = sh_->lins[static_cast<size_t>(wi)];
  const int64_t per_image = (tokens + kChunkRows - 1) / kChunkRows;
  const int64_t tail = tokens - (per_image - 1) * kChunkRows;
  const Dnn::Piece& full = dnn_->Get(wi, std::min(kChunkRows, tokens), l, /*full=*/true, *sh_);
  const Dnn::Piece& last = dnn_->Get(wi, tail, l, /*full=*/false, *sh_);
  void* wdata = nullptr;
  {
    std::lock_guard<std::mutex> lock(sh_->mu);
    wdata = sh_->packed.at(wi).get_data_handle();
  }
  dnn_->ReserveScratch(threads_, std::max(full.scratch.get_size(), last.scratch.get_size()));
  exec::ParallelDynamic(rows / tokens * per_image, threads_, [&](int t, int64_t c) {
    exec::ScopedOmpThreads one(1);
    const int64_t j = c % per_image, r0 = (c / per_image) * tokens + j * kChunkRows;
    const Dnn::Piece& p = j == per_image - 1 ? last : full;
    std::unordered_map<int, memory> args = {
        {DNNL_ARG_SRC, memory(p.src, dnn_->eng, const_cast<float*>(x) + r0 * l.in)},
        {DNNL_ARG_WEIGHTS, memory(p.wei, dnn_->eng, wdata)},
        {DNNL_ARG_BIAS, memory(p.bias, dnn_->eng, const_cast<float*>(l.bias))},
        {DNNL_ARG_DST, memory(p.dst, dnn_->eng, y + r0 * l.out)}};
    if (p.scratch.get_size() > 0) {
      args.insert({DNNL_ARG_SCRATCHPAD,
                   memory(p.scratch, dnn_->eng, dnn_->scratch[static_cast<size_t>(t)].data())});
    }
    dnnl::stream st(dnn_->eng);
    p.prim.execute(st, args);
  });
}

// Per (image, head): q/k/v gathered through the block's window rows (a padding row's qkv is the qkv
// bias) into [windows*N][head_dim]; per (image, window, head): scores * scale + bias + mask,
// softmax; then per (image, window, head) probs @ v written back to the real tokens' rows of
// `merged` (window reverse and crop). Taps between the phases (see the header).
void SwinFp32::WindowAttention(const Step& st, int batch) {
  const BlockParams& bp = m_.blocks[static_cast<size_t>(st.block)];
  const std::vector<int32_t>& rows = sh_->window_rows[static_cast<size_t>(st.block)];
  const int D = st.cols, T = st.tokens, heads = bp.heads, hd = D / heads;
  const int w = bp.window_size, N = w * w;
  const int R = static_cast<int>(rows.size()), nw = R / N;  // window rows per image
  const float* qkv = buf_[static_cast<int>(Buf::kQkv)];
  float* merged = buf_[static_cast<int>(Buf::kMerged)];
  const float* qkv_bias = bp.qkv.bias.data();
  const size_t head_sz = static_cast<size_t>(R) * hd, probs_sz = static_cast<size_t>(R) * N;
  exec::ParallelRowChunks(int64_t{batch} * R, kChunkRows, threads_, [&](int, int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      const int64_t img = r / R, wr = r % R;
      const int32_t t = rows[static_cast<size_t>(wr)];
      const float* src = t >= 0 ? qkv + (img * T + t) * 3 * D : qkv_bias;
      for (int h = 0; h < heads; ++h) {
        const size_t o = (static_cast<size_t>(img) * heads + h) * head_sz + static_cast<size_t>(wr) * hd;
        std::memcpy(qh_ + o, src + h * hd, sizeof(float) * hd);
        std::memcpy(kh_ + o, src + D + h * hd, sizeof(float) * hd);
        std::memcpy(vh_ + o, src + 2 * D + h * hd, sizeof(float) * hd);
      }
    }
  });
  if (observer_ || rewriter_) {
    for (int i = 0; i < batch * heads; ++i) {
      const size_t o = static_cast<size_t>(i) * head_sz;
      Tap(TapPoint::kQ, st.block, batch, T, qh_ + o, R, hd, i / heads, i % heads);
      Tap(TapPoint::kK, st.block, batch, T, kh_ + o, R, hd, i / heads, i % heads);
      Tap(TapPoint::kV, st.block, batch, T, vh_ + o, R, hd, i / heads, i % heads);
    }
  }
  // Units (image, head, chunk of kWindowChunk windows): scores as one batched oneDNN matmul, then
  // scale + relative position bias + mask and the softmax, window by window.
  const int64_t chunks = (nw + kWindowChunk - 1) / kWindowChunk;
  const int64_t tail = nw - (chunks - 1) * kWindowChunk;
  const Dnn::Batched& sc_full = dnn_->GetBatched(0, std::min<int64_t>(kWindowChunk, nw), N, hd);
  const Dnn::Batched& sc_tail = dnn_->GetBatched(0, tail, N, hd);
  const Dnn::Batched& pv_full = dnn_->GetBatched(1, std::min<int64_t>(kWindowChunk, nw), N, hd);
  const Dnn::Batched& pv_tail = dnn_->GetBatched(1, tail, N, hd);
  dnn_->ReserveScratch(threads_, std::max({sc_full.scratch.get_size(), sc_tail.scratch.get_size(),
                                           pv_full.scratch.get_size(), pv_tail.scratch.get_size()}));
  exec::ParallelDynamic(int64_t{batch} * heads * chunks, threads_, [&](int t, int64_t u) {
    exec::ScopedOmpThreads one(1);
    const int64_t ih = u / chunks, c = u % chunks;
    const int h = static_cast<int>(ih % heads);
    const int64_t w0 = c * kWindowChunk, wn = c == chunks - 1 ? tail : kWindowChunk;
    const float* q = qh_ + static_cast<size_t>(ih) * head_sz + static_cast<size_t>(w0) * N * hd;
    const float* k = kh_ + static_cast<size_t>(ih) * head_sz + static_cast<size_t>(w0) * N * hd;
    float* sc0 = probs_ + static_cast<size_t>(ih) * probs_sz + static_cast<size_t>(w0) * N * N;
    dnn_->RunBatched(c == chunks - 1 ? sc_tail : sc_full, t, q, k, sc0);
    const float* bias = bp.rel_bias.data() + static_cast<size_t>(h) * N * N;
    for (int64_t win = w0; win < w0 + wn; ++win) {
      float* sc = sc0 + static_cast<size_t>(win - w0) * N * N;
      const float* mask =
          bp.attn_mask.empty() ? nullptr : bp.attn_mask.data() + static_cast<size_t>(win) * N * N;
      for (int i = 0; i < N * N; ++i) {
        float val = sc[i] * bp.attn_scale + bias[i];
        if (mask) val += mask[i];
        sc[i] = val;
      }
      fk_.softmax(sc, sc, N, N);
    }
  });
  if (observer_ || rewriter_) {
    for (int i = 0; i < batch * heads; ++i) {
      Tap(TapPoint::kAttnProbs, st.block, batch, T, probs_ + static_cast<size_t>(i) * probs_sz, R, N,
          i / heads, i % heads);
    }
  }
  // probs @ v per (image, head, chunk), one batched oneDNN matmul into that chunk's q rows (q is
  // dead once the scores exist), then written back to the real tokens' rows of `merged` (window
  // reverse and crop; a padding row's output is cropped away).
  exec::ParallelDynamic(int64_t{batch} * heads * chunks, threads_, [&](int t, int64_t u) {
    exec::ScopedOmpThreads one(1);
    const int64_t ih = u / chunks, c = u % chunks, img = ih / heads;
    const int h = static_cast<int>(ih % heads);
    const int64_t w0 = c * kWindowChunk, wn = c == chunks - 1 ? tail : kWindowChunk;
    const float* p = probs_ + static_cast<size_t>(ih) * probs_sz + static_cast<size_t>(w0) * N * N;
    const float* v = vh_ + static_cast<size_t>(ih) * head_sz + static_cast<size_t>(w0) * N * hd;
    float* o = qh_ + static_cast<size_t>(ih) * head_sz + static_cast<size_t>(w0) * N * hd;
    dnn_->RunBatched(c == chunks - 1 ? pv_tail : pv_full, t, p, v, o);
    const int32_t* wr = rows.data() + static_cast<size_t>(w0) * N;
    for (int64_t i = 0; i < wn * N; ++i) {
      if (wr[i] < 0) continue;
      std::memcpy(merged + (img * T + wr[i]) * D + h * hd, o + i * hd, sizeof(float) * hd);
    }
  });
}

void SwinFp32::RunStep(size_t i, int batch, const float* images, float* logits) {
  const Step& st = s_.steps[i];
  const int64_t rows = int64_t{batch} * st.tokens;
  float* in = st.in == Buf::kImages ? nullptr : buf_[static_cast<int>(st.in)];
  float* out = st.out == Buf::kLogits ? logits : buf_[static_cast<int>(st.out)];
  const BlockParams* bp = st.block >= 0 ? &m_.blocks[static_cast<size_t>(st.block)] : nullptr;
  const int lin0 = st.block >= 0 ? sh_->block_lin[static_cast<size_t>(st.block)] : -1;
  auto layer_norm = [&](const float* src, float* dst, int64_t n, const LayerNormParams& ln) {
    exec::ParallelRowChunks(n, kChunkRows, threads_, [&](int, int64_t b, int64_t e) {
      fk_.layer_norm(src + b * ln.dim, dst + b * ln.dim, e - b, ln.dim, ln.gamma.data(),
                     ln.beta.data(), ln.eps);
    });
  };
  switch (st.op) {
    case StepOp::kPatchEmbed:
      exec::ParallelRowChunks(rows, kChunkRows, threads_, [&](int, int64_t b, int64_t e) {
        exec::Im2colPatchRows(m_.embed, images, b, e, patches_);
      });
      if (observer_ || rewriter_) {
        Tap(TapPoint::kPatchEmbedIn, -1, batch, st.tokens, patches_, static_cast<int>(rows),
            sh_->lins[0].in);
      }
      Linear(patches_, rows, st.tokens, 0, out);
      break;
    case StepOp::kEmbedNorm: layer_norm(in, out, rows, m_.swin.embed_norm); break;
    case StepOp::kLn1: layer_norm(in, out, rows, bp->ln1); break;
    case StepOp::kLn2: layer_norm(in, out, rows, bp->ln2); break;
    case StepOp::kQkv: Linear(in, rows, st.tokens, lin0, out); break;
    case StepOp::kProj: Linear(in, rows, st.tokens, lin0 + 1, out); break;
    case StepOp::kFc1: Linear(in, rows, st.tokens, lin0 + 2, out); break;
    case StepOp::kFc2: Linear(in, rows, st.tokens, lin0 + 3, out); break;
    case StepOp::kWindowAttention: WindowAttention(st, batch); break;
    case StepOp::kAddResidual:
      exec::ParallelRowChunks(rows, kChunkRows, threads_, [&](int, int64_t b, int64_t e) {
        fk_.add(out + b * st.cols, in + b * st.cols, out + b * st.cols, (e - b) * st.cols);
      });
      break;
    case StepOp::kGelu: {
      const EltwiseFn gelu = bp->gelu == GeluKind::kErf ? fk_.gelu_erf : fk_.gelu_tanh;
      exec::ParallelRowChunks(rows, kChunkRows, threads_, [&](int, int64_t b, int64_t e) {
        gelu(out + b * st.cols, out + b * st.cols, (e - b) * st.cols);
      });
      break;
    }
    case StepOp::kPatchMerge: {
      const size_t si = static_cast<size_t>(sh_->step_stage[i]);
      const SwinStage& sg = m_.swin.stages[si];
      const std::vector<int32_t>& mr = sh_->merge_rows[si];
      const int C = sg.dim, T = sg.grid_h * sg.grid_w;
      exec::ParallelRowChunks(rows, kChunkRows, threads_, [&](int, int64_t b, int64_t e) {
        for (int64_t r = b; r < e; ++r) {
          const int64_t img = r / st.tokens, j = r % st.tokens;
          for (int q = 0; q < 4; ++q) {
            const int32_t src = mr[static_cast<size_t>(j) * 4 + q];
            float* dst = out + r * 4 * C + q * C;
            if (src < 0) {
              std::fill(dst, dst + C, 0.f);
            } else {
              std::memcpy(dst, in + (img * T + src) * C, sizeof(float) * C);
            }
          }
        }
      });
      break;
    }
    case StepOp::kMergeNorm:
    case StepOp::kMergeReduce: {
      const size_t si = static_cast<size_t>(sh_->step_stage[i]);
      if (st.op == StepOp::kMergeNorm) {
        layer_norm(in, out, rows, m_.swin.stages[si].merge.norm);
      } else {
        if (observer_ || rewriter_) {
          // block: the stage's last block (the schedule counts the merge into that block's steps).
          int last = -1;
          for (size_t k = 0; k <= si; ++k) last += m_.swin.stages[k].depth;
          Tap(TapPoint::kMergeIn, last, batch, st.tokens, in, static_cast<int>(rows),
              4 * m_.swin.stages[si].dim);
        }
        Linear(in, rows, st.tokens, sh_->merge_lin[si], out);
      }
      break;
    }
    case StepOp::kHead: {
      const SwinStage& last = m_.swin.stages.back();
      const int C = last.dim, T = last.grid_h * last.grid_w;
      float* ln = buf_[static_cast<int>(Buf::kLn)];
      layer_norm(in, ln, int64_t{batch} * T, m_.norm);
      for (int img = 0; img < batch; ++img) {
        float* p = pooled_ + static_cast<size_t>(img) * C;
        std::fill(p, p + C, 0.f);
        for (int t = 0; t < T; ++t) {
          const float* r = ln + (int64_t{img} * T + t) * C;
          for (int c = 0; c < C; ++c) p[c] += r[c];
        }
        for (int c = 0; c < C; ++c) p[c] /= static_cast<float>(T);
      }
      if (observer_ || rewriter_) Tap(TapPoint::kHeadIn, -1, batch, T, pooled_, batch, C);
      Linear(pooled_, batch, 1, sh_->head_lin, out);
      if (observer_) Tap(TapPoint::kHeadOut, -1, batch, T, out, batch, st.cols);
      break;
    }
    default:
      Fail("FP32 executor: step ", StepOpName(st.op), " is not a Swin step");
  }
}

void SwinFp32::Run(const float* images, int batch, float* logits) {
  RunRange({0, static_cast<int>(s_.steps.size())}, batch, images, logits);
}

int64_t SwinFp32::StreamElems(size_t stage) const {
  const SwinStage& st = m_.swin.stages[stage];
  return int64_t{st.grid_h} * st.grid_w * st.dim;
}

void SwinFp32::RunEmbed(const float* images, int batch, float* x) {
  RunRange(s_.embed, batch, images, nullptr);
  std::memcpy(x, buf_[static_cast<int>(Buf::kX)], sizeof(float) * static_cast<size_t>(batch * StreamElems(0)));
}

void SwinFp32::RunBlock(int block, float* x, int batch) {
  const size_t stage = static_cast<size_t>(sh_->block_stage[static_cast<size_t>(block)]);
  // The stage's last block carries the merge (if any) in its range: its output is the next stage's.
  const size_t next = static_cast<size_t>(block) + 1;
  const bool merges = m_.swin.stages[stage].has_merge &&
                      (next == sh_->block_stage.size() || sh_->block_stage[next] != static_cast<int>(stage));
  float* xb = buf_[static_cast<int>(Buf::kX)];
  std::memcpy(xb, x, sizeof(float) * static_cast<size_t>(batch * StreamElems(stage)));
  RunRange(s_.blocks[static_cast<size_t>(block)], batch, nullptr, nullptr);
  std::memcpy(x, xb, sizeof(float) * static_cast<size_t>(batch * StreamElems(merges ? stage + 1 : stage)));
}

void SwinFp32::RunHead(const float* x, int batch, float* logits) {
  std::memcpy(buf_[static_cast<int>(Buf::kX)], x,
              sizeof(float) * static_cast<size_t>(batch * StreamElems(m_.swin.stages.size() - 1)));
  RunRange(s_.head, batch, nullptr, logits);
}

void SwinFp32::RunRange(StepRange r, int batch, const float* images, float* logits) {
  ADALOG_CHECK(batch >= 1 && batch <= max_batch_, "executor: batch ", batch, " out of range 1..",
               max_batch_);
  exec::ScopedOmpThreads scoped(threads_);
  for (size_t i = static_cast<size_t>(r.first); i < static_cast<size_t>(r.end); ++i) {
    RunStep(i, batch, images, logits);
    const Step& st = s_.steps[i];
    if ((observer_ || rewriter_) && st.has_tap) {
      Tap(st.tap, st.block, batch, st.tokens, st.out == Buf::kLogits ? logits : buf_[static_cast<int>(st.out)],
          batch * st.tokens, st.cols);
    }
  }
}

}  // namespace adalog
