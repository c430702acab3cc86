// The integer executor's Swin steps (conventions in swin_model.h; the FP32 / simulated versions in
// executor_fp32_swin.cc): window attention over (image, window, head) units with the ViT block's
// integer operators, the patch merge (FP32 2x2 gather + LayerNorm, uniform-coded int8 reduction),
// the patch-embedding norm and the mean-pooled head; their prepare, workspace and scratch.
//
// Padding, cyclic shift and window partition are the block's window-row map (SwinWindowRows):
// the qkv step encodes q/k/v codes for the real tokens only (as for a ViT), a window unit gathers
// its N rows of codes through the map (a padding row takes the codes of the qkv bias, which is
// what the FP32 executor's padding rows hold: the qkv of a zero row after LN1), and writes its
// attn@V rows back through the same map, dropping the padding rows (window reverse and crop).
// The relative position bias and the shift mask are added to the scores in the float island
// before the softmax, in the FP32 executor's order ((s + bias) + mask).
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "quant/error.h"
#include "runtime/executor_int_impl.h"
#include "runtime/parallel.h"
#include "runtime/swin_model.h"

namespace adalog {

using exec::ParallelChunks;
using exec::ParallelDynamic;
using intexec::AttnThread;
using intexec::BlockInt;
using intexec::OpProfile;
using intexec::SwinInt;

namespace {

size_t Align64(size_t bytes) { return (bytes + 63) & ~size_t{63}; }

}  // namespace

namespace intexec {

exec::ModelDims SwinDims(const VitModel& m) {
  exec::ModelDims d;
  d.D = m.dim;
  d.P = m.embed.num_patches();
  d.T = d.P;
  d.pre = 0;
  d.heads = m.blocks[0].heads;
  d.hd = d.D / d.heads;
  for (const BlockParams& b : m.blocks) d.F = std::max(d.F, b.fc1.out);
  d.C = m.embed.in_channels;
  d.ps = m.embed.patch;
  d.H = m.embed.image_h;
  d.W = m.embed.image_w;
  d.classes = m.num_classes();
  d.patch_k = d.C * d.ps * d.ps;
  return d;
}

}  // namespace intexec

// After PrepareBlock (the blocks' q/k/v encoders exist): window row maps, the padding rows'
// q/k/v codes, the merges' reductions (plan.merges in stage order), the merge steps' stages.
void ExecutorInt::Impl::PrepareSwin(const VitModel& src, const QuantPlan& plan) {
  auto s = std::make_shared<SwinInt>();
  const std::vector<int> block_stage = SwinBlockStages(m);
  for (size_t bi = 0; bi < m.blocks.size(); ++bi) {
    const BlockParams& mb = m.blocks[bi];
    const SwinStage& st = m.swin.stages[static_cast<size_t>(block_stage[bi])];
    s->window_rows.push_back(SwinWindowRows(st.grid_h, st.grid_w, mb.window_size, mb.shift_size));
    const int cols = mb.qkv.out;
    std::vector<uint8_t> pad(static_cast<size_t>(cols));
    blocks[bi].qkv_codes.Encode(mb.qkv.bias.data(), cols, 1, pad.data(), cols);
    s->pad_codes.push_back(std::move(pad));
    s->max_n = std::max(s->max_n, mb.window_size * mb.window_size);
    s->max_hd = std::max(s->max_hd, mb.qkv.in / mb.heads);
    s->max_tokens = std::max(s->max_tokens, st.grid_h * st.grid_w);
  }
  ADALOG_CHECK(s->max_n <= intk::kMaxK, "integer path: window of ", s->max_n, " tokens exceeds ",
               intk::kMaxK);
  size_t mi = 0;
  s->merges.resize(m.swin.stages.size());
  for (size_t si = 0; si < m.swin.stages.size(); ++si) {
    const SwinStage& st = m.swin.stages[si];
    s->merge_rows.push_back(st.has_merge ? SwinMergeRows(st.grid_h, st.grid_w)
                                         : std::vector<int32_t>());
    if (!st.has_merge) continue;
    ADALOG_CHECK(mi < plan.merges.size(), "quantized model: the plan has ", plan.merges.size(),
                 " patch-merge quantizers, the model has more patch merges");
    s->merges[si].lin = intexec::PrepareUniformLinear(
        src.swin.stages[si].merge.reduction, plan.merges[mi],
        "patch merge " + std::to_string(mi) + " reduction", &s->merges[si].in, cap);
    ++mi;
  }
  ADALOG_CHECK(mi == plan.merges.size(), "quantized model: the plan has ", plan.merges.size(),
               " patch-merge quantizers, the model ", mi, " patch merges");
  int stage = 0;
  for (const Step& st : sched.steps) {
    const bool merge = st.op == StepOp::kPatchMerge || st.op == StepOp::kMergeNorm ||
                       st.op == StepOp::kMergeReduce;
    s->step_stage.push_back(merge ? stage : -1);
    if (st.op == StepOp::kMergeReduce) ++stage;
  }
  swin = std::move(s);
}

// Each schedule tensor as large as the largest step that writes it (widths change per stage);
// the GEMM input codes as large as the largest GEMM input (LN / attention / GELU outputs, the
// pooled features); the hidden codes also hold a merge reduction's input codes (SwinRowStep).
void ExecutorInt::Impl::AllocateSwinWorkspace() {
  constexpr int kBufs = static_cast<int>(Buf::kNumBufs);
  size_t need[kBufs] = {};
  for (const Step& st : sched.steps) {
    const size_t n = static_cast<size_t>(max_batch) * st.tokens * st.cols;
    need[static_cast<int>(st.out)] = std::max(need[static_cast<int>(st.out)], n);
  }
  const size_t Bn = static_cast<size_t>(max_batch);
  const size_t last_dim = static_cast<size_t>(m.swin.stages.back().dim);
  auto at = [&](Buf b) { return need[static_cast<int>(b)]; };
  const size_t a_codes =
      std::max({at(Buf::kLn), at(Buf::kMerged), at(Buf::kHidden), Bn * last_dim});
  struct F {
    float** view;
    size_t n;
  };
  std::vector<F> floats;
  for (Buf b :
       {Buf::kX, Buf::kLn, Buf::kQkv, Buf::kMerged, Buf::kLinOut, Buf::kHidden, Buf::kEmbedOut}) {
    floats.push_back({&buf[static_cast<int>(b)], at(b)});
  }
  floats.push_back({&patches, Bn * P * patch_k});
  floats.push_back({&pooled, Bn * last_dim});
  floats.push_back({&pooled_dist, Bn});
  floats.push_back({&head_logits, Bn * classes});
  floats.push_back({&logits_dist, Bn});
  const std::pair<uint8_t**, size_t> bytes[] = {
      {&acodes, a_codes},
      {&codes[static_cast<int>(Buf::kQkv)], at(Buf::kQkv)},
      {&codes[static_cast<int>(Buf::kHidden)], at(Buf::kHidden)}};
  size_t total = 0;
  for (const F& f : floats) total += Align64(f.n * sizeof(float));
  for (const auto& b : bytes) total += Align64(b.second);
  ws_bytes = total;
  ws.reset(exec::AlignedAlloc(ws_bytes, "integer executor"));
  std::memset(ws.get(), 0, ws_bytes);
  char* base = static_cast<char*>(ws.get());
  size_t off = 0;
  for (const F& f : floats) {
    *f.view = reinterpret_cast<float*>(base + off);
    off += Align64(f.n * sizeof(float));
  }
  for (const auto& b : bytes) {
    *b.first = reinterpret_cast<uint8_t*>(base + off);
    off += Align64(b.second);
  }
}

// Per-thread scratch sized for the largest window and head width; one attn@V LogMatmul per block
// (its tables, N x hd) for log-coded probabilities.
void ExecutorInt::Impl::PrepareSwinThreads() {
  const int N = swin->max_n, hdm = swin->max_hd;
  max_chunk_rows = std::min(max_batch * swin->max_tokens, row_chunk);
  bool any_uniform_probs = false;
  for (const BlockInt& b : blocks) any_uniform_probs |= !b.probs_log;
  const std::vector<uint8_t> zeros(static_cast<size_t>(hdm) * N, 0);
  const std::vector<int32_t> zu(static_cast<size_t>(hdm), 0);
  const std::vector<float> ones(static_cast<size_t>(hdm), 1.f);
  attn_threads.resize(static_cast<size_t>(threads));
  row_scratch.resize(static_cast<size_t>(threads));
  const size_t nn = static_cast<size_t>(N) * N, nh = static_cast<size_t>(N) * hdm;
  for (int t = 0; t < threads; ++t) {
    AttnThread& a = attn_threads[static_cast<size_t>(t)];
    a.m1 = intk::MakeMatmul1Workspace(N, hdm);  // packs every (window, head width) in full
    if (any_uniform_probs) {
      a.m2 = intk::MakeMatmul1Workspace(hdm, N);
      a.vt.resize(nh);
    }
    a.scores.resize(nn);
    a.pcodes.resize(nn);
    a.qw.resize(nh);
    a.kw.resize(nh);
    a.vw.resize(nh);
    a.ow.resize(nh);
    for (size_t bi = 0; bi < blocks.size(); ++bi) {
      const BlockInt& b = blocks[bi];
      const BlockParams& mb = m.blocks[bi];
      const int n = mb.window_size * mb.window_size, bhd = mb.qkv.in / mb.heads;
      if (b.probs_log) {
        a.av.push_back(intk::PrepareLogMatmul(io.attn_design, b.probs_tables, zeros.data(), n, bhd,
                                              n, zu.data(), ones.data(), nullptr));
        intexec::MergeScratch(intk::MakeLogScratch(a.av.back(), n), &a.av_scratch);
      } else {
        a.av.emplace_back();
      }
      if (b.gelu_log) intexec::MergeScratch(intk::MakeLogScratch(b.fc2_log, max_chunk_rows), &row_scratch[t]);
    }
  }
}

// The row-local Swin steps on rows [r0, r1): the patch-embedding norm, the merge norm and the
// merge's reduction (uniform codes -> int8 GEMM, bias-free).
void ExecutorInt::Impl::SwinRowStep(const Step& st, int t, int64_t r0, int64_t r1) {
  const int64_t n = r1 - r0;
  const float* in = B(st.in);
  float* out = B(st.out);
  const size_t si = static_cast<size_t>(
      std::max(swin->step_stage[static_cast<size_t>(&st - sched.steps.data())], 0));
  switch (st.op) {
    case StepOp::kEmbedNorm: {
      const LayerNormParams& p = m.swin.embed_norm;
      fk.layer_norm(in + r0 * p.dim, out + r0 * p.dim, n, p.dim, p.gamma.data(), p.beta.data(),
                    p.eps);
      Mark(t, OpProfile::kLayerNorm);
      break;
    }
    case StepOp::kMergeNorm: {  // in place in the gather's rows (see MergeRows)
      const LayerNormParams& p = m.swin.stages[si].merge.norm;
      float* rows = MergeRows();
      fk.layer_norm(rows + r0 * p.dim, rows + r0 * p.dim, n, p.dim, p.gamma.data(), p.beta.data(),
                    p.eps);
      Mark(t, OpProfile::kLayerNorm);
      break;
    }
    case StepOp::kMergeReduce: {
      // Its codes go to the hidden tensor's code buffer (free between the last fc2 and the next
      // stage's GELU), not to acodes: the next block's qkv, in the same row stage, encodes its
      // narrower rows at acodes + r0 * C', which would overlap another chunk's r0 * 4C rows.
      const SwinInt::Merge& mg = swin->merges[si];
      const int k = mg.lin.k;
      uint8_t* mc = Codes(Buf::kHidden);
      mg.in->Encode(MergeRows() + r0 * k, n * k, mc + r0 * k);
      Mark(t, OpProfile::kEncodeIn);
      intk::RunQLinear(mg.lin, qimpl, mc, k, static_cast<int>(r0), static_cast<int>(r1), out,
                       st.cols);
      Mark(t, OpProfile::kProjGemm);
      break;
    }
    default:
      break;
  }
}

// Window attention of one block over units (image, window, head) claimed by the threads.
void ExecutorInt::Impl::WindowAttention(const Step& st, int batch) {
  const size_t bi = static_cast<size_t>(st.block);
  const BlockParams& mb = m.blocks[bi];
  const int n = mb.window_size * mb.window_size;
  const int nw = static_cast<int>(swin->window_rows[bi].size()) / n, hb = mb.heads;
  Region(OpProfile::kRegAttn, [&] {
    ParallelDynamic(int64_t{batch} * nw * hb, threads, [&](int t, int64_t u) {
      StartThread(t);
      const int h = static_cast<int>(u % hb);
      const int64_t iw = u / hb;
      WindowUnit(bi, st.tokens, t, static_cast<int>(iw / nw), static_cast<int>(iw % nw), h);
    });
  });
}

// One (image, window, head): gather the window's q/k/v codes through the row map, q@k^T, bias +
// mask, softmax -> probability codes, attn@V, scatter the real tokens' rows into `merged`.
void ExecutorInt::Impl::WindowUnit(size_t bi, int tokens, int t, int img, int win, int h) {
  const BlockInt& b = blocks[bi];
  const BlockParams& mb = m.blocks[bi];
  AttnThread& a = attn_threads[static_cast<size_t>(t)];
  const int Db = mb.qkv.in, hdb = Db / mb.heads, n = mb.window_size * mb.window_size;
  const int64_t ld = 3 * Db;
  const int32_t* wr = swin->window_rows[bi].data() + static_cast<size_t>(win) * n;
  const uint8_t* img_codes = Codes(Buf::kQkv) + static_cast<int64_t>(img) * tokens * ld;
  const uint8_t* pad = swin->pad_codes[bi].data();
  for (int i = 0; i < n; ++i) {
    const uint8_t* src = wr[i] >= 0 ? img_codes + wr[i] * ld : pad;
    std::memcpy(a.qw.data() + i * hdb, src + h * hdb, hdb);
    std::memcpy(a.kw.data() + i * hdb, src + Db + h * hdb, hdb);
    std::memcpy(a.vw.data() + i * hdb, src + 2 * Db + h * hdb, hdb);
  }
  intk::Matmul1Head(a.qw.data(), hdb, a.kw.data(), hdb, n, n, hdb, b.q[h].params().zero_point,
                    b.k[h].params().zero_point, b.alpha_qk[h], a.scores.data(), n, &a.m1, cap);
  Mark(t, OpProfile::kQk);
  float* s = a.scores.data();
  const float* rb = mb.rel_bias.data() + static_cast<size_t>(h) * n * n;
  const int nn = n * n;
  for (int e = 0; e < nn; ++e) s[e] += rb[e];
  if (!mb.attn_mask.empty()) {
    const float* mask = mb.attn_mask.data() + static_cast<size_t>(win) * nn;
    for (int e = 0; e < nn; ++e) s[e] += mask[e];
  }
  const int32_t zv = b.v[h].params().zero_point;
  if (b.probs_log) {
    if (b.softmax_writer) {
      intk::SoftmaxToLogCodes(*b.softmax_writer, s, n, n, a.pcodes.data(), cap);
    } else {
      fk.softmax(s, s, n, n);
      Mark(t, OpProfile::kSoftmax);
      b.probs_encoder->Encode(s, nn, a.pcodes.data());
    }
    Mark(t, OpProfile::kProbsEncode);
    intk::LogMatmul& av = a.av[bi];
    intk::RepackLogMatmulB(&av, a.vw.data(), hdb, /*transposed=*/true, zv, b.alpha_av[h]);
    Mark(t, OpProfile::kRepackV);
    intk::RunLogMatmul(av, a.pcodes.data(), n, 0, n, a.ow.data(), hdb, &a.av_scratch, cap);
  } else {
    fk.softmax(s, s, n, n);
    b.probs_uniform->Encode(s, nn, a.pcodes.data());
    for (int j = 0; j < n; ++j) {
      for (int c = 0; c < hdb; ++c) a.vt[static_cast<size_t>(c) * n + j] = a.vw[j * hdb + c];
    }
    intk::Matmul1Head(a.pcodes.data(), n, a.vt.data(), n, n, hdb, n,
                      b.probs_uniform->quantizer().params().zero_point, zv, b.alpha_av[h],
                      a.ow.data(), hdb, &a.m2, cap);
  }
  float* merged = B(Buf::kMerged) + static_cast<int64_t>(img) * tokens * Db + h * hdb;
  for (int i = 0; i < n; ++i) {
    if (wr[i] >= 0) std::memcpy(merged + wr[i] * Db, a.ow.data() + i * hdb, sizeof(float) * hdb);
  }
  Mark(t, OpProfile::kAttnV);
}

// The 2x2 gather of the previous stage's rows into [B*T'][4C] (zero blocks past an odd edge), as
// the FP32 executor does it.
void ExecutorInt::Impl::PatchMerge(const Step& st, int batch) {
  const size_t si =
      static_cast<size_t>(swin->step_stage[static_cast<size_t>(&st - sched.steps.data())]);
  const SwinStage& sg = m.swin.stages[si];
  const std::vector<int32_t>& mr = swin->merge_rows[si];
  const int C = sg.dim, T0 = sg.grid_h * sg.grid_w;
  const float* in = B(st.in);
  float* out = B(st.out);
  Region(OpProfile::kRegRows, [&] {
    ParallelChunks(int64_t{batch} * st.tokens, threads, [&](int t, int64_t r0, int64_t r1) {
      StartThread(t);
      for (int64_t r = r0; r < r1; ++r) {
        const int64_t img = r / st.tokens, j = r % st.tokens;
        for (int q = 0; q < 4; ++q) {
          const int32_t src = mr[static_cast<size_t>(j) * 4 + q];
          float* dst = out + r * 4 * C + q * C;
          if (src < 0) {
            std::fill(dst, dst + C, 0.f);
          } else {
            std::memcpy(dst, in + (img * T0 + src) * C, sizeof(float) * C);
          }
        }
      }
    });
  });
}

// Final norm over the last stage's rows, the mean over its tokens (summed in token order from 0,
// then divided, as the FP32 executor does), the head GEMM.
void ExecutorInt::Impl::SwinHead(int batch, float* out) {
  const SwinStage& last = m.swin.stages.back();
  const int C = last.dim, Tl = last.grid_h * last.grid_w;
  const float* x = B(Buf::kX);
  float* ln = B(Buf::kLn);
  Region(OpProfile::kRegTail, [&] {
    StartThread(0);
    ParallelChunks(int64_t{batch} * Tl, threads, [&](int, int64_t b, int64_t e) {
      fk.layer_norm(x + b * C, ln + b * C, e - b, C, m.norm.gamma.data(), m.norm.beta.data(),
                    m.norm.eps);
    });
    for (int img = 0; img < batch; ++img) {
      float* p = pooled + static_cast<size_t>(img) * C;
      std::fill(p, p + C, 0.f);
      for (int t = 0; t < Tl; ++t) {
        const float* r = ln + (int64_t{img} * Tl + t) * C;
        for (int c = 0; c < C; ++c) p[c] += r[c];
      }
      for (int c = 0; c < C; ++c) p[c] /= static_cast<float>(Tl);
    }
    if (observer) Observe(TapPoint::kHeadIn, -1, batch, pooled, batch, C);
    head_in->Encode(pooled, static_cast<int64_t>(batch) * C, acodes);
    intk::RunQLinear(head, qimpl, acodes, C, 0, batch, head_logits, classes);
    if (observer) Observe(TapPoint::kHeadOut, -1, batch, head_logits, batch, classes);
    std::memcpy(out, head_logits, sizeof(float) * static_cast<size_t>(batch) * classes);
    Mark(0, OpProfile::kTail);
  });
}

}  // namespace adalog
