// The integer executor's prepare: weight codes, QLinear / LogMatmul packing, encoders, the
// patch-embed primitive, workspace and per-thread scratch, the kernel description; the options.
#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <dnnl.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "quant/error.h"
#include "quant/log_quantizers.h"
#include "quant/uniform.h"
#include "runtime/executor_int_impl.h"
#include "runtime/thread_pool.h"

namespace adalog {
namespace {

using dnnl::memory;
using Tag = memory::format_tag;
using Dt = memory::data_type;

using exec::ScopedOmpThreads;
using intexec::BlockInt;
using intexec::AttnThread;
using intexec::OpProfile;

void* AlignedAlloc(size_t bytes) { return exec::AlignedAlloc(bytes, "integer executor"); }

size_t Align64(size_t bytes) { return (bytes + 63) & ~size_t{63}; }

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

}  // namespace

namespace intexec {

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
intk::QLinear PrepareUniformLinear(const LinearParams& l, const LinearQuant& lq,
                                   const std::string& op,
                                   std::optional<intk::VectorUniformEncoder>* input, IsaLevel cap) {
  return PrepareLinear(l, lq, op, input, cap);
}
}  // namespace intexec

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
    o.rel_bias = b.rel_bias;
    o.attn_mask = b.attn_mask;
    m.blocks.push_back(std::move(o));
  }
  m.swin = src.swin;  // Swin: the norms and each merge's reduction shape (its weight is packed)
  for (SwinStage& st : m.swin.stages) {
    if (st.has_merge) st.merge.reduction = WithoutWeight(st.merge.reduction);
  }
  m.norm = src.norm;
  m.pooling = src.pooling;
  m.head = WithoutWeight(src.head);
  m.head_dist = WithoutWeight(src.head_dist);
  m.preprocess = src.preprocess;
  return m;
}

}  // namespace

ExecutorInt::Impl::Impl(const VitModel& src, const QuantPlan& plan, const ExecutorOptions& o,
                        const IntPathOptions& iopt)
    : model_owner(std::make_shared<const VitModel>(Skeleton(src))),
      m(*model_owner),
      sched(BuildSchedule(m)),
      max_batch(o.max_batch),
      threads(o.num_threads > 0 ? o.num_threads : omp_get_max_threads()),
      cap(o.isa_cap),
      io(iopt),
      fk(SelectFloatKernels(o.isa_cap)),
      qimpl(intk::SelectQgemmImpl(o.isa_cap)),
      weights(std::make_shared<Weights>()),
      blocks(weights->blocks),
      head_in(weights->head_in),
      head_dist_in(weights->head_dist_in),
      head(weights->head),
      head_dist(weights->head_dist) {
  ADALOG_CHECK(max_batch >= 1 && max_batch <= 1024, "executor: max_batch ", max_batch,
               " out of range 1..1024");
  ADALOG_CHECK(o.num_threads >= 0 && o.num_threads <= 1024, "executor: num_threads ",
               o.num_threads, " out of range 0..1024");
  row_chunk = iopt.row_chunk;
  ADALOG_CHECK(row_chunk >= 1, "executor: row_chunk ", row_chunk, " must be >= 1");
  ADALOG_CHECK(plan.blocks.size() == m.blocks.size(), "quantized model: the plan has ",
               plan.blocks.size(), " blocks, the model ", m.blocks.size());
  static_cast<exec::ModelDims&>(*this) = m.is_swin() ? intexec::SwinDims(m) : exec::DimsOf(m);
  ADALOG_CHECK(T <= intk::kMaxSoftmaxRow && T <= intk::kMaxK, "integer path: ", T,
               " tokens exceed the kernels' limit ", intk::kMaxK);
  for (size_t b = 0; b < m.blocks.size(); ++b) PrepareBlock(plan, src.blocks[b], b);
  // After the last push_back: points into b.q / b.k / b.v.
  for (size_t bi = 0; bi < blocks.size(); ++bi) {
    BlockInt& b = blocks[bi];
    std::vector<const intk::VectorUniformEncoder*> seg;
    for (const auto* part : {&b.q, &b.k, &b.v}) {
      for (const intk::VectorUniformEncoder& e : *part) seg.push_back(&e);
    }
    const int block_hd = m.blocks[bi].qkv.in / m.blocks[bi].heads;  // hd for a ViT
    b.qkv_codes = intk::SegmentedUniformEncoder(seg, std::vector<int>(seg.size(), block_hd));
  }
  if (m.is_swin()) PrepareSwin(src, plan);  // the patch merges (after the blocks, as the plan)
  head = PrepareLinear(src.head, plan.head, "head", &head_in, cap);
  if (m.pooling == Pooling::kClsDistAvg) {
    head_dist = PrepareLinear(src.head_dist, plan.head_dist, "head_dist", &head_dist_in, cap);
  }
  AllocateWorkspace();
  PreparePatchEmbed(plan, src.embed.weight);
  PrepareThreads();
  Describe(plan);
  StartProfile();
}

