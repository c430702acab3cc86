// The integer executor: prepare (weight codes, QLinear / LogMatmul packing, quantizers, workspace)
// and the forward pass over the integer kernels with FP32 float islands.
#include "runtime/executor_int.h"

#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cassert>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <dnnl.hpp>
#include <optional>
#include <sstream>
#include <unordered_map>
#include <utility>
#include <vector>

#include "quant/error.h"
#include "quant/log_quantizers.h"
#include "quant/uniform.h"
#include "runtime/executor_common.h"
#include "runtime/kernels/float_kernels.h"
#include "runtime/kernels/int/code_encoders.h"
#include "runtime/kernels/int/logcode_writers.h"

namespace adalog {
namespace {

using dnnl::memory;
using Tag = memory::format_tag;
using Dt = memory::data_type;

using exec::FreeDeleter;
using exec::ScopedOmpThreads;

void* AlignedAlloc(size_t bytes) { return exec::AlignedAlloc(bytes, "integer executor"); }

size_t Align64(size_t bytes) { return (bytes + 63) & ~size_t{63}; }

// Splits [0, n) into exactly `chunks` contiguous pieces (piece c = [n c / chunks, n (c+1) / chunks),
// at most ceil(n / chunks) items) and calls f(thread, begin, end) for each non-empty piece, on up
// to `chunks` OpenMP threads; `thread` < chunks indexes per-thread scratch. Each item is handled
// by exactly one call with the same code, so results do not depend on the thread count.
template <typename F>
void ParallelChunks(int64_t n, int chunks, const F& f) {
  if (chunks <= 1 || n < 2) {
    if (n > 0) f(0, int64_t{0}, n);
    return;
  }
#pragma omp parallel num_threads(chunks)
  {
    const int t = omp_get_thread_num(), nt = omp_get_num_threads();
    for (int c = t; c < chunks; c += nt) {
      const int64_t b = n * c / chunks, e = n * (c + 1) / chunks;
      if (b < e) f(t, b, e);
    }
  }
}

// Calls f(thread, i) for every i in [0, count) on up to `threads` OpenMP threads, each thread
// claiming the next unclaimed index (dynamic balancing: a thread slowed by other work on its core
// takes fewer items). Each item is handled by exactly one call with the same code, so results do
// not depend on the thread count or on which thread ran an item; `thread` < threads indexes
// per-thread scratch.
template <typename F>
void ParallelDynamic(int64_t count, int threads, const F& f) {
  if (threads <= 1 || count < 2) {
    for (int64_t i = 0; i < count; ++i) f(0, i);
    return;
  }
  const int team = static_cast<int>(std::min<int64_t>(threads, count));
  std::atomic<int64_t> next{0};
#pragma omp parallel num_threads(team)
  {
    const int t = omp_get_thread_num();
    for (int64_t i = next.fetch_add(1, std::memory_order_relaxed); i < count;
         i = next.fetch_add(1, std::memory_order_relaxed)) {
      f(t, i);
    }
  }
}

[[noreturn]] void Unsupported(const std::string& quantizer, const std::string& op) {
  Fail("integer path does not support ", quantizer, " for ", op, "; use --simulate");
}

std::string ActName(const ActQuant& a) {
  switch (a.kind) {
    case ActQuant::Kind::kNone: return "an unquantized (FP32) input";
    case ActQuant::Kind::kUniform:
      return a.uniform.params.mode == UniformMode::kAsymmetric ? "uniform" : "symmetric uniform";
    case ActQuant::Kind::kLog: return LogKindName(a.log.kind);
    case ActQuant::Kind::kTwin: return "twin uniform";
  }
  return "?";
}

// What the integer path cannot run, one predicate per operand kind: "" when supported, else the
// quantizer named in "integer path does not support <it> for <op>". Shared by the prepare steps
// below (which fail with it) and ExecutorInt::WhyUnsupported (which reports it up front).
std::string UniformInputWhy(const ActQuant& a) {
  if (a.kind != ActQuant::Kind::kUniform || a.uniform.params.mode != UniformMode::kAsymmetric) {
    return ActName(a);
  }
  return "";
}
std::string HeadInputsWhy(const UniformPerHead& q) {
  if (q.scales.empty()) return "an unquantized (FP32) input";
  if (q.mode != UniformMode::kAsymmetric) return "symmetric uniform";
  return "";
}
std::string WeightWhy(const UniformPerChannel& q) {
  return q.scales.empty() ? "an unquantized (FP32) weight" : "";
}
std::string LogTablesWhy(const LogParams& p) {
  return p.kind == LogKind::kLogSqrt2 ? "logsqrt2" : "";
}

// The uniform per-tensor input quantizer of a u8 GEMM operand.
intk::VectorUniformEncoder UniformInput(const ActQuant& a, const std::string& op, IsaLevel cap) {
  if (!UniformInputWhy(a).empty()) Unsupported(UniformInputWhy(a), op);
  return intk::VectorUniformEncoder(UniformQuantizer(a.uniform.params), cap);
}

// Per-head asymmetric uniform quantizers (q / k / v).
std::vector<intk::VectorUniformEncoder> HeadInputs(const UniformPerHead& q, int heads,
                                                   const std::string& op, IsaLevel cap) {
  if (q.scales.empty()) Unsupported(HeadInputsWhy(q), op);
  q.Validate();
  if (!HeadInputsWhy(q).empty()) Unsupported(HeadInputsWhy(q), op);
  ADALOG_CHECK(q.num_heads() == heads, "quantized model: ", op, " has ", q.num_heads(),
               " per-head parameters, the model has ", heads, " heads");
  std::vector<intk::VectorUniformEncoder> out;
  for (int h = 0; h < heads; ++h) out.emplace_back(UniformQuantizer(q.head(h)), cap);
  return out;
}

// A weight as asymmetric u8 codes (symmetric codes c are stored as c + 2^(b-1) with zero point
// 2^(b-1): the same dequantized value), its per-row (scale, zero point) and the dequantized values.
struct WeightCodes {
  int bits = 8;
  std::vector<uint8_t> u;
  std::vector<float> s;
  std::vector<int32_t> z;
  std::vector<float> w_hat;
};

WeightCodes EncodeWeight(const UniformPerChannel& q, const std::vector<float>& w, int out, int in,
                         const std::string& op) {
  if (!WeightWhy(q).empty()) Unsupported(WeightWhy(q), op);
  q.Validate();
  ADALOG_CHECK(q.axis == 0 && q.num_channels() == out, "quantized model: ", op, " weight has ",
               q.num_channels(), " per-channel parameters on axis ", q.axis, ", expected ", out,
               " on axis 0");
  ADALOG_CHECK(static_cast<int64_t>(w.size()) == static_cast<int64_t>(out) * in,
               "quantized model: ", op, " weight size mismatch");
  WeightCodes c;
  c.bits = q.bits;
  c.u.resize(w.size());
  c.w_hat.resize(w.size());
  c.s.resize(static_cast<size_t>(out));
  c.z.resize(static_cast<size_t>(out));
  std::vector<int8_t> sc(static_cast<size_t>(in));
  for (int o = 0; o < out; ++o) {
    const UniformParams p = q.channel(o);
    const UniformQuantizer uq(p);
    const size_t off = static_cast<size_t>(o) * in;
    if (p.mode == UniformMode::kAsymmetric) {
      uq.Encode(w.data() + off, in, c.u.data() + off);
      c.z[o] = p.zero_point;
    } else {
      uq.Encode(w.data() + off, in, sc.data());
      const int32_t half = 1 << (p.bits - 1);
      for (int i = 0; i < in; ++i) c.u[off + i] = static_cast<uint8_t>(sc[i] + half);
      c.z[o] = half;
    }
    c.s[o] = p.scale;
    for (int i = 0; i < in; ++i) {
      c.w_hat[off + i] = static_cast<float>(static_cast<int32_t>(c.u[off + i]) - c.z[o]) * p.scale;
    }
  }
  return c;
}

intk::QLinear PrepareLinear(const LinearParams& l, const LinearQuant& lq, const std::string& op,
                            std::optional<intk::VectorUniformEncoder>* input, IsaLevel cap) {
  input->emplace(UniformInput(lq.input, op + " input", cap));
  const WeightCodes wc = EncodeWeight(lq.weight, l.weight, l.out, l.in, op);
  const UniformParams& a = lq.input.uniform.params;
  ADALOG_CHECK(l.in <= intk::kMaxK, "integer path: ", op, " has K = ", l.in, " > ", intk::kMaxK);
  return intk::PrepareQLinear(wc.u.data(), l.out, l.in, wc.bits, wc.s.data(), wc.z.data(), a.scale,
                              a.zero_point, l.bias.data());
}

AdaLogTables IntegerLogTables(const LogParams& p, const std::string& op) {
  if (!LogTablesWhy(p).empty()) Unsupported(LogTablesWhy(p), op);
  p.Validate();
  return p.kind == LogKind::kLog2 ? MakeLog2Tables(p.bits) : MakeAdaLogTables(p.bits, p.q);
}

// Grows every buffer of `dst` to at least the size the same buffer has in `src`.
void MergeScratch(const intk::LogScratch& src, intk::LogScratch* dst) {
  auto grow = [](auto& d, const auto& s) {
    if (d.size() < s.size()) d.resize(s.size());
  };
  grow(dst->row_exp, src.row_exp);
  grow(dst->l8, src.l8);
  grow(dst->l16, src.l16);
  grow(dst->buckets, src.buckets);
  grow(dst->lut64, src.lut64);
  grow(dst->acc64, src.acc64);
}

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
};

// Per-op timing, on when ADALOG_PROFILE=1 (read at prepare): each thread adds the time since its
// previous mark to the op it just finished; the calling thread adds each parallel region's wall
// time. Printed to stderr when the executor is destroyed. Off: one predictable branch per op.
struct OpProfile {
  enum Op {
    kIm2col, kEmbedGemm, kTokens, kLayerNorm, kEncodeIn, kQkvGemm, kQkvCodes, kQk, kSoftmax,
    kProbsEncode, kRepackV, kAttnV, kProjGemm, kAdd, kFc1Gemm, kGelu, kGeluEncode, kFc2, kTail,
    kNumOps
  };
  enum Region { kRegPatch, kRegEmbedGemm, kRegTokens, kRegAttn, kRegRows, kRegTail, kNumRegions };
  static const char* OpName(int op) {
    static const char* const names[] = {
        "im2col", "patch_embed gemm", "tokens+pos", "layernorm", "encode (uniform in)",
        "qkv gemm", "q/k/v codes", "q@k^T", "softmax", "probs encode", "V repack", "attn@V",
        "proj gemm", "residual add", "fc1 gemm", "gelu", "gelu encode", "fc2 (decode+gemm)",
        "tail (norm, head)"};
    return names[op];
  }
  static const char* RegionName(int r) {
    static const char* const names[] = {"im2col", "patch_embed", "tokens+block0 qkv",
                                        "attention", "rows proj..qkv", "tail"};
    return names[r];
  }
  struct alignas(64) PerThread {
    int64_t last = 0;
    int64_t ns[kNumOps] = {};
  };
  std::vector<PerThread> th;
  int64_t region_ns[kNumRegions] = {};
  int64_t region_calls[kNumRegions] = {};
  int64_t runs = 0;

