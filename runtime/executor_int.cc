// The integer executor's forward: the schedule (vit_schedule.h) walked with integer step
// implementations. Row-local stages run chunk by chunk (every step of the stage on one chunk of
// rows before the next chunk; chunks claimed dynamically by the threads), mixing stages run
// their own parallel regions (attention over (image, head, query block) units). Reading order
// below follows one token row through a block: LN1 -> qkv (+ q/k/v codes) -> attention -> proj
// -> residual add -> LN2 -> fc1 -> GELU codes -> fc2 -> residual add -> the next block's LN1.
#include <algorithm>
#include <cassert>
#include <cstdint>
#include <cstring>

#include "runtime/executor_int_impl.h"
#include "runtime/parallel.h"

namespace adalog {

using exec::ParallelChunks;
using exec::ParallelDynamic;
using exec::ParallelRowChunks;
using exec::ScopedOmpThreads;
using intexec::AttnThread;
using intexec::BlockInt;
using intexec::OpProfile;

void ExecutorInt::Impl::Run(const float* images, int batch, float* out) {
  assert(batch >= 1 && batch <= max_batch);
  if (prof) prof->runs += 1;
  buf[static_cast<int>(Buf::kImages)] = const_cast<float*>(images);  // read only
  buf[static_cast<int>(Buf::kLogits)] = out;
  bool first_rows = true;
  for (const Stage& stage : sched.stages) {
    const Step& st = sched.steps[static_cast<size_t>(stage.first)];
    if (stage.kind == StageKind::kRows) {
      if (observer) {
        ObservedRowStage(stage, batch);
      } else {
        RowStage(stage, batch, first_rows ? OpProfile::kRegTokens : OpProfile::kRegRows);
      }
      first_rows = false;
      continue;
    }
    switch (st.op) {
      case StepOp::kPatchEmbed: PatchEmbed(B(st.in), batch); break;
      case StepOp::kAttention: Attention(st.block, batch); break;
      case StepOp::kWindowAttention: WindowAttention(st, batch); break;
      case StepOp::kPatchMerge: PatchMerge(st, batch); break;
      case StepOp::kHead:
        if (swin) {
          SwinHead(batch, B(st.out));
        } else {
          Head(batch, B(st.out));
        }
        break;
      default: assert(false && "row-local step in a mixing stage");
    }
    if (observer && st.has_tap) {
      Observe(st.tap, st.block, batch, B(st.out), batch * st.tokens, st.cols);
    }
  }
}

// Every step of the stage on one chunk of rows, then the next chunk: a chunk's intermediates
// (fc1 output, GELU codes, decoded levels) stay in L2 and one parallel region covers everything
// between two attentions.
void ExecutorInt::Impl::RowStage(const Stage& stage, int batch, OpProfile::Region region) {
  const int64_t rows = int64_t{batch} * sched.steps[static_cast<size_t>(stage.first)].tokens;
  Region(region, [&] {
    ParallelRowChunks(rows, row_chunk, threads, [&](int t, int64_t r0, int64_t r1) {
      StartThread(t);
      for (int i = stage.first; i < stage.end; ++i) {
        RowStep(sched.steps[static_cast<size_t>(i)], t, r0, r1);
      }
    });
  });
}

// Observed: the same row implementations, one parallel region per step, each step's tap
// reported in between (and a Swin merge reduction's input, kMergeIn, before it). kGeluOut is not
// reported: the GELU step writes fc2's input codes (the float GELU output exists only with the
// island kernels).
void ExecutorInt::Impl::ObservedRowStage(const Stage& stage, int batch) {
  for (int i = stage.first; i < stage.end; ++i) {
    const Step& st = sched.steps[static_cast<size_t>(i)];
    const int64_t rows = int64_t{batch} * st.tokens;
    if (st.op == StepOp::kMergeReduce) {  // Swin: the reduction's float input (inner tap)
      const int si = swin->step_stage[static_cast<size_t>(i)];
      int last = -1;  // the stage's last block
      for (int k = 0; k <= si; ++k) last += m.swin.stages[static_cast<size_t>(k)].depth;
      Observe(TapPoint::kMergeIn, last, batch, MergeRows(), static_cast<int>(rows),
              m.swin.stages[static_cast<size_t>(si)].merge.norm.dim);
    }
    ParallelRowChunks(rows, row_chunk, threads, [&](int t, int64_t r0, int64_t r1) {
      StartThread(t);
      RowStep(st, t, r0, r1);
    });
    if (st.has_tap && st.tap != TapPoint::kGeluOut) {
      Observe(st.tap, st.block, batch, B(st.out), static_cast<int>(rows), st.cols);
    }
  }
}

// One row-local step on rows [r0, r1) of the [batch * tokens] activations, by thread t (which
// indexes per-thread scratch). Every row is computed by the same code whatever the range.
// D: the block's width (the model's for a ViT, the stage's for Swin).
void ExecutorInt::Impl::RowStep(const Step& st, int t, int64_t r0, int64_t r1) {
  const int64_t n = r1 - r0;
  const int i0 = static_cast<int>(r0), i1 = static_cast<int>(r1);
  const float* in = B(st.in);
  float* out = B(st.out);
  const size_t bi = static_cast<size_t>(std::max(st.block, 0));
  const BlockInt& b = blocks[bi];
  const BlockParams& mb = m.blocks[bi];
  const int D = mb.qkv.in;
  switch (st.op) {
    case StepOp::kTokens:
      exec::AssembleTokenRows(m, fk, in, out, r0, r1);
      Mark(t, OpProfile::kTokens);
      break;
    case StepOp::kLn1:
    case StepOp::kLn2: {
      const LayerNormParams& p = st.op == StepOp::kLn1 ? mb.ln1 : mb.ln2;
      fk.layer_norm(in + r0 * D, out + r0 * D, n, D, p.gamma.data(), p.beta.data(), p.eps);
      Mark(t, OpProfile::kLayerNorm);
      break;
    }
    case StepOp::kQkv:  // u8 codes -> qkv GEMM -> per-head q/k/v codes for the attention
      b.qkv_in->Encode(in + r0 * D, n * D, acodes + r0 * D);
      Mark(t, OpProfile::kEncodeIn);
      intk::RunQLinear(b.qkv, qimpl, acodes, D, i0, i1, out, st.cols);
      Mark(t, OpProfile::kQkvGemm);
      b.qkv_codes.Encode(out + r0 * st.cols, st.cols, n, Codes(st.out) + r0 * st.cols, st.cols);
      Mark(t, OpProfile::kQkvCodes);
      break;
    case StepOp::kProj:
      b.proj_in->Encode(in + r0 * D, n * D, acodes + r0 * D);
      Mark(t, OpProfile::kEncodeIn);
      intk::RunQLinear(b.proj, qimpl, acodes, D, i0, i1, out, D);
      Mark(t, OpProfile::kProjGemm);
      break;
    case StepOp::kAddResidual:
      fk.add(out + r0 * D, in + r0 * D, out + r0 * D, n * D);
      Mark(t, OpProfile::kAdd);
      break;
    case StepOp::kFc1:
      b.fc1_in->Encode(in + r0 * D, n * D, acodes + r0 * D);
      Mark(t, OpProfile::kEncodeIn);
      intk::RunQLinear(b.fc1, qimpl, acodes, D, i0, i1, out, st.cols);
      Mark(t, OpProfile::kFc1Gemm);
      break;
    case StepOp::kGelu: {  // GELU -> fc2's input codes (log: shift-log codes; else uniform)
      const int hn = st.cols;
      float* h = out + r0 * hn;
      uint8_t* hc = Codes(st.out) + r0 * hn;
      if (b.gelu_log && b.gelu_writer) {
        intk::GeluToLogCodes(*b.gelu_writer, h, n * hn, hc, cap);
      } else {
        (mb.gelu == GeluKind::kErf ? fk.gelu_erf : fk.gelu_tanh)(h, h, n * hn);
        Mark(t, OpProfile::kGelu);
        if (b.gelu_log) {
          b.gelu_encoder->Encode(h, n * hn, hc);
        } else {
          b.fc2_in->Encode(h, n * hn, hc);
        }
      }
      Mark(t, OpProfile::kGeluEncode);
      break;
    }
    case StepOp::kFc2: {  // fc2 over the GELU codes into lin_out
      const int hn = mb.fc1.out;
      if (b.gelu_log) {
        intk::RunLogMatmul(b.fc2_log, Codes(st.in) + r0 * hn, hn, 0, static_cast<int>(n),
                           out + r0 * D, D, &row_scratch[static_cast<size_t>(t)], cap);
      } else {
        intk::RunQLinear(b.fc2_uniform, qimpl, Codes(st.in), hn, i0, i1, out, D);
      }
      Mark(t, OpProfile::kFc2);
      break;
    }
    case StepOp::kPatchEmbed:
    case StepOp::kAttention:
    case StepOp::kHead:
      assert(false && "mixing step run as row-local");
      break;
    case StepOp::kEmbedNorm:
    case StepOp::kMergeNorm:
    case StepOp::kMergeReduce:
      SwinRowStep(st, t, r0, r1);
      break;
    default:
      assert(false && "mixing step run as row-local");
      break;
  }
}

// Patch embedding (FP32): im2col rows (image, patch), columns (c, ky, kx) like OIHW, then the
// oneDNN GEMM per image into embed_out.
void ExecutorInt::Impl::PatchEmbed(const float* images, int batch) {
  Region(OpProfile::kRegPatch, [&] {
    ParallelChunks(static_cast<int64_t>(batch) * P, threads, [&](int t, int64_t b, int64_t e) {
      StartThread(t);
      exec::Im2colPatchRows(m.embed, images, b, e, patches);
      Mark(t, OpProfile::kIm2col);
    });
  });
  Region(OpProfile::kRegEmbedGemm, [&] {
    float* embed_out = B(Buf::kEmbedOut);
    ParallelDynamic(batch, static_cast<int>(embed_threads.size()), [&](int t, int64_t img) {
      StartThread(t);
      ScopedOmpThreads one(1);  // the primitive was made for one OpenMP thread
      EmbedThread& e = embed_threads[static_cast<size_t>(t)];
      e.src.set_data_handle(patches + img * P * patch_k);
      e.dst.set_data_handle(embed_out + img * P * D);
      embed_prim.execute(e.strm, e.args);
      e.strm.wait();
      Mark(t, OpProfile::kEmbedGemm);
    });
  });
}

// Attention of one block: qkv codes -> merged, over units (image, head, query block). With few
// (image, head) pairs per thread (batch 1), each pair's query rows are split so that there are
// at least 4 units per thread for the dynamic balancing (blocks of at least 24 rows).
void ExecutorInt::Impl::Attention(int block, int batch) {
  const int bh = batch * heads;
  const int qsplit = std::max(1, std::min((4 * threads + bh - 1) / bh, T / 24));
  const size_t bi = static_cast<size_t>(block);
  Region(OpProfile::kRegAttn, [&] {
    ParallelDynamic(int64_t{bh} * qsplit, threads, [&](int t, int64_t u) {
      StartThread(t);
      const int pair = static_cast<int>(u / qsplit), qb = static_cast<int>(u % qsplit);
      AttentionUnit(bi, t, pair / heads, pair % heads, T * qb / qsplit, T * (qb + 1) / qsplit);
    });
  });
}

// Query rows [i0, i1) of one (image, head): every row is computed by the same code whatever
// the split (q@k^T, softmax, codes and attn@V are row-local; K and V are packed whole).
void ExecutorInt::Impl::AttentionUnit(size_t bi, int t, int img, int h, int i0, int i1) {
  const BlockInt& b = blocks[bi];
  AttnThread& a = attn_threads[t];
  const int tq = i1 - i0;
  const int64_t ld = 3 * D;
  const uint8_t* qh = Codes(Buf::kQkv) + static_cast<int64_t>(img) * T * ld + h * hd;
  const uint8_t* qc = qh + static_cast<int64_t>(i0) * ld;
  const uint8_t* kc = qh + D;
  const uint8_t* vc = qh + 2 * D;
  float* out = B(Buf::kMerged) + (static_cast<int64_t>(img) * T + i0) * D + h * hd;
  const UniformParams& qp = b.q[h].params();
  const UniformParams& kp = b.k[h].params();
  intk::Matmul1Head(qc, ld, kc, ld, tq, T, hd, qp.zero_point, kp.zero_point, b.alpha_qk[h],
                    a.scores.data(), T, &a.m1, cap);
  Mark(t, OpProfile::kQk);
  const int32_t zv = b.v[h].params().zero_point;
  if (b.probs_log) {
    if (b.softmax_writer) {
      intk::SoftmaxToLogCodes(*b.softmax_writer, a.scores.data(), tq, T, a.pcodes.data(), cap);
    } else {
      fk.softmax(a.scores.data(), a.scores.data(), tq, T);
      Mark(t, OpProfile::kSoftmax);
      b.probs_encoder->Encode(a.scores.data(), static_cast<int64_t>(tq) * T, a.pcodes.data());
    }
    Mark(t, OpProfile::kProbsEncode);
    intk::LogMatmul& av = a.av[bi];
    intk::RepackLogMatmulB(&av, vc, ld, /*transposed=*/true, zv, b.alpha_av[h]);
    Mark(t, OpProfile::kRepackV);
    intk::RunLogMatmul(av, a.pcodes.data(), T, 0, tq, out, D, &a.av_scratch, cap);
    Mark(t, OpProfile::kAttnV);
  } else {
    fk.softmax(a.scores.data(), a.scores.data(), tq, T);
    b.probs_uniform->Encode(a.scores.data(), static_cast<int64_t>(tq) * T, a.pcodes.data());
    for (int j = 0; j < T; ++j) {
      for (int c = 0; c < hd; ++c) a.vt[static_cast<size_t>(c) * T + j] = vc[j * ld + c];
    }
    intk::Matmul1Head(a.pcodes.data(), T, a.vt.data(), T, tq, hd, T,
                      b.probs_uniform->quantizer().params().zero_point, zv, b.alpha_av[h], out, D, &a.m2,
                      cap);
    Mark(t, OpProfile::kAttnV);
  }
}
// Final norm, pooling, head(s) from x into out (the kLogits tap follows in Run).
void ExecutorInt::Impl::Head(int batch, float* out) {
  const int64_t rows = static_cast<int64_t>(batch) * T;
  const float* x = B(Buf::kX);
  Region(OpProfile::kRegTail, [&] {
    StartThread(0);
    if (m.pooling == Pooling::kMeanPatches) {
      float* ln = B(Buf::kLn);
      ParallelChunks(rows, threads, [&](int, int64_t b, int64_t e) {
        fk.layer_norm(x + b * D, ln + b * D, e - b, D, m.norm.gamma.data(), m.norm.beta.data(),
                      m.norm.eps);
      });
      exec::MeanPoolPatchRows(m, fk, ln, pooled, 0, batch);
    } else {
      exec::GatherPrefixRows(m, x, batch, pooled, pooled_dist);
      fk.layer_norm(pooled, pooled, batch, D, m.norm.gamma.data(), m.norm.beta.data(), m.norm.eps);
      if (m.pooling == Pooling::kClsDistAvg) {
        fk.layer_norm(pooled_dist, pooled_dist, batch, D, m.norm.gamma.data(), m.norm.beta.data(),
                      m.norm.eps);
      }
    }
    if (observer) Observe(TapPoint::kHeadIn, -1, batch, pooled, batch, D);
    head_in->Encode(pooled, static_cast<int64_t>(batch) * D, acodes);
    intk::RunQLinear(head, qimpl, acodes, D, 0, batch, head_logits, classes);
    if (observer) Observe(TapPoint::kHeadOut, -1, batch, head_logits, batch, classes);
    const int64_t n_logits = static_cast<int64_t>(batch) * classes;
    if (m.pooling == Pooling::kClsDistAvg) {
      if (observer) Observe(TapPoint::kHeadDistIn, -1, batch, pooled_dist, batch, D);
      head_dist_in->Encode(pooled_dist, static_cast<int64_t>(batch) * D, acodes);
      intk::RunQLinear(head_dist, qimpl, acodes, D, 0, batch, logits_dist, classes);
      if (observer) Observe(TapPoint::kHeadDistOut, -1, batch, logits_dist, batch, classes);
      for (int64_t i = 0; i < n_logits; ++i) out[i] = (head_logits[i] + logits_dist[i]) * 0.5f;
    } else {
      std::memcpy(out, head_logits, sizeof(float) * n_logits);
    }
    Mark(0, OpProfile::kTail);
  });
}

void ExecutorInt::Impl::Observe(TapPoint tap, int block, int batch, const float* data, int rows,
                                int cols) {
  const TapInfo info{tap, block, -1, -1, batch, T};
  observer->OnTensor(info, data, rows, cols);
}

void ExecutorInt::Run(const float* images, int batch, float* logits) {
  impl_->Run(images, batch, logits);
}
int ExecutorInt::max_batch() const { return impl_->max_batch; }
int ExecutorInt::num_threads() const { return impl_->threads; }
void ExecutorInt::SetObserver(Fp32Observer* observer) { impl_->observer = observer; }
std::string ExecutorInt::DescribeKernels() const { return impl_->description; }
const void* ExecutorInt::workspace_data() const { return impl_->ws.get(); }
size_t ExecutorInt::workspace_bytes() const { return impl_->ws_bytes; }

}  // namespace adalog
