// FP32 executor: workspace layout, per-batch-size oneDNN plans, the step implementations the
// schedule (vit_schedule.h) walks over whole tensors, capture taps.
#include "runtime/executor_fp32.h"

#include <omp.h>

#include <algorithm>
#include <cassert>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <dnnl.hpp>
#include <map>
#include <mutex>
#include <sstream>
#include <tuple>
#include <unordered_map>
#include <vector>

#include "quant/error.h"
#include "runtime/executor_common.h"
#include "runtime/executor_fp32_swin.h"
#include "runtime/kernels/float_kernels.h"
#include "runtime/parallel.h"
#include "runtime/vit_schedule.h"

namespace adalog {
namespace {

using dnnl::memory;
using Tag = memory::format_tag;
using Dt = memory::data_type;

using exec::FreeDeleter;
using exec::ParallelDynamic;
using exec::ParallelRows;
using exec::ScopedOmpThreads;

// Rounds a float count up to a whole number of 64-byte lines.
size_t AlignFloats(size_t n) { return (n + 15) & ~size_t{15}; }

void* AlignedAlloc(size_t bytes) { return exec::AlignedAlloc(bytes, "executor"); }

// A Linear's weight W [N][K] (PyTorch layout, read in place from the model) and its packed copies,
// one per oneDNN weight layout a primitive asked for (in practice one).
struct PackedLinear {
  int n = 0, k = 0;
  memory plain;  // logical {K, N}, layout "ba" over W
  memory bias;   // {1, N}
  std::vector<memory> packed;
};

// One oneDNN primitive bound to the workspace.
struct Prim {
  dnnl::primitive prim;
  std::unordered_map<int, memory> args;
  size_t scratch_bytes = 0;
  memory::desc scratch_desc;
  // Run on the calling thread only (small GEMMs, see kMinThreadedGemmMacs).
  bool serial = false;
  // Split (split.count > 0; `prim` is not used): the GEMM runs as `count` one-thread GEMMs,
  // claimed dynamically by the threads (ExecSplit). Piece i reads src + i * src_step and writes
  // dst + i * dst_step: fixed row chunks of a Linear (ChunkedLinear; the last chunk may be shorter,
  // `tail`), or the matrices of a batched matmul (BatchedPrim; weights per piece, wei_step > 0).
  struct Split {
    struct Piece {
      dnnl::primitive prim;
      memory::desc src, dst, scratch;
    };
    int count = 0;
    Piece full, tail;
    bool has_tail = false;  // the last piece is `tail`
    float* src = nullptr;
    float* dst = nullptr;
    int64_t src_step = 0, dst_step = 0;
    memory wei;  // shared by every piece (wei_step == 0)
    float* wei_ptr = nullptr;
    memory::desc wei_md;
    int64_t wei_step = 0;
    memory bias;  // a Linear's bias (empty: none)
    char* scratch = nullptr;  // `threads` slots of `slot_bytes` (Plan::chunk_scratch)
    size_t slot_bytes = 0;
  } split;
};

// GEMMs with fewer multiply-adds than this run on one thread (Prim::serial). oneDNN's sgemm
// splits K between threads when M x N is small for the team (DeiT-S's head at batch 1,
// 1x384x1000; a tiny model's patch embedding, 64x64x48), which makes the sums, and so every later
// tensor, depend on the thread count: ExecutorFp32Test.SameBytesWithOneAndTwoThreads* failed under
// ADALOG_ISA=avx2. Below 2^22 multiply-adds a single core takes a few tens of microseconds; at
// 2^24 DeiT-S's batch-1 attention matmuls (6x197x197x64) went serial too, and batch 1 on 2 threads
// took 6% longer.
constexpr int64_t kMinThreadedGemmMacs = int64_t{1} << 22;

// oneDNN's sgemm (the "gemm:" implementations, all that AVX2 gets) also splits K of large GEMMs
// on larger teams (DeiT-S's patch embedding, 392x384x768, and the batched q@k^T at batch 2, on 5
// threads), which changes the sums. From kMinSplitThreads threads on, where oneDNN picks such an
// implementation, a Linear runs instead as fixed row chunks, each a one-thread GEMM, and a batched
// matmul as one one-thread GEMM per matrix, claimed dynamically by the threads. A chunk depends on
// the row count only, and a row's sums do not depend on how many rows share its GEMM (the sgemm
// blocks K by K alone: DeiT-S logits are the same bytes whole or in chunks,
// ExecutorFp32Test.SameBytes*), so the bytes equal those of 1 and 2 threads, where the GEMMs run
// whole and faster (each chunk packs the weights again: chunks at every thread count made DeiT-S
// batch 8 at 2 threads 1.5x slower under ADALOG_ISA=avx2). The brgemm implementations (AVX-512)
// split only M and N and run whole. A chunk has rows / kGemmChunks rows rounded up to a multiple
// of 8, at least kMinGemmChunkRows.
constexpr int kMinSplitThreads = 3;
constexpr int kGemmChunks = 8;
constexpr int kMinGemmChunkRows = 64;
int GemmChunkRows(int rows) {
  const int even = (rows + kGemmChunks - 1) / kGemmChunks;
  return std::max(kMinGemmChunkRows, (even + 7) / 8 * 8);
}

// The primitives of one schedule step: a Linear step's GEMM in `a`; attention's q@k^T in `a`
// and probs@v in `b`; the head's head in `a` and head_dist in `b`; patch embedding's GEMM in `a`.
struct StepPrims {
  Prim a, b;
};

// Everything oneDNN needs to run one batch size, bound to the workspace: prims[i] belongs to
// schedule step i.
struct Plan {
  int batch = 0;
  std::vector<StepPrims> prims;
  std::unique_ptr<void, FreeDeleter> scratch;
  std::unique_ptr<void, FreeDeleter> chunk_scratch;  // per-thread slots for row-chunked GEMMs
  std::string description;
};

}  // namespace

struct ExecutorFp32::Impl : exec::ModelDims {
  const VitModel& m;
  const Schedule sched;
  int max_batch;
  int threads;
  const FloatKernels& fk;
  dnnl::engine eng{dnnl::engine::kind::cpu, 0};
  dnnl::stream strm{eng};
  Fp32Observer* observer = nullptr;
  Fp32Rewriter* rewriter = nullptr;
  // Swin models run on their own step implementations (executor_fp32_swin.h); the ViT members
  // below stay empty then.
  std::unique_ptr<SwinFp32> swin;