ExecutorInt::Impl::Impl(const Impl& src)
    : exec::ModelDims(src),
      model_owner(src.model_owner),
      m(*model_owner),
      sched(src.sched),
      max_batch(src.max_batch),
      threads(src.threads),
      cap(src.cap),
      io(src.io),
      fk(src.fk),
      qimpl(src.qimpl),
      weights(src.weights),
      blocks(weights->blocks),
      head_in(weights->head_in),
      head_dist_in(weights->head_dist_in),
      head(weights->head),
      head_dist(weights->head_dist),
      eng(src.eng),
      embed_prim(src.embed_prim),
      embed_wei(src.embed_wei),
      embed_bias(src.embed_bias),
      embed_src_md(src.embed_src_md),
      embed_dst_md(src.embed_dst_md),
      embed_scratch_md(src.embed_scratch_md),
      embed_impl(src.embed_impl),
      description(src.description),
      row_chunk(src.row_chunk),
      max_chunk_rows(src.max_chunk_rows),
      swin(src.swin) {
  AllocateWorkspace();
  BindPatchEmbed();
  PrepareThreads();
  StartProfile();
}

void ExecutorInt::Impl::StartProfile() {
  const char* pe = std::getenv("ADALOG_PROFILE");
  if (pe != nullptr && (std::string(pe) == "1" || std::string(pe) == "cpu")) {
    prof = std::make_unique<OpProfile>();
    prof->th.resize(static_cast<size_t>(threads));
    prof->SetCpuTime(std::string(pe) == "cpu");
  }
}

ExecutorInt::Impl::~Impl() {
  if (prof) prof->Print(threads, max_batch);
}

// mb: the source model's block (with its FP32 / dequantized weights).
void ExecutorInt::Impl::PrepareBlock(const QuantPlan& plan, const BlockParams& mb, size_t bi) {
  const BlockQuant& bq = plan.blocks[bi];
  const std::string pre_s = "block " + std::to_string(bi) + " ";
  const int heads = mb.heads;  // the model's for a ViT; the stage's for Swin
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

void ExecutorInt::Impl::AllocateWorkspace() {
  if (swin) {
    AllocateSwinWorkspace();
    return;
  }
  const size_t R = static_cast<size_t>(max_batch) * T;
  const size_t Bn = static_cast<size_t>(max_batch);
  auto view = [this](Buf b) { return &buf[static_cast<int>(b)]; };
  const size_t fsizes[] = {R * D,     R * D,     R * 3 * D, R * D,     R * D,     R * F,
                           Bn * P * patch_k,     Bn * P * D, Bn * D,   Bn * D,
                           Bn * classes,         Bn * classes};
  float** fviews[] = {view(Buf::kX),      view(Buf::kLn),       view(Buf::kQkv),
                      view(Buf::kMerged), view(Buf::kLinOut),   view(Buf::kHidden),
                      &patches,           view(Buf::kEmbedOut), &pooled,
                      &pooled_dist,       &head_logits,         &logits_dist};
  const size_t bsizes[] = {R * std::max(D, F), R * 3 * D, R * F};
  uint8_t** bviews[] = {&acodes, &codes[static_cast<int>(Buf::kQkv)],
                        &codes[static_cast<int>(Buf::kHidden)]};
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

void ExecutorInt::Impl::PreparePatchEmbed(const QuantPlan& plan, const std::vector<float>& weight) {
  // Dequantized weights, exactly the simulated executor's (fake-quantized) values.
  embed_w_hat = weight;
  if (!plan.patch_embed_weight.scales.empty()) {
    ADALOG_CHECK(plan.patch_embed_weight.num_channels() == D, "quantized model: patch_embed weight has ",
                 plan.patch_embed_weight.num_channels(), " per-channel parameters, expected ", D);
    FakeQuantize(plan.patch_embed_weight, embed_w_hat.data(), {D, patch_k}, embed_w_hat.data());
  }
  // One OpenMP thread: the primitive is made for the single thread each image runs on (a
  // primitive made for a team would open its own OpenMP region, beside the pool's threads).
  ScopedOmpThreads scoped(1);
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
  embed_bias = memory(bias_md, eng, const_cast<float*>(m.embed.bias.data()));
  embed_src_md = pd.src_desc();
  embed_dst_md = pd.dst_desc();
  embed_scratch_md = pd.scratchpad_desc();
  std::vector<float>().swap(embed_w_hat);  // the reordered copy is what runs
  BindPatchEmbed();
}

// This executor's views of the patch-embed GEMM, one set per pool thread: a stream, src / dst
// over its workspace, a scratchpad.
void ExecutorInt::Impl::BindPatchEmbed() {
  const size_t scratch = embed_scratch_md.get_size();
  embed_threads.clear();
  embed_threads.resize(static_cast<size_t>(std::min(threads, max_batch)));
  for (EmbedThread& e : embed_threads) {
    e.strm = dnnl::stream(eng);
    e.src = memory(embed_src_md, eng, patches);
    e.dst = memory(embed_dst_md, eng, B(Buf::kEmbedOut));
    e.args = {{DNNL_ARG_SRC, e.src},
              {DNNL_ARG_WEIGHTS, embed_wei},
              {DNNL_ARG_BIAS, embed_bias},
              {DNNL_ARG_DST, e.dst}};
    if (scratch > 0) {
      e.scratch.reset(AlignedAlloc(scratch));
      e.args.insert({DNNL_ARG_SCRATCHPAD, memory(embed_scratch_md, eng, e.scratch.get())});
    }
  }
}

void ExecutorInt::Impl::PrepareThreads() {
  if (swin) {
    PrepareSwinThreads();
    return;
  }
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
        intexec::MergeScratch(intk::MakeLogScratch(a.av.back(), T), &a.av_scratch);
      } else {
        a.av.emplace_back();
      }
      if (b.gelu_log) intexec::MergeScratch(intk::MakeLogScratch(b.fc2_log, max_chunk_rows), &row_scratch[t]);
    }
  }
}