  static int64_t Now() {
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
  }
  void Start(int t) { th[static_cast<size_t>(t)].last = Now(); }
  void Mark(int t, Op op) {
    PerThread& p = th[static_cast<size_t>(t)];
    const int64_t now = Now();
    p.ns[op] += now - p.last;
    p.last = now;
  }
  void Print(int threads, int max_batch) const {
    if (runs == 0) return;
    const double r = static_cast<double>(runs);
    std::fprintf(stderr, "adalog profile: %lld runs, %d threads (max batch %d), ms per run\n",
                 static_cast<long long>(runs), threads, max_batch);
    std::fprintf(stderr, "  %-22s", "op");
    for (int t = 0; t < threads; ++t) std::fprintf(stderr, "   thread%-2d", t);
    std::fprintf(stderr, "\n");
    for (int op = 0; op < kNumOps; ++op) {
      std::fprintf(stderr, "  %-22s", OpName(op));
      for (int t = 0; t < threads; ++t) {
        std::fprintf(stderr, " %10.3f", static_cast<double>(th[static_cast<size_t>(t)].ns[op]) / r * 1e-6);
      }
      std::fprintf(stderr, "\n");
    }
    std::fprintf(stderr, "  regions (wall ms per run, calls per run):\n");
    double total = 0;
    for (int g = 0; g < kNumRegions; ++g) {
      total += static_cast<double>(region_ns[g]);
      std::fprintf(stderr, "  %-22s %10.3f %6.1f\n", RegionName(g),
                   static_cast<double>(region_ns[g]) / r * 1e-6,
                   static_cast<double>(region_calls[g]) / r);
    }
    std::fprintf(stderr, "  %-22s %10.3f\n", "total", total / r * 1e-6);
  }
};

}  // namespace