  // Shapes: the exec::ModelDims base (D, T, P, pre, heads, hd, F, C, ps, H, W, classes, patch_k).

  // Workspace (one allocation): the schedule's tensors by name (buf[Buf]; kImages and kLogits
  // are bound to the caller's arrays per Run) and the mixing steps' private scratch.
  std::unique_ptr<void, FreeDeleter> ws;
  size_t ws_bytes = 0;
  float* buf[static_cast<int>(Buf::kNumBufs)] = {};
  float *q, *k, *v, *scores, *ctx, *patches, *pooled, *pooled_dist, *head_logits, *logits_dist;

  // The weights' oneDNN views and packed copies: shared by every fork (Fork()), read-only but for
  // WeightsFor's append of a layout no primitive asked for before, which takes `mu`.
  struct BlockWeights {
    PackedLinear qkv, proj, fc1, fc2;
  };
  struct Weights {
    PackedLinear embed_w;
    std::vector<BlockWeights> block_w;
    PackedLinear head_w, head_dist_w;
    std::mutex mu;
  };
  std::shared_ptr<Weights> weights;

  // Per executor (not shared by forks): the oneDNN plans bound to this workspace.
  std::map<int, std::unique_ptr<Plan>> plans;
  std::string first_description;

  float* B(Buf b) const { return buf[static_cast<int>(b)]; }

  Impl(const VitModel& model, const ExecutorOptions& o)
      : m(model),
        sched((ValidateVitModel(model), BuildSchedule(model))),
        max_batch(o.max_batch),
        threads(o.num_threads > 0 ? o.num_threads : omp_get_max_threads()),
        fk(SelectFloatKernels(o.isa_cap)) {
    ADALOG_CHECK(max_batch >= 1 && max_batch <= 1024, "executor: max_batch ", max_batch,
                 " out of range 1..1024");
    ADALOG_CHECK(o.num_threads >= 0 && o.num_threads <= 1024, "executor: num_threads ",
                 o.num_threads, " out of range 0..1024");
    if (m.is_swin()) {
      swin = std::make_unique<SwinFp32>(m, sched, max_batch, threads, fk);
      return;
    }
    static_cast<exec::ModelDims&>(*this) = exec::DimsOf(m);
    AllocateWorkspace();
    ScopedOmpThreads scoped(threads);
    weights = std::make_shared<Weights>();
    weights->embed_w = Pack(m.embed.weight.data(), m.embed.bias.data(), D, patch_k);
    for (const BlockParams& b : m.blocks) {
      BlockWeights bw;
      bw.qkv = Pack(b.qkv);
      bw.proj = Pack(b.proj);
      bw.fc1 = Pack(b.fc1);
      bw.fc2 = Pack(b.fc2);
      weights->block_w.push_back(std::move(bw));
    }
    weights->head_w = Pack(m.head);
    if (m.pooling == Pooling::kClsDistAvg) weights->head_dist_w = Pack(m.head_dist);
    // Build the max-batch plan now: it packs the weights into the layout oneDNN prefers, and the
    // common case (a full batch) then pays nothing at its first Run.
    GetPlan(max_batch);
  }