void ExecutorInt::Impl::Describe(const QuantPlan& plan) {
  std::ostringstream d;
  const char* q = intk::QgemmImplName(qimpl);
  d << "integer executor (W" << plan.weight_bits << "A" << plan.act_bits << ", max batch "
    << max_batch << ", " << threads << " threads, ISA cap " << IsaLevelName(cap) << ")\n";
  d << "  threads: " << exec::PoolDescription() << "\n";
  d << "  patch_embed: fp32 gemm over dequantized weights (oneDNN " << embed_impl
    << ", one OpenMP thread per image)\n";
  d << "  qkv: " << q << "\n";
  d << "  q@k^T: matmul1 per (image, head), " << q << "\n";
  const BlockInt& b0 = blocks[0];
  if (b0.probs_log) {
    d << "  softmax: softmax -> " << LogKindName(plan.blocks[0].attn.probs.log.kind) << " codes ("
      << (b0.softmax_writer ? std::string("logcode writer ") + intk::SoftmaxToLogCodesImplName(cap)
                            : std::string("fp32 softmax ") + fk.name + " + threshold encoder (" +
                                  b0.probs_encoder->path() + "), " +
                                  IsaLevelName(b0.probs_encoder->isa()))
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
                         : std::string("fp32 gelu ") + fk.name + " + threshold encoder (" +
                               b0.gelu_encoder->path() + "), " +
                               IsaLevelName(b0.gelu_encoder->isa()))
      << ")\n";
    d << "  fc2: " << intk::LogMatmulImplName(io.fc2_design, cap) << "\n";
  } else {
    d << "  gelu: fp32 gelu (" << fk.name << ") + uniform encode\n";
    d << "  fc2: " << q << "\n";
  }
  if (swin) {
    d << "  window attention: units (image, window, head); relative position bias and shift mask "
         "added to the scores before the softmax; pad / shift / partition as row maps\n";
    d << "  patch merge: fp32 2x2 gather + layernorm, reduction " << q << "\n";
  }
  d << "  head: " << q << "\n";
  d << "  float islands (layernorm, residual add, pooling): " << fk.name << "\n";
  description = d.str();
  if (DispatchVerbose()) std::fprintf(stderr, "adalog: %s", description.c_str());
}

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
  // Swin: the patch merges' reductions, in stage order (PrepareSwin).
  for (size_t i = 0; i < plan.merges.size(); ++i) {
    const std::string w = linear(plan.merges[i], "patch merge " + std::to_string(i) + " reduction");
    if (!w.empty()) return w;
  }
  std::string w = linear(plan.head, "head");
  if (w.empty() && model.pooling == Pooling::kClsDistAvg) w = linear(plan.head_dist, "head_dist");
  return w;
}
ExecutorInt::ExecutorInt(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ExecutorInt::~ExecutorInt() = default;

std::unique_ptr<ExecutorInt> ExecutorInt::Fork() const {
  return std::unique_ptr<ExecutorInt>(new ExecutorInt(std::make_unique<Impl>(*impl_)));
}

}  // namespace adalog