bool ParseLogDesign(const std::string& text, intk::LogDesign* design) {
  if (text == "buckets") *design = intk::LogDesign::kBuckets;
  else if (text == "s16") *design = intk::LogDesign::kS16;
  else if (text == "u8") *design = intk::LogDesign::kU8;
  else return false;
  return true;
}

IntPathOptions DefaultIntPathOptions() {
  IntPathOptions o;
  const char* env = std::getenv("ADALOG_LOG_DESIGN");
  if (env != nullptr && *env != '\0') {
    // "D" for both log-code GEMMs, or "A,F": attn@V design A, fc2 design F.
    const std::string text(env);
    const size_t comma = text.find(',');
    intk::LogDesign a, f;
    const bool ok = comma == std::string::npos
                        ? ParseLogDesign(text, &a) && ParseLogDesign(text, &f)
                        : ParseLogDesign(text.substr(0, comma), &a) &&
                              ParseLogDesign(text.substr(comma + 1), &f);
    ADALOG_CHECK(ok, "ADALOG_LOG_DESIGN=", env,
                 ": expected buckets, s16 or u8, or two of them as ATTN,FC2 (e.g. s16,u8)");
    o.attn_design = a;
    o.fc2_design = f;
  }
  const char* fused = std::getenv("ADALOG_LOG_WRITERS");
  if (fused != nullptr && *fused != '\0') {
    ADALOG_CHECK(std::string(fused) == "fused" || std::string(fused) == "islands",
                 "ADALOG_LOG_WRITERS=", fused, ": expected fused or islands");
    o.fused_log_writers = std::string(fused) == "fused";
  }
  const char* chunk = std::getenv("ADALOG_ROW_CHUNK");
  if (chunk != nullptr && *chunk != '\0') {
    char* end = nullptr;
    const long v = std::strtol(chunk, &end, 10);
    ADALOG_CHECK(*end == '\0' && v >= 1 && v <= (1 << 20), "ADALOG_ROW_CHUNK=", chunk,
                 ": expected a row count in 1..1048576");
    o.row_chunk = static_cast<int>(v);
  }
  return o;
}

namespace {

LinearParams WithoutWeight(const LinearParams& l) {
  LinearParams o;
  o.in = l.in;
  o.out = l.out;
  o.bias = l.bias;
  return o;
}

// Validates `src` and copies everything but the Linear / patch-embed weights (packed codes
// replace them; copying ~4 bytes per weight only to drop it would raise the peak memory).
VitModel Skeleton(const VitModel& src) {
  ValidateVitModel(src);
  VitModel m;
  m.name = src.name;
  m.style = src.style;
  m.embed.in_channels = src.embed.in_channels;
  m.embed.image_h = src.embed.image_h;
  m.embed.image_w = src.embed.image_w;
  m.embed.patch = src.embed.patch;
  m.embed.dim = src.embed.dim;
  m.embed.bias = src.embed.bias;
  m.dim = src.dim;
  m.has_cls_token = src.has_cls_token;
  m.has_dist_token = src.has_dist_token;
  m.cls_token = src.cls_token;
  m.dist_token = src.dist_token;
  m.pos_mode = src.pos_mode;
  m.pos_embed = src.pos_embed;
  for (const BlockParams& b : src.blocks) {
    BlockParams o;
    o.ln1 = b.ln1;
    o.qkv = WithoutWeight(b.qkv);
    o.heads = b.heads;
    o.attn_scale = b.attn_scale;
    o.proj = WithoutWeight(b.proj);
    o.ln2 = b.ln2;
    o.fc1 = WithoutWeight(b.fc1);
    o.gelu = b.gelu;
    o.fc2 = WithoutWeight(b.fc2);
    o.window_size = b.window_size;
    o.shift_size = b.shift_size;
    m.blocks.push_back(std::move(o));
  }
  m.norm = src.norm;
  m.pooling = src.pooling;
  m.head = WithoutWeight(src.head);
  m.head_dist = WithoutWeight(src.head_dist);
  m.preprocess = src.preprocess;
  return m;
}

}  // namespace

struct ExecutorInt::Impl {
  VitModel m;  // the model's FP32 parts without the Linear / patch-embed weights (Skeleton)
  int max_batch, threads;
  IsaLevel cap;
  IntPathOptions io;
  const FloatKernels& fk;
  intk::QgemmImpl qimpl;
  int D, T, P, pre, heads, hd, F, C, ps, H, W, classes, patch_k;

  std::vector<BlockInt> blocks;
  std::optional<intk::VectorUniformEncoder> head_in, head_dist_in;
  intk::QLinear head, head_dist;

  // Patch embedding: oneDNN f32 matmul for one image (M = P), run once per image.
  dnnl::engine eng{dnnl::engine::kind::cpu, 0};
  dnnl::stream strm{eng};
  std::vector<float> embed_w_hat;
  dnnl::primitive embed_prim;
  memory embed_src, embed_dst, embed_wei, embed_bias;
  std::unordered_map<int, memory> embed_args;
  std::unique_ptr<void, FreeDeleter> embed_scratch;
  std::string embed_impl;

  // Workspace.
  std::unique_ptr<void, FreeDeleter> ws;
  size_t ws_bytes = 0;
  float *x, *ln, *qkvf, *merged, *lin_out, *hidden, *patches, *embed_out, *pooled, *pooled_dist,
      *logits, *logits_dist;
  uint8_t *acodes, *qkvc, *hcodes;
  std::vector<AttnThread> attn_threads;
  std::vector<intk::LogScratch> row_scratch;  // fc2 LogMatmul, per thread, relative rows
  int max_chunk_rows = 0;  // rows of the largest row chunk (row_chunk or fewer)
  int row_chunk = 1;  // IntPathOptions::row_chunk
  std::string description;
  Fp32Observer* observer = nullptr;
  std::unique_ptr<OpProfile> prof;  // ADALOG_PROFILE=1

  void Mark(int t, OpProfile::Op op) {
    if (prof) prof->Mark(t, op);
  }
  void StartThread(int t) {
    if (prof) prof->Start(t);
  }
  // Runs f() (a parallel region or a serial step) and adds its wall time to region g.
  template <typename F>
  void Region(OpProfile::Region g, const F& f) {
    if (!prof) {
      f();
      return;
    }
    const int64_t t0 = OpProfile::Now();
    f();
    prof->region_ns[g] += OpProfile::Now() - t0;
    prof->region_calls[g] += 1;
  }