  // A fork: `src`'s model, options and packed weights (shared), a workspace and plans of its own.
  // Reads only what never changes after prepare (and the weights under their mutex), so it may run
  // while `src` or another fork runs.
  explicit Impl(const Impl& src)
      : exec::ModelDims(src),
        m(src.m),
        sched(src.sched),
        max_batch(src.max_batch),
        threads(src.threads),
        fk(src.fk),
        eng(src.eng),  // the packed weights' engine
        weights(src.weights) {
    if (src.swin) {
      swin = std::make_unique<SwinFp32>(*src.swin, sched);
      return;
    }
    AllocateWorkspace();
    ScopedOmpThreads scoped(threads);
    GetPlan(max_batch);
  }

  void AllocateWorkspace() {
    const size_t R = static_cast<size_t>(max_batch) * T;
    auto view = [this](Buf b) { return &buf[static_cast<int>(b)]; };
    const size_t sizes[] = {
        R * D,                                           // x
        R * D,                                           // ln
        R * 3 * D,                                       // qkv
        R * D, R * D, R * D,                             // q, k, v (head-major)
        static_cast<size_t>(max_batch) * heads * T * T,  // scores
        R * D,                                           // ctx
        R * D,                                           // merged
        R * D,                                           // lin_out
        R * F,                                           // hidden
        static_cast<size_t>(max_batch) * P * patch_k,    // patches
        static_cast<size_t>(max_batch) * P * D,          // embed_out
        static_cast<size_t>(max_batch) * D,              // pooled
        static_cast<size_t>(max_batch) * D,              // pooled_dist
        static_cast<size_t>(max_batch) * classes,        // head_logits
        static_cast<size_t>(max_batch) * classes,        // logits_dist
    };
    float** views[] = {view(Buf::kX),      view(Buf::kLn),     view(Buf::kQkv), &q,
                       &k,                 &v,                 &scores,         &ctx,
                       view(Buf::kMerged), view(Buf::kLinOut), view(Buf::kHidden), &patches,
                       view(Buf::kEmbedOut), &pooled,          &pooled_dist,    &head_logits,
                       &logits_dist};
    static_assert(sizeof(sizes) / sizeof(sizes[0]) == sizeof(views) / sizeof(views[0]), "views");
    size_t total = 0;
    for (size_t s : sizes) total += AlignFloats(s);
    ws_bytes = total * sizeof(float);
    ws.reset(AlignedAlloc(ws_bytes));
    std::memset(ws.get(), 0, ws_bytes);
    float* base = static_cast<float*>(ws.get());
    size_t off = 0;
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); ++i) {
      *views[i] = base + off;
      off += AlignFloats(sizes[i]);
    }
  }

  PackedLinear Pack(const float* w, const float* b, int n, int kk) {
    PackedLinear p;
    p.n = n;
    p.k = kk;
    p.plain = memory({{kk, n}, Dt::f32, Tag::ba}, eng, const_cast<float*>(w));
    p.bias = memory({{1, n}, Dt::f32, Tag::ab}, eng, const_cast<float*>(b));
    return p;
  }
  PackedLinear Pack(const LinearParams& l) { return Pack(l.weight.data(), l.bias.data(), l.out, l.in); }

  memory WeightsFor(PackedLinear& p, const memory::desc& md) {
    if (md == p.plain.get_desc()) return p.plain;
    std::lock_guard<std::mutex> lock(weights->mu);
    for (const memory& mem : p.packed) {
      if (mem.get_desc() == md) return mem;
    }
    memory packed(md, eng);
    dnnl::reorder(p.plain, packed).execute(strm, p.plain, packed);
    strm.wait();
    p.packed.push_back(packed);
    return packed;
  }

  static dnnl::primitive_attr UserScratchAttr() {
    dnnl::primitive_attr attr;
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
    return attr;
  }

  // oneDNN fixes a matmul's thread split when its primitive descriptor is made (from the OpenMP
  // thread count of that moment), so a serial GEMM is also made under one thread.
  dnnl::matmul::primitive_desc MatmulPd(const dnnl::matmul::desc& d,
                                        const dnnl::primitive_attr& attr, bool serial) {
    if (!serial) return dnnl::matmul::primitive_desc(d, attr, eng);
    ScopedOmpThreads one(1);
    return dnnl::matmul::primitive_desc(d, attr, eng);
  }

  Prim MakePrim(const dnnl::matmul::primitive_desc& pd, bool serial) {
    Prim s;
    s.serial = serial;
    s.prim = dnnl::matmul(pd);
    s.scratch_desc = pd.scratchpad_desc();
    s.scratch_bytes = s.scratch_desc.get_size();
    return s;
  }

  // y[M][N] = x[M][K] W^T + b. `desc` null: not described.
  Prim LinearPrim(PackedLinear& w, int rows, float* src, float* dst, std::ostringstream* desc,
                  const char* what) {
    const bool serial = int64_t{rows} * w.n * w.k < kMinThreadedGemmMacs;
    const auto pd = LinearPd(w, rows, serial);
    std::string impl = pd.impl_info_str();
    Prim s;
    if (!serial && threads >= kMinSplitThreads && rows > GemmChunkRows(rows) &&
        impl.rfind("gemm:", 0) == 0) {
      s = ChunkedLinear(w, rows, src, dst);
      impl += " (row chunks of " + std::to_string(GemmChunkRows(rows)) + ", one thread each)";
    } else {
      s = MakePrim(pd, serial);
      s.args = {{DNNL_ARG_SRC, memory(pd.src_desc(), eng, src)},
                {DNNL_ARG_WEIGHTS, WeightsFor(w, pd.weights_desc())},
                {DNNL_ARG_BIAS, w.bias},
                {DNNL_ARG_DST, memory(pd.dst_desc(), eng, dst)}};
    }
    if (desc) *desc << "  " << what << " " << rows << "x" << w.n << "x" << w.k << ": " << impl << "\n";
    return s;
  }

  dnnl::matmul::primitive_desc LinearPd(PackedLinear& w, int rows, bool serial) {
    const memory::desc src_md({rows, w.k}, Dt::f32, Tag::ab);
    const memory::desc wei_md({w.k, w.n}, Dt::f32, Tag::any);
    const memory::desc bias_md({1, w.n}, Dt::f32, Tag::ab);
    const memory::desc dst_md({rows, w.n}, Dt::f32, Tag::ab);
    return MatmulPd(dnnl::matmul::desc(src_md, wei_md, bias_md, dst_md), UserScratchAttr(), serial);
  }

  // A Linear as one-thread GEMMs over fixed row chunks (GemmChunkRows). The chunk primitives are
  // made under one thread; both read the weights in the layout the full-size chunk asks for.
  Prim ChunkedLinear(PackedLinear& w, int rows, float* src, float* dst) {
    Prim s;
    Prim::Split& c = s.split;
    const int chunk = GemmChunkRows(rows), tail = rows % chunk;
    auto piece = [&](int r, Prim::Split::Piece* p) {
      const auto pd = LinearPd(w, r, /*serial=*/true);
      p->prim = dnnl::matmul(pd);
      p->src = pd.src_desc();
      p->dst = pd.dst_desc();
      p->scratch = pd.scratchpad_desc();
      s.scratch_bytes = std::max(s.scratch_bytes, p->scratch.get_size());
      return pd.weights_desc();
    };
    const memory::desc wei_md = piece(chunk, &c.full);
    c.count = (rows + chunk - 1) / chunk;
    if (tail > 0) {
      ADALOG_CHECK(piece(tail, &c.tail) == wei_md,
                   "executor: oneDNN asked for two weight layouts in one chunked GEMM");
      c.has_tail = true;
    }
    c.src = src;
    c.dst = dst;
    c.src_step = int64_t{chunk} * w.k;
    c.dst_step = int64_t{chunk} * w.n;
    c.wei = WeightsFor(w, wei_md);
    c.bias = w.bias;
    return s;
  }

  // Runs a split GEMM: piece i on whichever thread claims it, with that thread's own stream and
  // scratchpad slot.
  void ExecSplit(const Prim::Split& c) {
    ParallelDynamic(c.count, threads, [&](int t, int64_t i) {
      ScopedOmpThreads one(1);
      const Prim::Split::Piece& p = c.has_tail && i == c.count - 1 ? c.tail : c.full;
      std::unordered_map<int, memory> args = {
          {DNNL_ARG_SRC, memory(p.src, eng, c.src + i * c.src_step)},
          {DNNL_ARG_WEIGHTS, c.wei_step > 0 ? memory(c.wei_md, eng, c.wei_ptr + i * c.wei_step) : c.wei},
          {DNNL_ARG_DST, memory(p.dst, eng, c.dst + i * c.dst_step)}};
      if (c.bias) args.insert({DNNL_ARG_BIAS, c.bias});
      if (p.scratch.get_size() > 0) {
        args.insert({DNNL_ARG_SCRATCHPAD, memory(p.scratch, eng, c.scratch + c.slot_bytes * t)});
      }
      dnnl::stream st(eng);
      p.prim.execute(st, args);
    });
  }

  // Batched over bh = batch*heads: scores[bh] = (q[bh] @ k[bh]^T) * scale; [T][hd] x [hd][T].
  Prim ScoresPrim(int bh, float scale, std::ostringstream* desc) {
    dnnl::primitive_attr attr = UserScratchAttr();
    attr.set_output_scales(0, {scale});
    // k stored [bh][T][hd], read as [hd][T] (acb).
    return BatchedPrim(bh, {T, hd}, {hd, T}, Tag::acb, {T, T}, attr, q, k, scores, desc, "q@k^T");
  }

  // ctx[bh] = probs[bh] @ v[bh]; [T][T] x [T][hd].
  Prim AvPrim(int bh, std::ostringstream* desc) {
    return BatchedPrim(bh, {T, T}, {T, hd}, Tag::abc, {T, hd}, UserScratchAttr(), scores, v, ctx,
                       desc, "probs@v");
  }

  // dst[i] = src[i] @ wei[i] for i < bh, row-major matrices stored one after another; whole, or
  // (kMinSplitThreads threads or more, sgemm) one one-thread GEMM per matrix.
  Prim BatchedPrim(int bh, memory::dims src, memory::dims wei, Tag wei_tag, memory::dims dst,
                   const dnnl::primitive_attr& attr, float* src_p, float* wei_p, float* dst_p,
                   std::ostringstream* desc, const char* what) {
    auto batched = [](int n, const memory::dims& d) { return memory::dims{n, d[0], d[1]}; };
    const memory::desc src_md(batched(bh, src), Dt::f32, Tag::abc);
    const memory::desc wei_md(batched(bh, wei), Dt::f32, wei_tag);
    const memory::desc dst_md(batched(bh, dst), Dt::f32, Tag::abc);
    const int64_t macs = int64_t{bh} * src[0] * src[1] * dst[1];
    const bool serial = macs < kMinThreadedGemmMacs;
    const auto pd = MatmulPd(dnnl::matmul::desc(src_md, wei_md, dst_md), attr, serial);
    std::string impl = pd.impl_info_str();
    Prim s;
    if (!serial && threads >= kMinSplitThreads && bh > 1 && impl.rfind("gemm:", 0) == 0) {
      Prim::Split& it = s.split;
      it.count = bh;
      it.full.src = memory::desc(batched(1, src), Dt::f32, Tag::abc);
      it.wei_md = memory::desc(batched(1, wei), Dt::f32, wei_tag);
      it.full.dst = memory::desc(batched(1, dst), Dt::f32, Tag::abc);
      const auto one =
          MatmulPd(dnnl::matmul::desc(it.full.src, it.wei_md, it.full.dst), attr, /*serial=*/true);
      it.full.prim = dnnl::matmul(one);
      it.full.scratch = one.scratchpad_desc();
      s.scratch_bytes = it.full.scratch.get_size();
      it.src = src_p;
      it.wei_ptr = wei_p;
      it.dst = dst_p;
      it.src_step = src[0] * src[1];
      it.wei_step = wei[0] * wei[1];
      it.dst_step = dst[0] * dst[1];
      impl += " (one thread per matrix)";
    } else {
      s = MakePrim(pd, serial);
      s.args = {{DNNL_ARG_SRC, memory(src_md, eng, src_p)},
                {DNNL_ARG_WEIGHTS, memory(wei_md, eng, wei_p)},
                {DNNL_ARG_DST, memory(dst_md, eng, dst_p)}};
    }
    if (desc) {
      *desc << "  " << what << " " << bh << "x(" << src[0] << "x" << dst[1] << "x" << src[1]
            << "): " << impl << "\n";
    }
    return s;
  }

  // The primitives of every GEMM step of the schedule for one batch size; block 0's are described.
  Plan& GetPlan(int batch) {
    auto it = plans.find(batch);
    if (it != plans.end()) return *it->second;
    auto plan = std::make_unique<Plan>();
    plan->batch = batch;
    std::ostringstream desc;
    desc << "batch " << batch << " (float islands: " << fk.name
         << "; threads: OpenMP, the team oneDNN uses)\n";
    plan->prims.resize(sched.steps.size());
    std::vector<Prim*> all;
    for (size_t i = 0; i < sched.steps.size(); ++i) {
      const Step& st = sched.steps[i];
      StepPrims& p = plan->prims[i];
      const int rows = batch * st.tokens;
      std::ostringstream* d = st.block <= 0 ? &desc : nullptr;
      BlockWeights* bw = st.block >= 0 ? &weights->block_w[static_cast<size_t>(st.block)] : nullptr;
      switch (st.op) {
        case StepOp::kPatchEmbed:
          p.a = LinearPrim(weights->embed_w, rows, patches, B(st.out), d, "patch_embed");
          break;
        case StepOp::kQkv: p.a = LinearPrim(bw->qkv, rows, B(st.in), B(st.out), d, "qkv"); break;
        case StepOp::kAttention:
          p.a = ScoresPrim(batch * heads, m.blocks[static_cast<size_t>(st.block)].attn_scale, d);
          p.b = AvPrim(batch * heads, d);
          all.push_back(&p.b);
          break;
        case StepOp::kProj: p.a = LinearPrim(bw->proj, rows, B(st.in), B(st.out), d, "proj"); break;
        case StepOp::kFc1: p.a = LinearPrim(bw->fc1, rows, B(st.in), B(st.out), d, "fc1"); break;
        case StepOp::kFc2: p.a = LinearPrim(bw->fc2, rows, B(st.in), B(st.out), d, "fc2"); break;
        case StepOp::kHead:
          p.a = LinearPrim(weights->head_w, batch, pooled, head_logits, d, "head");
          if (m.pooling == Pooling::kClsDistAvg) {
            p.b = LinearPrim(weights->head_dist_w, batch, pooled_dist, logits_dist, d, "head_dist");
            all.push_back(&p.b);
          }
          break;
        default: continue;  // no GEMM
      }
      all.push_back(&p.a);
    }
    // One scratchpad shared by all whole primitives (they run one after another), and one slot
    // per thread shared by the row-chunked ones.
    size_t scratch = 0, slot = 0;
    for (Prim* s : all) {
      size_t& need = s->split.count > 0 ? slot : scratch;
      need = std::max(need, s->scratch_bytes);
    }
    plan->scratch.reset(AlignedAlloc(scratch));
    slot = (slot + 63) / 64 * 64;
    if (slot > 0) plan->chunk_scratch.reset(AlignedAlloc(slot * static_cast<size_t>(threads)));
    for (Prim* s : all) {
      if (s->split.count > 0) {
        s->split.scratch = static_cast<char*>(plan->chunk_scratch.get());
        s->split.slot_bytes = slot;
      } else if (s->scratch_bytes > 0) {
        s->args.insert({DNNL_ARG_SCRATCHPAD, memory(s->scratch_desc, eng, plan->scratch.get())});
      }
    }
    plan->description = desc.str();
    if (DispatchVerbose()) std::fprintf(stderr, "adalog: fp32 executor plan, %s", plan->description.c_str());
    if (first_description.empty()) first_description = plan->description;
    Plan& ref = *plan;
    plans.emplace(batch, std::move(plan));
    return ref;
  }

  void Exec(const Prim& s) {
    if (s.split.count > 0) {
      ExecSplit(s.split);
    } else if (s.serial) {
      ScopedOmpThreads one(1);
      s.prim.execute(strm, s.args);
    } else {
      s.prim.execute(strm, s.args);
    }
  }

  // Reports a tensor: input-side taps are rewritten in place first (if a rewriter is set), and
  // the observer sees the rewritten values; output-side taps are observed only.
  void Tap(TapPoint tap, int block, int batch, float* data, int rows, int cols, int image = -1,
           int head = -1) {
    const TapInfo info{tap, block, image, head, batch, T};
    if (rewriter && IsInputTap(tap)) rewriter->Rewrite(info, data, rows, cols);
    if (observer) observer->OnTensor(info, data, rows, cols);
  }

  void LayerNormRows(const float* src, float* dst, int64_t rows, const LayerNormParams& n) {
    ParallelRows(rows, threads, [&](int64_t b, int64_t e) {
      fk.layer_norm(src + b * D, dst + b * D, e - b, D, n.gamma.data(), n.beta.data(), n.eps);
    });
  }

  void AddRows(float* acc, const float* add, int64_t rows, int cols) {
    ParallelRows(rows, threads, [&](int64_t b, int64_t e) {
      fk.add(acc + b * cols, add + b * cols, acc + b * cols, (e - b) * cols);
    });
  }

  void Run(const float* images, int batch, float* out) {
    assert(batch >= 1 && batch <= max_batch);
    if (swin) {
      swin->SetHooks(observer, rewriter);
      swin->Run(images, batch, out);
      return;
    }
    ScopedOmpThreads scoped(threads);
    Walk(GetPlan(batch), {0, static_cast<int>(sched.steps.size())}, images, batch, out);
  }

  // Stepping API: the residual stream lives in the caller's buffer between calls.
  void StepEmbed(const float* images, int batch, float* xs) {
    if (swin) {
      swin->SetHooks(observer, rewriter);
      swin->RunEmbed(images, batch, xs);
      return;
    }
    assert(batch >= 1 && batch <= max_batch);
    ScopedOmpThreads scoped(threads);
    Walk(GetPlan(batch), sched.embed, images, batch, nullptr);
    std::memcpy(xs, B(Buf::kX), sizeof(float) * static_cast<size_t>(batch) * T * D);
  }
  void StepBlock(int bi, float* xs, int batch) {
    if (swin) {
      swin->SetHooks(observer, rewriter);
      swin->RunBlock(bi, xs, batch);
      return;
    }
    assert(batch >= 1 && batch <= max_batch);
    ScopedOmpThreads scoped(threads);
    Plan& plan = GetPlan(batch);
    std::memcpy(B(Buf::kX), xs, sizeof(float) * static_cast<size_t>(batch) * T * D);
    Walk(plan, sched.blocks[static_cast<size_t>(bi)], nullptr, batch, nullptr);
    std::memcpy(xs, B(Buf::kX), sizeof(float) * static_cast<size_t>(batch) * T * D);
  }
  void StepHead(const float* xs, int batch, float* out) {
    if (swin) {
      swin->SetHooks(observer, rewriter);
      swin->RunHead(xs, batch, out);
      return;
    }
    assert(batch >= 1 && batch <= max_batch);
    ScopedOmpThreads scoped(threads);
    Plan& plan = GetPlan(batch);
    std::memcpy(B(Buf::kX), xs, sizeof(float) * static_cast<size_t>(batch) * T * D);
    Walk(plan, sched.head, nullptr, batch, out);
  }

  // Runs schedule steps [r.first, r.end) on whole tensors, one step at a time (the oneDNN GEMMs
  // run over all rows), reporting each step's tap after it.
  void Walk(Plan& plan, StepRange r, const float* images, int batch, float* out) {
    buf[static_cast<int>(Buf::kImages)] = const_cast<float*>(images);  // read only
    buf[static_cast<int>(Buf::kLogits)] = out;
    const bool taps = observer || rewriter;
    for (int i = r.first; i < r.end; ++i) {
      const Step& st = sched.steps[static_cast<size_t>(i)];
      RunStep(st, plan.prims[static_cast<size_t>(i)], batch);
      if (taps && st.has_tap) Tap(st.tap, st.block, batch, B(st.out), batch * st.tokens, st.cols);
    }
  }

  // The FP32 implementation of one step over all batch * tokens rows.
  void RunStep(const Step& st, const StepPrims& p, int batch) {
    const int64_t rows = static_cast<int64_t>(batch) * st.tokens;
    const BlockParams* blk = st.block >= 0 ? &m.blocks[static_cast<size_t>(st.block)] : nullptr;
    switch (st.op) {
      case StepOp::kPatchEmbed: PatchEmbed(p, B(st.in), batch); break;
      case StepOp::kTokens:
        ParallelRows(rows, threads, [&](int64_t b, int64_t e) {
          exec::AssembleTokenRows(m, fk, B(st.in), B(st.out), b, e);
        });
        break;
      case StepOp::kLn1: LayerNormRows(B(st.in), B(st.out), rows, blk->ln1); break;
      case StepOp::kLn2: LayerNormRows(B(st.in), B(st.out), rows, blk->ln2); break;
      case StepOp::kQkv:
      case StepOp::kProj:
      case StepOp::kFc1:
      case StepOp::kFc2: Exec(p.a); break;
      case StepOp::kAttention: Attention(p, st.block, batch); break;
      case StepOp::kAddResidual: AddRows(B(st.out), B(st.in), rows, st.cols); break;
      case StepOp::kGelu: {
        const EltwiseFn gelu = blk->gelu == GeluKind::kErf ? fk.gelu_erf : fk.gelu_tanh;
        float* h = B(st.out);
        const int hn = st.cols;
        ParallelRows(rows, threads, [&](int64_t b, int64_t e) {
          gelu(h + b * hn, h + b * hn, (e - b) * hn);
        });
        break;
      }
      case StepOp::kHead: Head(p, batch, B(st.out)); break;
      default: Fail("FP32 executor: step ", StepOpName(st.op), " is not a ViT step");
    }
  }

  // im2col rows (image, patch) with columns ordered (c, ky, kx) like OIHW, then the GEMM.
  void PatchEmbed(const StepPrims& p, const float* images, int batch) {
    ParallelRows(static_cast<int64_t>(batch) * P, threads, [&](int64_t b, int64_t e) {
      exec::Im2colPatchRows(m.embed, images, b, e, patches);
    });
    if (observer || rewriter) Tap(TapPoint::kPatchEmbedIn, -1, batch, patches, batch * P, patch_k);
    Exec(p.a);
  }

  // qkv -> merged: split heads, q@k^T, softmax, probs@v, merge heads.
  void Attention(const StepPrims& p, int blk_i, int batch) {
    const int64_t rows = static_cast<int64_t>(batch) * T;
    const int bh = batch * heads;
    const float* qkv = B(Buf::kQkv);
    float* merged = B(Buf::kMerged);
    // Split heads: q/k/v[(img*heads + h)][t][:] = qkv[img*T + t][part*D + h*hd + :].
    ParallelRows(rows, threads, [&](int64_t b, int64_t e) {
      for (int64_t r = b; r < e; ++r) {
        const int64_t img = r / T, t = r % T;
        const float* src = qkv + r * 3 * D;
        for (int h = 0; h < heads; ++h) {
          const int64_t o = ((img * heads + h) * T + t) * hd;
          std::memcpy(q + o, src + h * hd, sizeof(float) * hd);
          std::memcpy(k + o, src + D + h * hd, sizeof(float) * hd);
          std::memcpy(v + o, src + 2 * D + h * hd, sizeof(float) * hd);
        }
      }
    });
    if (observer || rewriter) {
      for (int i = 0; i < bh; ++i) {
        const int64_t o = static_cast<int64_t>(i) * T * hd;
        Tap(TapPoint::kQ, blk_i, batch, q + o, T, hd, i / heads, i % heads);
        Tap(TapPoint::kK, blk_i, batch, k + o, T, hd, i / heads, i % heads);
        Tap(TapPoint::kV, blk_i, batch, v + o, T, hd, i / heads, i % heads);
      }
    }
    Exec(p.a);
    ParallelRows(static_cast<int64_t>(bh) * T, threads, [&](int64_t b, int64_t e) {
      fk.softmax(scores + b * T, scores + b * T, e - b, T);
    });
    if (observer || rewriter) {
      for (int i = 0; i < bh; ++i) {
        Tap(TapPoint::kAttnProbs, blk_i, batch, scores + static_cast<int64_t>(i) * T * T, T, T,
            i / heads, i % heads);
      }
    }
    Exec(p.b);
    // Merge heads: merged[img*T + t][h*hd + :] = ctx[(img*heads + h)][t][:].
    ParallelRows(rows, threads, [&](int64_t b, int64_t e) {
      for (int64_t r = b; r < e; ++r) {
        const int64_t img = r / T, t = r % T;
        for (int h = 0; h < heads; ++h) {
          std::memcpy(merged + r * D + h * hd, ctx + ((img * heads + h) * T + t) * hd,
                      sizeof(float) * hd);
        }
      }
    });
  }

  // Final norm, pooling and head(s) from x into out (the kLogits tap follows in Walk).
  void Head(const StepPrims& p, int batch, float* out) {
    const int64_t rows = static_cast<int64_t>(batch) * T;
    const float* x = B(Buf::kX);
    if (m.pooling == Pooling::kMeanPatches) {
      float* ln = B(Buf::kLn);
      LayerNormRows(x, ln, rows, m.norm);
      ParallelRows(batch, threads, [&](int64_t b, int64_t e) {
        exec::MeanPoolPatchRows(m, fk, ln, pooled, b, e);
      });
    } else {
      exec::GatherPrefixRows(m, x, batch, pooled, pooled_dist);
      LayerNormRows(pooled, pooled, batch, m.norm);
      if (m.pooling == Pooling::kClsDistAvg) LayerNormRows(pooled_dist, pooled_dist, batch, m.norm);
    }
    if (observer || rewriter) Tap(TapPoint::kHeadIn, -1, batch, pooled, batch, D);
    Exec(p.a);
    if (observer) Tap(TapPoint::kHeadOut, -1, batch, head_logits, batch, classes);
    const int64_t n_logits = static_cast<int64_t>(batch) * classes;
    if (m.pooling == Pooling::kClsDistAvg) {
      if (observer || rewriter) Tap(TapPoint::kHeadDistIn, -1, batch, pooled_dist, batch, D);
      Exec(p.b);
      if (observer) Tap(TapPoint::kHeadDistOut, -1, batch, logits_dist, batch, classes);
      for (int64_t i = 0; i < n_logits; ++i) out[i] = (head_logits[i] + logits_dist[i]) * 0.5f;
    } else {
      std::memcpy(out, head_logits, sizeof(float) * n_logits);
    }
  }
};