  Impl(const VitModel& src, const QuantPlan& plan, const ExecutorOptions& o,
       const IntPathOptions& iopt)
      : m(Skeleton(src)),
        max_batch(o.max_batch),
        threads(o.num_threads > 0 ? o.num_threads : omp_get_max_threads()),
        cap(o.isa_cap),
        io(iopt),
        fk(SelectFloatKernels(o.isa_cap)),
        qimpl(intk::SelectQgemmImpl(o.isa_cap)) {
    ADALOG_CHECK(max_batch >= 1 && max_batch <= 1024, "executor: max_batch ", max_batch,
                 " out of range 1..1024");
    ADALOG_CHECK(o.num_threads >= 0 && o.num_threads <= 1024, "executor: num_threads ",
                 o.num_threads, " out of range 0..1024");
    row_chunk = iopt.row_chunk;
    ADALOG_CHECK(row_chunk >= 1, "executor: row_chunk ", row_chunk, " must be >= 1");
    ADALOG_CHECK(plan.blocks.size() == m.blocks.size(), "quantized model: the plan has ",
                 plan.blocks.size(), " blocks, the model ", m.blocks.size());
    D = m.dim;
    T = m.num_tokens();
    P = m.embed.num_patches();
    pre = m.num_prefix_tokens();
    heads = m.blocks[0].heads;
    F = 0;
    for (const BlockParams& b : m.blocks) {
      ADALOG_CHECK(b.heads == heads, "executor: blocks with different head counts (", b.heads,
                   " vs ", heads, ") are not supported");
      F = std::max(F, b.fc1.out);
    }
    hd = D / heads;
    C = m.embed.in_channels;
    ps = m.embed.patch;
    H = m.embed.image_h;
    W = m.embed.image_w;
    classes = m.num_classes();
    patch_k = C * ps * ps;
    ADALOG_CHECK(T <= intk::kMaxSoftmaxRow && T <= intk::kMaxK, "integer path: ", T,
                 " tokens exceed the kernels' limit ", intk::kMaxK);
    for (size_t b = 0; b < m.blocks.size(); ++b) PrepareBlock(plan, src.blocks[b], b);
    for (BlockInt& b : blocks) {  // after the last push_back: points into b.q / b.k / b.v
      std::vector<const intk::VectorUniformEncoder*> seg;
      for (const auto* part : {&b.q, &b.k, &b.v}) {
        for (const intk::VectorUniformEncoder& e : *part) seg.push_back(&e);
      }
      b.qkv_codes = intk::SegmentedUniformEncoder(seg, std::vector<int>(seg.size(), hd));
    }
    head = PrepareLinear(src.head, plan.head, "head", &head_in, cap);
    if (m.pooling == Pooling::kClsDistAvg) {
      head_dist = PrepareLinear(src.head_dist, plan.head_dist, "head_dist", &head_dist_in, cap);
    }
    AllocateWorkspace();
    PreparePatchEmbed(plan, src.embed.weight);
    PrepareThreads();
    Describe(plan);
    const char* pe = std::getenv("ADALOG_PROFILE");
    if (pe != nullptr && std::string(pe) == "1") {
      prof = std::make_unique<OpProfile>();
      prof->th.resize(static_cast<size_t>(threads));
    }
  }
  ~Impl() {
    if (prof) prof->Print(threads, max_batch);
  }

  // mb: the source model's block (with its FP32 / dequantized weights).
  void PrepareBlock(const QuantPlan& plan, const BlockParams& mb, size_t bi) {
    const BlockQuant& bq = plan.blocks[bi];
    const std::string pre_s = "block " + std::to_string(bi) + " ";
    BlockInt b;
    b.qkv = PrepareLinear(mb.qkv, bq.qkv, pre_s + "qkv", &b.qkv_in, cap);
    b.proj = PrepareLinear(mb.proj, bq.proj, pre_s + "proj", &b.proj_in, cap);
    b.fc1 = PrepareLinear(mb.fc1, bq.fc1, pre_s + "fc1", &b.fc1_in, cap);
    b.q = HeadInputs(bq.attn.q, heads, pre_s + "q", cap);
    b.k = HeadInputs(bq.attn.k, heads, pre_s + "k", cap);
    b.v = HeadInputs(bq.attn.v, heads, pre_s + "v", cap);
    for (int h = 0; h < heads; ++h) {
      b.alpha_qk.push_back(bq.attn.q.scales[h] * bq.attn.k.scales[h] * mb.attn_scale);
    }
    // Softmax -> attn@V.
    const ActQuant& pq = bq.attn.probs;
    const std::string sm = pre_s + "softmax (attn@v input)";
    if (pq.kind == ActQuant::Kind::kLog) {
      if (pq.shift != 0.f) Unsupported("a shifted log quantizer", sm);
      b.probs_log = true;
      b.probs_tables = IntegerLogTables(pq.log, sm);
      if (io.fused_log_writers) {
        b.softmax_writer.emplace(intk::MakeLogCodeWriter(pq.log, 0.f));
      } else {
        b.probs_encoder.emplace(LogQuantizer(pq.log), cap);
      }
      for (int h = 0; h < heads; ++h) {
        b.alpha_av.push_back(static_cast<float>(static_cast<double>(pq.log.scale) *
                                                bq.attn.v.scales[h] / b.probs_tables.D));
      }
    } else {
      b.probs_log = false;
      b.probs_uniform.emplace(UniformInput(pq, sm, cap));
      for (int h = 0; h < heads; ++h) {
        b.alpha_av.push_back(pq.uniform.params.scale * bq.attn.v.scales[h]);
      }
    }
    // GELU -> fc2.
    const ActQuant& gq = bq.fc2.input;
    const std::string f2 = pre_s + "fc2";
    if (gq.kind == ActQuant::Kind::kLog) {
      b.gelu_log = true;
      const AdaLogTables t = IntegerLogTables(gq.log, f2 + " input");
      if (mb.gelu == GeluKind::kErf && io.fused_log_writers) {
        b.gelu_writer.emplace(intk::MakeLogCodeWriter(gq.log, gq.shift));
      } else {
        b.gelu_encoder.emplace(ShiftLogQuantizer(gq.log, gq.shift, gq.shift_folded), cap);
      }
      const WeightCodes wc = EncodeWeight(bq.fc2.weight, mb.fc2.weight, mb.fc2.out, mb.fc2.in, f2);
      ADALOG_CHECK(mb.fc2.in <= intk::kMaxK, "integer path: ", f2, " has K = ", mb.fc2.in, " > ",
                   intk::kMaxK);
      std::vector<float> alpha(static_cast<size_t>(mb.fc2.out));
      for (int o = 0; o < mb.fc2.out; ++o) {
        alpha[o] = static_cast<float>(static_cast<double>(gq.log.scale) * wc.s[o] / t.D);
      }
      // The simulated path computes fc2(Q(x + shift) - shift) unless the shift is folded; fold
      // it here the same way calibration does (quant's FoldShiftIntoBias over W_hat).
      std::vector<float> bias = mb.fc2.bias;
      if (!gq.shift_folded && gq.shift != 0.f) {
        bias = FoldShiftIntoBias(wc.w_hat.data(), mb.fc2.out, mb.fc2.in, mb.fc2.bias.data(),
                                 gq.shift);
      }
      b.fc2_log = intk::PrepareLogMatmul(io.fc2_design, t, wc.u.data(), mb.fc2.in, mb.fc2.out,
                                         mb.fc2.in, wc.z.data(), alpha.data(), bias.data());
    } else {
      b.gelu_log = false;
      b.fc2_uniform = PrepareLinear(mb.fc2, bq.fc2, f2, &b.fc2_in, cap);
    }
    blocks.push_back(std::move(b));
  }

  void AllocateWorkspace() {
    const size_t R = static_cast<size_t>(max_batch) * T;
    const size_t B = static_cast<size_t>(max_batch);
    const size_t fsizes[] = {R * D,     R * D,     R * 3 * D, R * D,     R * D,     R * F,
                             B * P * patch_k,      B * P * D, B * D,     B * D,
                             B * classes,          B * classes};
    float** fviews[] = {&x,       &ln,        &qkvf,   &merged,      &lin_out, &hidden,
                        &patches, &embed_out, &pooled, &pooled_dist, &logits,  &logits_dist};
    const size_t bsizes[] = {R * std::max(D, F), R * 3 * D, R * F};
    uint8_t** bviews[] = {&acodes, &qkvc, &hcodes};
    static_assert(sizeof(fsizes) / sizeof(fsizes[0]) == sizeof(fviews) / sizeof(fviews[0]), "");
    static_assert(sizeof(bsizes) / sizeof(bsizes[0]) == sizeof(bviews) / sizeof(bviews[0]), "");
    size_t total = 0;
    for (size_t s : fsizes) total += Align64(s * sizeof(float));
    for (size_t s : bsizes) total += Align64(s);
    ws_bytes = total;
    ws.reset(AlignedAlloc(ws_bytes));
    std::memset(ws.get(), 0, ws_bytes);
    char* base = static_cast<char*>(ws.get());
    size_t off = 0;
    for (size_t i = 0; i < sizeof(fsizes) / sizeof(fsizes[0]); ++i) {
      *fviews[i] = reinterpret_cast<float*>(base + off);
      off += Align64(fsizes[i] * sizeof(float));
    }
    for (size_t i = 0; i < sizeof(bsizes) / sizeof(bsizes[0]); ++i) {
      *bviews[i] = reinterpret_cast<uint8_t*>(base + off);
      off += Align64(bsizes[i]);
    }
  }