ExecutorFp32::ExecutorFp32(const VitModel& model, const ExecutorOptions& options)
    : impl_(std::make_unique<Impl>(model, options)) {}
ExecutorFp32::ExecutorFp32(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ExecutorFp32::~ExecutorFp32() = default;

std::unique_ptr<ExecutorFp32> ExecutorFp32::Fork() const {
  return std::unique_ptr<ExecutorFp32>(new ExecutorFp32(std::make_unique<Impl>(*impl_)));
}

void ExecutorFp32::Run(const float* images, int batch, float* logits) {
  impl_->Run(images, batch, logits);
}
void ExecutorFp32::RunEmbed(const float* images, int batch, float* x) {
  impl_->StepEmbed(images, batch, x);
}
void ExecutorFp32::RunBlock(int block, float* x, int batch) {
  ADALOG_CHECK(block >= 0 && block < static_cast<int>(impl_->m.blocks.size()), "executor: block ",
               block, " out of range");
  impl_->StepBlock(block, x, batch);
}
void ExecutorFp32::RunHead(const float* x, int batch, float* logits) {
  impl_->StepHead(x, batch, logits);
}
void ExecutorFp32::SetObserver(Fp32Observer* observer) { impl_->observer = observer; }
void ExecutorFp32::SetRewriter(Fp32Rewriter* rewriter) { impl_->rewriter = rewriter; }
int ExecutorFp32::max_batch() const { return impl_->max_batch; }
int ExecutorFp32::num_threads() const { return impl_->threads; }
const VitModel& ExecutorFp32::model() const { return impl_->m; }
std::string ExecutorFp32::DescribeKernels() const { return impl_->first_description; }
const void* ExecutorFp32::workspace_data() const {
  return impl_->swin ? impl_->swin->workspace_data() : impl_->ws.get();
}
size_t ExecutorFp32::workspace_bytes() const {
  return impl_->swin ? impl_->swin->workspace_bytes() : impl_->ws_bytes;
}

}  // namespace adalog