  void PreparePatchEmbed(const QuantPlan& plan, const std::vector<float>& weight) {
    // Dequantized weights, exactly the simulated executor's (fake-quantized) values.
    embed_w_hat = weight;
    if (!plan.patch_embed_weight.scales.empty()) {
      ADALOG_CHECK(plan.patch_embed_weight.num_channels() == D, "quantized model: patch_embed weight has ",
                   plan.patch_embed_weight.num_channels(), " per-channel parameters, expected ", D);
      FakeQuantize(plan.patch_embed_weight, embed_w_hat.data(), {D, patch_k}, embed_w_hat.data());
    }
    ScopedOmpThreads scoped(threads);
    const memory::desc src_md({P, patch_k}, Dt::f32, Tag::ab);
    const memory::desc wei_md({patch_k, D}, Dt::f32, Tag::any);
    const memory::desc bias_md({1, D}, Dt::f32, Tag::ab);
    const memory::desc dst_md({P, D}, Dt::f32, Tag::ab);
    dnnl::primitive_attr attr;
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
    const dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(src_md, wei_md, bias_md, dst_md), attr,
                                          eng);
    embed_prim = dnnl::matmul(pd);
    embed_impl = pd.impl_info_str();
    memory plain({{patch_k, D}, Dt::f32, Tag::ba}, eng, embed_w_hat.data());
    embed_wei = memory(pd.weights_desc(), eng);
    dnnl::reorder(plain, embed_wei).execute(strm, plain, embed_wei);
    strm.wait();
    embed_bias = memory(bias_md, eng, m.embed.bias.data());
    embed_src = memory(pd.src_desc(), eng, patches);
    embed_dst = memory(pd.dst_desc(), eng, embed_out);
    embed_args = {{DNNL_ARG_SRC, embed_src},
                  {DNNL_ARG_WEIGHTS, embed_wei},
                  {DNNL_ARG_BIAS, embed_bias},
                  {DNNL_ARG_DST, embed_dst}};
    const size_t scratch = pd.scratchpad_desc().get_size();
    if (scratch > 0) {
      embed_scratch.reset(AlignedAlloc(scratch));
      embed_args.insert(
          {DNNL_ARG_SCRATCHPAD, memory(pd.scratchpad_desc(), eng, embed_scratch.get())});
    }
    std::vector<float>().swap(embed_w_hat);  // the reordered copy is what runs
  }

  void PrepareThreads() {
    const int R = max_batch * T;
    max_chunk_rows = std::min(R, row_chunk);
    bool any_uniform_probs = false;
    for (const BlockInt& b : blocks) any_uniform_probs |= !b.probs_log;
    const std::vector<uint8_t> zeros(static_cast<size_t>(hd) * T, 0);
    const std::vector<int32_t> zu(static_cast<size_t>(hd), 0);
    const std::vector<float> ones(static_cast<size_t>(hd), 1.f);
    attn_threads.resize(static_cast<size_t>(threads));
    row_scratch.resize(static_cast<size_t>(threads));
    for (int t = 0; t < threads; ++t) {
      AttnThread& a = attn_threads[t];
      a.m1 = intk::MakeMatmul1Workspace(T, hd);
      if (any_uniform_probs) {
        a.m2 = intk::MakeMatmul1Workspace(hd, T);
        a.vt.resize(static_cast<size_t>(hd) * T);
      }
      a.scores.resize(static_cast<size_t>(T) * T);
      a.pcodes.resize(static_cast<size_t>(T) * T);
      for (const BlockInt& b : blocks) {
        if (b.probs_log) {
          a.av.push_back(intk::PrepareLogMatmul(io.attn_design, b.probs_tables, zeros.data(), T, hd,
                                                T, zu.data(), ones.data(), nullptr));
          MergeScratch(intk::MakeLogScratch(a.av.back(), T), &a.av_scratch);
        } else {
          a.av.emplace_back();
        }
        if (b.gelu_log) MergeScratch(intk::MakeLogScratch(b.fc2_log, max_chunk_rows), &row_scratch[t]);
      }
    }
  }

  void Describe(const QuantPlan& plan) {
    std::ostringstream d;
    const char* q = intk::QgemmImplName(qimpl);
    d << "integer executor (W" << plan.weight_bits << "A" << plan.act_bits << ", max batch "
      << max_batch << ", " << threads << " threads, ISA cap " << IsaLevelName(cap) << ")\n";
    d << "  patch_embed: fp32 gemm over dequantized weights (oneDNN " << embed_impl << ")\n";
    d << "  qkv: " << q << "\n";
    d << "  q@k^T: matmul1 per (image, head), " << q << "\n";
    const BlockInt& b0 = blocks[0];
    if (b0.probs_log) {
      d << "  softmax: softmax -> " << LogKindName(plan.blocks[0].attn.probs.log.kind) << " codes ("
        << (b0.softmax_writer ? std::string("logcode writer ") + intk::SoftmaxToLogCodesImplName(cap)
                              : std::string("fp32 softmax ") + fk.name + " + threshold encoder, " + IsaLevelName(b0.probs_encoder->isa()))
        << ")\n";
      d << "  attn@v: " << intk::LogMatmulImplName(io.attn_design, cap) << "\n";
    } else {
      d << "  softmax: fp32 softmax (" << fk.name << ") + uniform encode\n";
      d << "  attn@v: matmul1 (u8 probs x v^T), " << q << "\n";
    }
    d << "  proj: " << q << "\n";
    d << "  fc1: " << q << "\n";
    if (b0.gelu_log) {
      d << "  gelu: gelu -> shift-" << LogKindName(plan.blocks[0].fc2.input.log.kind) << " codes ("
        << (b0.gelu_writer ? std::string("logcode writer ") + intk::GeluToLogCodesImplName(cap)
                           : std::string("fp32 gelu ") + fk.name + " + threshold encoder, " + IsaLevelName(b0.gelu_encoder->isa()))
        << ")\n";
      d << "  fc2: " << intk::LogMatmulImplName(io.fc2_design, cap) << "\n";
    } else {
      d << "  gelu: fp32 gelu (" << fk.name << ") + uniform encode\n";
      d << "  fc2: " << q << "\n";
    }
    d << "  head: " << q << "\n";
    d << "  float islands (layernorm, residual add, pooling): " << fk.name << "\n";
    description = d.str();
    if (DispatchVerbose()) std::fprintf(stderr, "adalog: %s", description.c_str());
  }

  // ---------------------------------------------------------------------------------------------
  // Row-local pieces (rows [r0, r1) of the [batch*T] activations).
  void QkvRows(const BlockInt& b, const BlockParams& mb, int t, int64_t r0, int64_t r1) {
    const int64_t n = r1 - r0;
    fk.layer_norm(x + r0 * D, ln + r0 * D, n, D, mb.ln1.gamma.data(), mb.ln1.beta.data(), mb.ln1.eps);
    Mark(t, OpProfile::kLayerNorm);
    b.qkv_in->Encode(ln + r0 * D, n * D, acodes + r0 * D);
    Mark(t, OpProfile::kEncodeIn);
    intk::RunQLinear(b.qkv, qimpl, acodes, D, static_cast<int>(r0), static_cast<int>(r1), qkvf,
                     3 * D);
    Mark(t, OpProfile::kQkvGemm);
    b.qkv_codes.Encode(qkvf + r0 * 3 * D, 3 * D, n, qkvc + r0 * 3 * D, 3 * D);
    Mark(t, OpProfile::kQkvCodes);
  }

  void ProjRows(const BlockInt& b, int t, int64_t r0, int64_t r1) {
    b.proj_in->Encode(merged + r0 * D, (r1 - r0) * D, acodes + r0 * D);
    Mark(t, OpProfile::kEncodeIn);
    intk::RunQLinear(b.proj, qimpl, acodes, D, static_cast<int>(r0), static_cast<int>(r1), lin_out,
                     D);
    Mark(t, OpProfile::kProjGemm);
  }

  void AddRows(int t, int64_t r0, int64_t r1) {
    fk.add(x + r0 * D, lin_out + r0 * D, x + r0 * D, (r1 - r0) * D);
    Mark(t, OpProfile::kAdd);
  }

  void Fc1Rows(const BlockInt& b, const BlockParams& mb, int t, int64_t r0, int64_t r1) {
    const int64_t n = r1 - r0;
    fk.layer_norm(x + r0 * D, ln + r0 * D, n, D, mb.ln2.gamma.data(), mb.ln2.beta.data(), mb.ln2.eps);
    Mark(t, OpProfile::kLayerNorm);
    b.fc1_in->Encode(ln + r0 * D, n * D, acodes + r0 * D);
    Mark(t, OpProfile::kEncodeIn);
    intk::RunQLinear(b.fc1, qimpl, acodes, D, static_cast<int>(r0), static_cast<int>(r1), hidden,
                     mb.fc1.out);
    Mark(t, OpProfile::kFc1Gemm);
  }

  // GELU -> codes -> fc2 into lin_out. `t` indexes the per-thread LogMatmul scratch.
  void Fc2Rows(const BlockInt& b, const BlockParams& mb, int t, int64_t r0, int64_t r1) {
    const int64_t n = r1 - r0;
    const int hn = mb.fc1.out;
    float* h = hidden + r0 * hn;
    uint8_t* hc = hcodes + r0 * hn;
    if (b.gelu_log) {
      if (b.gelu_writer) {
        intk::GeluToLogCodes(*b.gelu_writer, h, n * hn, hc, cap);
      } else {
        (mb.gelu == GeluKind::kErf ? fk.gelu_erf : fk.gelu_tanh)(h, h, n * hn);
        Mark(t, OpProfile::kGelu);
        b.gelu_encoder->Encode(h, n * hn, hc);
      }
      Mark(t, OpProfile::kGeluEncode);
      intk::RunLogMatmul(b.fc2_log, hc, hn, 0, static_cast<int>(n), lin_out + r0 * D, D,
                         &row_scratch[t], cap);
      Mark(t, OpProfile::kFc2);
    } else {
      (mb.gelu == GeluKind::kErf ? fk.gelu_erf : fk.gelu_tanh)(h, h, n * hn);
      b.fc2_in->Encode(h, n * hn, hc);
      intk::RunQLinear(b.fc2_uniform, qimpl, hcodes, hn, static_cast<int>(r0), static_cast<int>(r1),
                       lin_out, D);
      Mark(t, OpProfile::kFc2);
    }
  }

  // One (image, head) of the attention: q@k^T, softmax, attn@V into merged.
  // Query rows [i0, i1) of one (image, head): every row is computed by the same code whatever
  // the split (q@k^T, softmax, codes and attn@V are row-local; K and V are packed whole).
  void AttentionUnit(size_t bi, int t, int img, int h, int i0, int i1) {
    const BlockInt& b = blocks[bi];
    AttnThread& a = attn_threads[t];
    const int tq = i1 - i0;
    const int64_t ld = 3 * D;
    const uint8_t* qh = qkvc + static_cast<int64_t>(img) * T * ld + h * hd;
    const uint8_t* qc = qh + static_cast<int64_t>(i0) * ld;
    const uint8_t* kc = qh + D;
    const uint8_t* vc = qh + 2 * D;
    float* out = merged + (static_cast<int64_t>(img) * T + i0) * D + h * hd;
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

  // Rows [0, rows) in chunks of row_chunk rows (the last one shorter), claimed dynamically by
  // the threads: f(thread, r0, r1). Small chunks keep a chunk's intermediates (fc1 output, GELU
  // codes, decoded levels) in L2 and let a slowed thread take fewer chunks.
  template <typename F>
  void ParallelRowChunks(int64_t rows, const F& f) {
    const int64_t rc = row_chunk;
    ParallelDynamic((rows + rc - 1) / rc, threads,
                    [&](int t, int64_t c) { f(t, c * rc, std::min(rows, (c + 1) * rc)); });
  }

  void Run(const float* images, int batch, float* out) {
    assert(batch >= 1 && batch <= max_batch);
    ScopedOmpThreads scoped(threads);
    const int64_t rows = static_cast<int64_t>(batch) * T;
    const int gw = m.embed.grid_w();
    if (prof) prof->runs += 1;
    // Patch embedding (FP32): im2col rows (image, patch), columns (c, ky, kx) like OIHW.
    Region(OpProfile::kRegPatch, [&] {
    ParallelChunks(static_cast<int64_t>(batch) * P, threads, [&](int t, int64_t b, int64_t e) {
      StartThread(t);
      for (int64_t r = b; r < e; ++r) {
        const int64_t img = r / P;
        const int p = static_cast<int>(r % P), py = p / gw, px = p % gw;
        const float* src = images + img * C * H * W;
        float* dst = patches + r * patch_k;
        for (int c = 0; c < C; ++c) {
          for (int ky = 0; ky < ps; ++ky) {
            std::memcpy(dst + (c * ps + ky) * ps,
                        src + (static_cast<int64_t>(c) * H + py * ps + ky) * W + px * ps,
                        sizeof(float) * ps);
          }
        }
      }
      Mark(t, OpProfile::kIm2col);
    });
    });
    Region(OpProfile::kRegEmbedGemm, [&] {
      StartThread(0);
      for (int img = 0; img < batch; ++img) {
        embed_src.set_data_handle(patches + static_cast<int64_t>(img) * P * patch_k);
        embed_dst.set_data_handle(embed_out + static_cast<int64_t>(img) * P * D);
        embed_prim.execute(strm, embed_args);
      }
      strm.wait();
      Mark(0, OpProfile::kEmbedGemm);
    });
    // Tokens, position embedding, then block 0's LN1 -> qkv.
    Region(OpProfile::kRegTokens, [&] {
    ParallelRowChunks(rows, [&](int t, int64_t b, int64_t e) {
      StartThread(t);
      exec::AssembleTokenRows(m, fk, embed_out, x, b, e);
      Mark(t, OpProfile::kTokens);
      if (!observer) QkvRows(blocks[0], m.blocks[0], t, b, e);
    });
    });
    if (observer) {
      Observe(TapPoint::kPatchEmbedOut, -1, batch, embed_out, batch * P, D);
      ObservedQkv(0, batch, rows);
    }
    const int bh = batch * heads;
    // Attention units: (image, head, query block). With few (image, head) pairs per thread (batch
    // 1), each pair's query rows are split so that there are at least 4 units per thread for the
    // dynamic balancing (blocks of at least 24 rows).
    const int qsplit = std::max(1, std::min((4 * threads + bh - 1) / bh, T / 24));
    for (size_t bi = 0; bi < m.blocks.size(); ++bi) {
      const BlockInt& b = blocks[bi];
      const BlockParams& mb = m.blocks[bi];
      Region(OpProfile::kRegAttn, [&] {
        ParallelDynamic(int64_t{bh} * qsplit, threads, [&](int t, int64_t u) {
          StartThread(t);
          const int pair = static_cast<int>(u / qsplit), qb = static_cast<int>(u % qsplit);
          AttentionUnit(bi, t, pair / heads, pair % heads, T * qb / qsplit,
                        T * (qb + 1) / qsplit);
        });
      });
      const bool last = bi + 1 == m.blocks.size();
      if (!observer) {
        // Everything up to the next attention is row-local: one parallel region.
        Region(OpProfile::kRegRows, [&] {
          ParallelRowChunks(rows, [&](int t, int64_t r0, int64_t r1) {
            StartThread(t);
            ProjRows(b, t, r0, r1);
            AddRows(t, r0, r1);
            Fc1Rows(b, mb, t, r0, r1);
            Fc2Rows(b, mb, t, r0, r1);
            AddRows(t, r0, r1);
            if (!last) QkvRows(blocks[bi + 1], m.blocks[bi + 1], t, r0, r1);
          });
        });
        continue;
      }
      // Observed: the same row functions, one region per op, tensors reported in between.
      const int bl = static_cast<int>(bi);
      const int ri = static_cast<int>(rows);
      const int hn = mb.fc1.out;
      Observe(TapPoint::kProjIn, bl, batch, merged, ri, D);
      ParallelChunks(rows, threads, [&](int t, int64_t r0, int64_t r1) { ProjRows(b, t, r0, r1); });
      Observe(TapPoint::kProjOut, bl, batch, lin_out, ri, D);
      ParallelChunks(rows, threads, [&](int t, int64_t r0, int64_t r1) {
        AddRows(t, r0, r1);
        Fc1Rows(b, mb, t, r0, r1);
      });
      Observe(TapPoint::kFc1In, bl, batch, ln, ri, D);
      Observe(TapPoint::kFc1Out, bl, batch, hidden, ri, hn);
      ParallelRowChunks(rows, [&](int t, int64_t r0, int64_t r1) { Fc2Rows(b, mb, t, r0, r1); });
      Observe(TapPoint::kFc2Out, bl, batch, lin_out, ri, D);
      ParallelChunks(rows, threads, [&](int t, int64_t r0, int64_t r1) { AddRows(t, r0, r1); });
      if (!last) ObservedQkv(bi + 1, batch, rows);
    }
    // Final norm, pooling, head.
    Region(OpProfile::kRegTail, [&] {
    StartThread(0);
    if (m.pooling == Pooling::kMeanPatches) {
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
    intk::RunQLinear(head, qimpl, acodes, D, 0, batch, logits, classes);
    if (observer) Observe(TapPoint::kHeadOut, -1, batch, logits, batch, classes);
    const int64_t n_logits = static_cast<int64_t>(batch) * classes;
    if (m.pooling == Pooling::kClsDistAvg) {
      if (observer) Observe(TapPoint::kHeadDistIn, -1, batch, pooled_dist, batch, D);
      head_dist_in->Encode(pooled_dist, static_cast<int64_t>(batch) * D, acodes);
      intk::RunQLinear(head_dist, qimpl, acodes, D, 0, batch, logits_dist, classes);
      if (observer) Observe(TapPoint::kHeadDistOut, -1, batch, logits_dist, batch, classes);
      for (int64_t i = 0; i < n_logits; ++i) out[i] = (logits[i] + logits_dist[i]) * 0.5f;
    } else {
      std::memcpy(out, logits, sizeof(float) * n_logits);
    }
    if (observer) Observe(TapPoint::kLogits, -1, batch, out, batch, classes);
    Mark(0, OpProfile::kTail);
    });
  }

  void Observe(TapPoint tap, int block, int batch, const float* data, int rows, int cols) {
    const TapInfo info{tap, block, -1, -1, batch, T};
    observer->OnTensor(info, data, rows, cols);
  }

  void ObservedQkv(size_t bi, int batch, int64_t rows) {
    ParallelChunks(rows, threads, [&](int t, int64_t r0, int64_t r1) {
      QkvRows(blocks[bi], m.blocks[bi], t, r0, r1);
    });
    Observe(TapPoint::kQkvIn, static_cast<int>(bi), batch, ln, static_cast<int>(rows), D);
    Observe(TapPoint::kQkvOut, static_cast<int>(bi), batch, qkvf, static_cast<int>(rows), 3 * D);
  }
};

ExecutorInt::ExecutorInt(const QuantizedModel& qm, const ExecutorOptions& options,
                         const IntPathOptions& int_options)
    : ExecutorInt(qm.model, qm.plan, options, int_options) {}
ExecutorInt::ExecutorInt(const VitModel& model, const QuantPlan& plan,
                         const ExecutorOptions& options, const IntPathOptions& int_options) {
  const std::string why = WhyUnsupported(plan, model);
  if (!why.empty()) Fail(why, "; use --simulate");
  impl_ = std::make_unique<Impl>(model, plan, options, int_options);
}

std::string ExecutorInt::WhyUnsupported(const QuantPlan& plan, const VitModel& model) {
  // The prepare steps' order (PrepareBlock, then the heads), so the first reason is the one the
  // constructor would meet. Shape / parameter errors are left to the constructor.
  if (plan.blocks.size() != model.blocks.size()) return "";
  auto why = [](const std::string& quantizer, const std::string& op) {
    return quantizer.empty() ? quantizer
                             : "integer path does not support " + quantizer + " for " + op;
  };
  auto linear = [&](const LinearQuant& lq, const std::string& op) {
    const std::string w = why(UniformInputWhy(lq.input), op + " input");
    return w.empty() ? why(WeightWhy(lq.weight), op) : w;
  };
  for (size_t bi = 0; bi < plan.blocks.size(); ++bi) {
    const BlockQuant& bq = plan.blocks[bi];
    const std::string pre = "block " + std::to_string(bi) + " ";
    std::string w;
    if (!(w = linear(bq.qkv, pre + "qkv")).empty()) return w;
    if (!(w = linear(bq.proj, pre + "proj")).empty()) return w;
    if (!(w = linear(bq.fc1, pre + "fc1")).empty()) return w;
    if (!(w = why(HeadInputsWhy(bq.attn.q), pre + "q")).empty()) return w;
    if (!(w = why(HeadInputsWhy(bq.attn.k), pre + "k")).empty()) return w;
    if (!(w = why(HeadInputsWhy(bq.attn.v), pre + "v")).empty()) return w;
    const ActQuant& pq = bq.attn.probs;
    const std::string sm = pre + "softmax (attn@v input)";
    if (pq.kind == ActQuant::Kind::kLog) {
      if (pq.shift != 0.f) return why("a shifted log quantizer", sm);
      if (!(w = why(LogTablesWhy(pq.log), sm)).empty()) return w;
    } else if (!(w = why(UniformInputWhy(pq), sm)).empty()) {
      return w;
    }
    const ActQuant& gq = bq.fc2.input;
    if (gq.kind == ActQuant::Kind::kLog) {
      if (!(w = why(LogTablesWhy(gq.log), pre + "fc2 input")).empty()) return w;
      if (!(w = why(WeightWhy(bq.fc2.weight), pre + "fc2")).empty()) return w;
    } else if (!(w = linear(bq.fc2, pre + "fc2")).empty()) {
      return w;
    }
  }
  std::string w = linear(plan.head, "head");
  if (w.empty() && model.pooling == Pooling::kClsDistAvg) w = linear(plan.head_dist, "head_dist");
  return w;
}
ExecutorInt::~ExecutorInt() = default;

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
