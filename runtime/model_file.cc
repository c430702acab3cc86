// Quantized model file: writer, validating reader, atomic save (format: docs/model_format.md).
#include "runtime/model_file.h"


#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include "quant/error.h"
#include "quant/uniform.h"
#include "runtime/atomic_write.h"
#include "runtime/swin_model.h"

namespace adalog {
namespace {

constexpr char kMagic[8] = {'A', 'D', 'A', 'L', 'O', 'G', 'Q', '\0'};
constexpr size_t kHeaderBytes = 24;  // magic, version, flags, payload bytes
constexpr size_t kChecksumBytes = 8;
constexpr int64_t kMaxDim = int64_t{1} << 20;  // sanity bound on any single dimension

constexpr uint64_t kFnvPrime = 1099511628211ull;
constexpr uint64_t kFnvOffsetBasis = 14695981039346656037ull;
constexpr uint64_t kV1OffsetBasis = 1469598103934665603ull;  // version 1 files only

uint64_t Fnv1a64From(uint64_t h, const char* p, size_t n) {
  for (size_t i = 0; i < n; ++i) h = (h ^ static_cast<uint8_t>(p[i])) * kFnvPrime;
  return h;
}

}  // namespace

uint64_t Fnv1a64(const char* data, size_t n) { return Fnv1a64From(kFnvOffsetBasis, data, n); }

uint64_t ModelFileChecksum(const char* data, size_t n, uint32_t version) {
  return Fnv1a64From(version == 1 ? kV1OffsetBasis : kFnvOffsetBasis, data, n);
}

namespace {

// ---------------------------------------------------------------------------------------------
class Writer {
 public:
  void U8(uint8_t v) { s_.push_back(static_cast<char>(v)); }
  void U32(uint32_t v) {
    for (int i = 0; i < 4; ++i) U8(static_cast<uint8_t>(v >> (8 * i)));
  }
  void I32(int32_t v) { U32(static_cast<uint32_t>(v)); }
  void U64(uint64_t v) {
    for (int i = 0; i < 8; ++i) U8(static_cast<uint8_t>(v >> (8 * i)));
  }
  void F32(float f) {
    uint32_t b;
    std::memcpy(&b, &f, 4);
    U32(b);
  }
  void Str(const std::string& v) {
    U32(static_cast<uint32_t>(v.size()));
    s_.append(v);
  }
  void F32s(const std::vector<float>& v) {
    U64(v.size());
    for (float f : v) F32(f);
  }
  void Bytes(const std::vector<uint8_t>& v) {
    U64(v.size());
    s_.append(reinterpret_cast<const char*>(v.data()), v.size());
  }
  // Section: tag, zero, u64 length (patched at End), body.
  size_t Begin(const char tag[4]) {
    s_.append(tag, 4);
    U32(0);
    const size_t at = s_.size();
    U64(0);
    return at;
  }
  void End(size_t at) {
    const uint64_t len = s_.size() - (at + 8);
    for (int i = 0; i < 8; ++i) s_[at + static_cast<size_t>(i)] = static_cast<char>(len >> (8 * i));
  }
  std::string& str() { return s_; }

 private:
  std::string s_;
};

class Reader {
 public:
  Reader(const std::string& bytes, size_t begin, size_t end, std::string source)
      : b_(bytes), pos_(begin), end_(end), src_(std::move(source)) {}
  void Need(uint64_t n, const char* what) {
    ADALOG_CHECK(n <= end_ - pos_, "model file '", src_, "': truncated or inconsistent ", ctx_,
                 ": ", what, " needs ", n, " bytes at offset ", pos_, ", ", end_ - pos_, " left");
  }
  uint8_t U8(const char* what) {
    Need(1, what);
    return static_cast<uint8_t>(b_[pos_++]);
  }
  uint32_t U32(const char* what) {
    Need(4, what);
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v |= static_cast<uint32_t>(static_cast<uint8_t>(b_[pos_++])) << (8 * i);
    return v;
  }
  int32_t I32(const char* what) { return static_cast<int32_t>(U32(what)); }
  uint64_t U64(const char* what) {
    Need(8, what);
    uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v |= static_cast<uint64_t>(static_cast<uint8_t>(b_[pos_++])) << (8 * i);
    return v;
  }
  float F32(const char* what) {
    const uint32_t u = U32(what);
    float f;
    std::memcpy(&f, &u, 4);
    return f;
  }
  // A dimension in [lo, kMaxDim].
  int Dim(const char* what, int lo = 1) {
    const int32_t v = I32(what);
    ADALOG_CHECK(v >= lo && v <= kMaxDim, "model file '", src_, "': ", ctx_, ": ", what, " = ", v,
                 " out of range [", lo, ", ", kMaxDim, "]");
    return v;
  }
  std::string Str(const char* what) {
    const uint32_t n = U32(what);
    Need(n, what);
    std::string s = b_.substr(pos_, n);
    pos_ += n;
    return s;
  }
  std::vector<float> F32s(const char* what, uint64_t expect) {
    const uint64_t n = U64(what);
    ADALOG_CHECK(n == expect, "model file '", src_, "': ", ctx_, ": ", what, " has ", n,
                 " values, expected ", expect);
    Need(n * 4, what);
    std::vector<float> v(static_cast<size_t>(n));
    for (auto& f : v) f = F32(what);
    return v;
  }
  std::vector<uint8_t> Bytes(const char* what, uint64_t expect) {
    const uint64_t n = U64(what);
    ADALOG_CHECK(n == expect, "model file '", src_, "': ", ctx_, ": ", what, " has ", n,
                 " bytes, expected ", expect);
    Need(n, what);
    std::vector<uint8_t> v(b_.begin() + static_cast<std::ptrdiff_t>(pos_),
                           b_.begin() + static_cast<std::ptrdiff_t>(pos_ + n));
    pos_ += n;
    return v;
  }
  // Opens a section with the given tag; returns its end offset.
  size_t Begin(const char tag[4], const std::string& ctx) {
    ctx_ = "section '" + std::string(tag, 4) + "'" + (ctx.empty() ? "" : " (" + ctx + ")");
    Need(16, "section header");
    ADALOG_CHECK(b_.compare(pos_, 4, tag, 4) == 0, "model file '", src_, "': expected ", ctx_,
                 " at offset ", pos_, ", found tag '", b_.substr(pos_, 4), "'");
    pos_ += 4;
    U32("section flags");
    const uint64_t len = U64("section length");
    Need(len, "section body");
    return pos_ + static_cast<size_t>(len);
  }
  void End(size_t end) {
    ADALOG_CHECK(pos_ == end, "model file '", src_, "': ", ctx_, " has ",
                 static_cast<int64_t>(end) - static_cast<int64_t>(pos_), " unread bytes");
  }
  void Fail(const std::string& what) { adalog::Fail("model file '", src_, "': ", ctx_, ": ", what); }
  const std::string& source() const { return src_; }
  size_t pos() const { return pos_; }

 private:
  const std::string& b_;
  size_t pos_, end_;
  std::string src_;
  std::string ctx_ = "header";
};

// Packs b-bit codes LSB-first into a little-endian bit stream.
std::vector<uint8_t> PackCodes(const std::vector<UniformCode>& codes, int bits) {
  std::vector<uint8_t> out((codes.size() * static_cast<size_t>(bits) + 7) / 8, 0);
  size_t bit = 0;
  for (UniformCode c : codes) {
    for (int i = 0; i < bits; ++i, ++bit)
      if ((c >> i) & 1) out[bit / 8] = static_cast<uint8_t>(out[bit / 8] | (1u << (bit % 8)));
  }
  return out;
}

std::vector<UniformCode> UnpackCodes(const std::vector<uint8_t>& packed, size_t n, int bits) {
  // LSB-first bit stream (as PackCodes writes it), read through a 64-bit window.
  std::vector<UniformCode> out(n, 0);
  const uint64_t mask = (uint64_t{1} << bits) - 1;
  uint64_t window = 0;
  int have = 0;
  size_t p = 0;
  for (size_t k = 0; k < n; ++k) {
    while (have < bits) {
      window |= static_cast<uint64_t>(packed[p++]) << have;
      have += 8;
    }
    out[k] = static_cast<UniformCode>(window & mask);
    window >>= bits;
    have -= bits;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
void WriteLn(Writer& w, const LayerNormParams& n) {
  w.I32(n.dim);
  w.F32(n.eps);
  w.F32s(n.gamma);
  w.F32s(n.beta);
}

LayerNormParams ReadLn(Reader& r, int dim) {
  LayerNormParams n;
  n.dim = r.Dim("layernorm dim");
  if (n.dim != dim) r.Fail("layernorm dim " + std::to_string(n.dim) + " != model dim " + std::to_string(dim));
  n.eps = r.F32("layernorm eps");
  if (!(n.eps > 0.0f) || !std::isfinite(n.eps)) r.Fail("layernorm eps must be positive and finite");
  n.gamma = r.F32s("layernorm gamma", static_cast<uint64_t>(dim));
  n.beta = r.F32s("layernorm beta", static_cast<uint64_t>(dim));
  return n;
}

void WriteAct(Writer& w, const ActQuant& a) {
  w.U8(static_cast<uint8_t>(a.kind));
  switch (a.kind) {
    case ActQuant::Kind::kNone: break;
    case ActQuant::Kind::kUniform:
      ADALOG_CHECK(a.uniform.params.mode == UniformMode::kAsymmetric,
                   "model file: symmetric uniform activation quantizer; the format stores asymmetric "
                   "ones only");
      w.I32(a.uniform.params.bits);
      w.F32(a.uniform.params.scale);
      w.I32(a.uniform.params.zero_point);
      break;
    case ActQuant::Kind::kLog:
      w.U8(static_cast<uint8_t>(a.log.kind));
      w.I32(a.log.bits);
      w.F32(a.log.scale);
      w.I32(a.log.q);
      w.F32(a.shift);
      w.U8(a.shift_folded ? 1 : 0);
      break;
    case ActQuant::Kind::kTwin:
      w.I32(a.twin.bits);
      w.F32(a.twin.scale_pos);
      w.F32(a.twin.scale_neg);
      break;
  }
}

ActQuant ReadAct(Reader& r) {
  ActQuant a;
  const uint8_t kind = r.U8("activation quantizer kind");
  if (kind > static_cast<uint8_t>(ActQuant::Kind::kTwin)) r.Fail("unknown activation quantizer kind " + std::to_string(kind));
  a.kind = static_cast<ActQuant::Kind>(kind);
  try {
    switch (a.kind) {
      case ActQuant::Kind::kNone: break;
      case ActQuant::Kind::kUniform:
        a.uniform.params.bits = r.I32("uniform bits");
        a.uniform.params.scale = r.F32("uniform scale");
        a.uniform.params.zero_point = r.I32("uniform zero point");
        a.uniform.Validate();
        break;
      case ActQuant::Kind::kLog: {
        const uint8_t lk = r.U8("log kind");
        if (lk > static_cast<uint8_t>(LogKind::kAdaLog)) r.Fail("unknown log quantizer kind " + std::to_string(lk));
        a.log.kind = static_cast<LogKind>(lk);
        a.log.bits = r.I32("log bits");
        a.log.scale = r.F32("log scale");
        a.log.q = r.I32("log q");
        a.shift = r.F32("log shift");
        a.shift_folded = r.U8("log shift folded") != 0;
        a.log.Validate();
        if (!std::isfinite(a.shift)) r.Fail("log shift is not finite");
        break;
      }
      case ActQuant::Kind::kTwin:
        a.twin.bits = r.I32("twin bits");
        a.twin.scale_pos = r.F32("twin scale_pos");
        a.twin.scale_neg = r.F32("twin scale_neg");
        a.twin.Validate();
        break;
    }
  } catch (const Error& e) {
    if (std::string(e.what()).rfind("model file", 0) == 0) throw;
    r.Fail(std::string("activation quantizer: ") + e.what());
  }
  return a;
}

void WriteWeightQuant(Writer& w, const UniformPerChannel& q, const float* weight, int rows, int cols) {
  ADALOG_CHECK(static_cast<int>(q.scales.size()) == rows && static_cast<int>(q.zero_points.size()) == rows,
               "model file: weight quantizer has ", q.scales.size(), " channels for ", rows, " rows");
  // The format has no field for these: refuse rather than load something else.
  ADALOG_CHECK(q.axis == 0, "model file: weight quantizer on axis ", q.axis,
               "; the format stores one (scale, zero point) per output row (axis 0) only");
  ADALOG_CHECK(q.mode == UniformMode::kAsymmetric,
               "model file: symmetric uniform weight quantizer; the format stores asymmetric ones only");
  w.I32(q.bits);
  w.F32s(q.scales);
  for (int32_t z : q.zero_points) w.I32(z);
  std::vector<UniformCode> codes(static_cast<size_t>(rows) * cols);
  // Codes of every row under its own parameters (an invalid plan writes code 0; Parse rejects it).
  for (int o = 0; o < rows; ++o) {
    const UniformParams p = q.channel(o);
    bool ok = true;
    try {
      p.Validate();
    } catch (const Error&) {
      ok = false;
    }
    if (ok) UniformQuantizer(p).Encode(weight + static_cast<int64_t>(o) * cols, cols, codes.data() + static_cast<size_t>(o) * cols);
  }
  w.Bytes(PackCodes(codes, std::max(1, std::min(q.bits, 8))));
}

// Reads a weight quantizer and its codes; returns the dequantized weight.
std::vector<float> ReadWeightQuant(Reader& r, int rows, int cols, UniformPerChannel* q) {
  q->bits = r.I32("weight bits");
  if (q->bits < kMinBits || q->bits > kMaxBits) r.Fail("weight bits " + std::to_string(q->bits) + " outside 2..8");
  q->axis = 0;
  q->scales = r.F32s("weight scales", static_cast<uint64_t>(rows));
  q->zero_points.resize(static_cast<size_t>(rows));
  for (auto& z : q->zero_points) z = r.I32("weight zero point");
  try {
    q->Validate();
  } catch (const Error& e) {
    r.Fail(std::string("weight quantizer: ") + e.what());
  }
  const uint64_t n = static_cast<uint64_t>(rows) * static_cast<uint64_t>(cols);
  const std::vector<uint8_t> packed = r.Bytes("weight codes", (n * static_cast<uint64_t>(q->bits) + 7) / 8);
  const std::vector<UniformCode> codes = UnpackCodes(packed, static_cast<size_t>(n), q->bits);
  std::vector<float> w(static_cast<size_t>(n));
  for (int o = 0; o < rows; ++o) {
    const UniformQuantizer uq(q->channel(o));
    uq.Decode(codes.data() + static_cast<size_t>(o) * cols, cols, w.data() + static_cast<size_t>(o) * cols);
  }
  return w;
}

void WriteLinear(Writer& w, const LinearParams& l, const LinearQuant& q) {
  w.I32(l.in);
  w.I32(l.out);
  WriteWeightQuant(w, q.weight, l.weight.data(), l.out, l.in);
  w.F32s(l.bias);
  WriteAct(w, q.input);
}

void ReadLinear(Reader& r, LinearParams* l, LinearQuant* q, int in, int out) {
  l->in = r.Dim("linear in");
  l->out = r.Dim("linear out");
  if ((in > 0 && l->in != in) || (out > 0 && l->out != out))
    r.Fail("linear shape " + std::to_string(l->out) + "x" + std::to_string(l->in) + " does not match the model");
  l->weight = ReadWeightQuant(r, l->out, l->in, &q->weight);
  l->bias = r.F32s("linear bias", static_cast<uint64_t>(l->out));
  q->input = ReadAct(r);
}

void WriteHeads(Writer& w, const UniformPerHead& h) {
  ADALOG_CHECK(h.mode == UniformMode::kAsymmetric,
               "model file: symmetric per-head quantizer; the format stores asymmetric ones only");
  w.I32(h.bits);
  w.F32s(h.scales);
  for (int32_t z : h.zero_points) w.I32(z);
}

UniformPerHead ReadHeads(Reader& r, int heads, const char* what) {
  UniformPerHead h;
  h.bits = r.I32(what);
  h.scales = r.F32s(what, static_cast<uint64_t>(heads));
  h.zero_points.resize(static_cast<size_t>(heads));
  for (auto& z : h.zero_points) z = r.I32(what);
  try {
    h.Validate();
  } catch (const Error& e) {
    r.Fail(std::string(what) + ": " + e.what());
  }
  return h;
}

// A patch merge's reduction with its plan entry. Flag byte 1: quantized (WriteLinear); 0: the
// plan entry is empty (no weight parameters), the weight stays FP32 and only the input
// quantizer is stored.
void WriteMergeReduction(Writer& w, const LinearParams& l, const LinearQuant& q) {
  if (!q.weight.scales.empty()) {
    w.U8(1);
    WriteLinear(w, l, q);
    return;
  }
  ADALOG_CHECK(q.weight.zero_points.empty(), "model file: patch merge weight quantizer has zero points "
               "but no scales");
  w.U8(0);
  w.I32(l.in);
  w.I32(l.out);
  w.F32s(l.weight);
  w.F32s(l.bias);
  WriteAct(w, q.input);
}

void ReadMergeReduction(Reader& r, LinearParams* l, LinearQuant* q, int in, int out) {
  const uint8_t quantized = r.U8("merge reduction quantized");
  if (quantized > 1) r.Fail("merge reduction quantized flag " + std::to_string(quantized) + " is not 0 or 1");
  if (quantized == 1) {
    ReadLinear(r, l, q, in, out);
    return;
  }
  l->in = r.Dim("linear in");
  l->out = r.Dim("linear out");
  if (l->in != in || l->out != out)
    r.Fail("merge reduction shape " + std::to_string(l->out) + "x" + std::to_string(l->in) +
           " does not match the stages (" + std::to_string(out) + "x" + std::to_string(in) + ")");
  l->weight = r.F32s("merge reduction weight", static_cast<uint64_t>(in) * static_cast<uint64_t>(out));
  l->bias = r.F32s("linear bias", static_cast<uint64_t>(out));
  q->input = ReadAct(r);
}

}  // namespace

// ---------------------------------------------------------------------------------------------
std::string SerializeQuantizedModel(const QuantizedModel& qm) {
  const VitModel& m = qm.model;
  const QuantPlan& p = qm.plan;
  ValidateVitModel(m);
  ADALOG_CHECK(p.blocks.size() == m.blocks.size(), "model file: plan has ", p.blocks.size(),
               " blocks, model ", m.blocks.size());
  const bool swin = m.is_swin();
  size_t num_merges = 0;
  for (const SwinStage& st : m.swin.stages) num_merges += st.has_merge ? 1 : 0;
  ADALOG_CHECK(p.merges.size() == num_merges, "model file: plan has ", p.merges.size(),
               " patch-merge quantizers, model ", num_merges, " patch merges");
  // Swin gets its own version; a ViT keeps writing version 2, byte for byte as before.
  const uint32_t version = swin ? kSwinModelFileVersion : kModelFileVersion;
  Writer w;
  w.str().append(kMagic, 8);
  w.U32(version);
  w.U32(0);
  w.U64(0);  // payload bytes, patched below
  size_t s = w.Begin("MODL");
  w.Str(m.name);
  w.Str(m.style);
  w.I32(m.dim);
  w.I32(static_cast<int32_t>(m.blocks.size()));
  w.I32(m.num_classes());
  w.U8(m.has_cls_token);
  w.U8(m.has_dist_token);
  w.U8(static_cast<uint8_t>(m.pos_mode));
  w.U8(static_cast<uint8_t>(m.pooling));
  w.I32(m.preprocess.resize_shorter);
  for (int c = 0; c < 3; ++c) w.F32(m.preprocess.mean[c]);
  for (int c = 0; c < 3; ++c) w.F32(m.preprocess.std[c]);
  w.U8(static_cast<uint8_t>(m.preprocess.interpolation));
  w.U8(static_cast<uint8_t>(m.preprocess.channel_order));
  w.U8(m.preprocess.known ? 1 : 0);
  w.I32(p.weight_bits);
  w.I32(p.act_bits);
  w.Str(SoftmaxQuantizerName(p.softmax_quantizer));
  w.Str(GeluQuantizerName(p.gelu_quantizer));
  w.U8(p.ln_reparam);
  w.U8(p.fpcs);
  w.End(s);
  s = w.Begin("EMBD");
  const PatchEmbedParams& e = m.embed;
  w.I32(e.in_channels);
  w.I32(e.image_h);
  w.I32(e.image_w);
  w.I32(e.patch);
  WriteWeightQuant(w, p.patch_embed_weight, e.weight.data(), e.dim, e.in_channels * e.patch * e.patch);
  w.F32s(e.bias);
  w.F32s(m.cls_token);
  w.F32s(m.dist_token);
  w.F32s(m.pos_embed);
  w.End(s);
  if (swin) {
    s = w.Begin("SWIN");
    WriteLn(w, m.swin.embed_norm);
    w.I32(static_cast<int32_t>(m.swin.stages.size()));
    for (const SwinStage& st : m.swin.stages) {
      w.I32(st.depth);
      w.I32(st.dim);
      w.I32(st.grid_h);
      w.I32(st.grid_w);
      w.U8(st.has_merge ? 1 : 0);
    }
    size_t mi = 0;
    for (const SwinStage& st : m.swin.stages) {
      if (!st.has_merge) continue;
      WriteLn(w, st.merge.norm);
      WriteMergeReduction(w, st.merge.reduction, p.merges[mi++]);
    }
    w.End(s);
  }
  for (size_t b = 0; b < m.blocks.size(); ++b) {
    const BlockParams& bp = m.blocks[b];
    const BlockQuant& bq = p.blocks[b];
    s = w.Begin("BLCK");
    w.I32(bp.heads);
    w.F32(bp.attn_scale);
    w.U8(static_cast<uint8_t>(bp.gelu));
    w.I32(bp.window_size);
    w.I32(bp.shift_size);
    WriteLn(w, bp.ln1);
    WriteLinear(w, bp.qkv, bq.qkv);
    WriteHeads(w, bq.attn.q);
    WriteHeads(w, bq.attn.k);
    WriteAct(w, bq.attn.probs);
    WriteHeads(w, bq.attn.v);
    WriteLinear(w, bp.proj, bq.proj);
    WriteLn(w, bp.ln2);
    WriteLinear(w, bp.fc1, bq.fc1);
    WriteLinear(w, bp.fc2, bq.fc2);
    if (swin) {
      w.F32s(bp.rel_bias);
      w.F32s(bp.attn_mask);
    }
    w.End(s);
  }
  s = w.Begin("HEAD");
  WriteLn(w, m.norm);
  WriteLinear(w, m.head, p.head);
  if (m.pooling == Pooling::kClsDistAvg) WriteLinear(w, m.head_dist, p.head_dist);
  w.End(s);
  s = w.Begin("META");
  w.U32(static_cast<uint32_t>(p.meta.size()));
  for (const auto& kv : p.meta) {
    w.Str(kv.first);
    w.Str(kv.second);
  }
  w.End(s);
  std::string& out = w.str();
  const uint64_t payload = out.size() - kHeaderBytes;
  for (int i = 0; i < 8; ++i) out[16 + static_cast<size_t>(i)] = static_cast<char>(payload >> (8 * i));
  const uint64_t sum = ModelFileChecksum(out.data(), out.size(), version);
  w.U64(sum);
  return std::move(out);
}

QuantizedModel ParseQuantizedModel(const std::string& bytes, const std::string& source, uint32_t* version_out) {
  ADALOG_CHECK(bytes.size() >= 8 && std::memcmp(bytes.data(), kMagic, 8) == 0, "model file '", source,
               "': not an adalog quantized model (bad magic)");
  ADALOG_CHECK(bytes.size() >= kHeaderBytes + kChecksumBytes, "model file '", source,
               "': truncated header (", bytes.size(), " bytes)");
  Reader h(bytes, 8, kHeaderBytes, source);
  const uint32_t version = h.U32("version");
  ADALOG_CHECK(version >= kOldestModelFileVersion && version <= kNewestModelFileVersion, "model file '",
               source, "': unsupported format version ", version, " (this build reads versions ",
               kOldestModelFileVersion, " to ", kNewestModelFileVersion, ")");
  if (version_out != nullptr) *version_out = version;
  h.U32("flags");
  const uint64_t payload = h.U64("payload bytes");
  ADALOG_CHECK(payload == bytes.size() - kHeaderBytes - kChecksumBytes, "model file '", source,
               "': size mismatch: header declares ", payload, " payload bytes, file has ",
               bytes.size() - kHeaderBytes - kChecksumBytes, " (truncated or extended file)");
  Reader cs(bytes, bytes.size() - kChecksumBytes, bytes.size(), source);
  const uint64_t checksum = cs.U64("checksum");
#ifndef ADALOG_FUZZING
  ADALOG_CHECK(checksum == ModelFileChecksum(bytes.data(), bytes.size() - kChecksumBytes, version),
               "model file '", source, "': checksum mismatch (the file is corrupted)");
#else
  // Fuzz builds only (tests/fuzz/fuzz_model_file.cc): a mutated file would almost never carry a
  // matching checksum, so the checksum is skipped to let the field validators below be fuzzed.
  (void)checksum;
#endif

  Reader r(bytes, kHeaderBytes, bytes.size() - kChecksumBytes, source);
  QuantizedModel qm;
  VitModel& m = qm.model;
  QuantPlan& p = qm.plan;
  size_t end = r.Begin("MODL", "");
  m.name = r.Str("name");
  m.style = r.Str("style");
  m.dim = r.Dim("dim");
  const int depth = r.Dim("depth", 0);
  const int classes = r.Dim("classes");
  m.has_cls_token = r.U8("has_cls_token") != 0;
  m.has_dist_token = r.U8("has_dist_token") != 0;
  const uint8_t pos_mode = r.U8("pos_mode"), pooling = r.U8("pooling");
  if (pos_mode > static_cast<uint8_t>(PosEmbedMode::kPatchesOnly)) r.Fail("unknown pos_mode " + std::to_string(pos_mode));
  if (pooling > static_cast<uint8_t>(Pooling::kMeanPatches)) r.Fail("unknown pooling " + std::to_string(pooling));
  m.pos_mode = static_cast<PosEmbedMode>(pos_mode);
  m.pooling = static_cast<Pooling>(pooling);
  m.preprocess.resize_shorter = r.I32("resize_shorter");
  for (int c = 0; c < 3; ++c) m.preprocess.mean[c] = r.F32("mean");
  for (int c = 0; c < 3; ++c) m.preprocess.std[c] = r.F32("std");
  if (version >= 2) {
    const uint8_t interp = r.U8("interpolation"), order = r.U8("channel_order"), known = r.U8("preprocess_known");
    if (interp > static_cast<uint8_t>(Interpolation::kNearest)) r.Fail("unknown interpolation " + std::to_string(interp));
    if (order > static_cast<uint8_t>(ChannelOrder::kBgr)) r.Fail("unknown channel_order " + std::to_string(order));
    if (known > 1) r.Fail("preprocess_known " + std::to_string(known) + " is not 0 or 1");
    m.preprocess.interpolation = static_cast<Interpolation>(interp);
    m.preprocess.channel_order = static_cast<ChannelOrder>(order);
    m.preprocess.known = known == 1;
  }  // version 1: bilinear, rgb, unknown (its writer stored the importer's ImageNet default)
  if (m.preprocess.resize_shorter < 0 || m.preprocess.resize_shorter > 65536) {
    r.Fail("resize_shorter " + std::to_string(m.preprocess.resize_shorter) + " outside 0..65536");
  }
  for (int c = 0; c < 3; ++c) {
    if (!std::isfinite(m.preprocess.mean[c]) || !(m.preprocess.std[c] > 0.f) || !std::isfinite(m.preprocess.std[c]))
      r.Fail("preprocess mean/std not finite or std not positive");
  }
  p.weight_bits = r.I32("weight_bits");
  p.act_bits = r.I32("act_bits");
  if (p.weight_bits < kMinBits || p.weight_bits > kMaxBits || p.act_bits < kMinBits || p.act_bits > kMaxBits)
    r.Fail("plan bit widths W" + std::to_string(p.weight_bits) + "A" + std::to_string(p.act_bits) + " outside 2..8");
  const std::string softmax_name = r.Str("softmax quantizer"), gelu_name = r.Str("gelu quantizer");
  try {
    p.softmax_quantizer = ParseSoftmaxQuantizer(softmax_name);
    p.gelu_quantizer = ParseGeluQuantizer(gelu_name);
  } catch (const Error& e) {
    r.Fail(e.what());
  }
  p.ln_reparam = r.U8("ln_reparam") != 0;
  p.fpcs = r.U8("fpcs") != 0;
  r.End(end);

  end = r.Begin("EMBD", "");
  PatchEmbedParams& e = m.embed;
  e.in_channels = r.Dim("in_channels");
  e.image_h = r.Dim("image_h");
  e.image_w = r.Dim("image_w");
  e.patch = r.Dim("patch");
  e.dim = m.dim;
  if (e.image_h % e.patch != 0 || e.image_w % e.patch != 0) r.Fail("image size not a multiple of the patch");
  // Products of dimensions are bounded like a single dimension, so the int arithmetic on them
  // below and in the executors cannot overflow (each factor alone may be up to kMaxDim).
  const int64_t pk64 = int64_t{e.in_channels} * e.patch * e.patch;
  if (pk64 > kMaxDim) r.Fail("patch-embed input size " + std::to_string(pk64) + " (channels x patch x patch) out of range");
  const int64_t patches64 = int64_t{e.image_h / e.patch} * (e.image_w / e.patch);
  if (patches64 > kMaxDim) r.Fail("patch count " + std::to_string(patches64) + " out of range");
  const int pk = static_cast<int>(pk64);
  e.weight = ReadWeightQuant(r, e.dim, pk, &p.patch_embed_weight);
  e.bias = r.F32s("patch bias", static_cast<uint64_t>(m.dim));
  m.cls_token = r.F32s("cls token", m.has_cls_token ? static_cast<uint64_t>(m.dim) : 0);
  m.dist_token = r.F32s("dist token", m.has_dist_token ? static_cast<uint64_t>(m.dim) : 0);
  {
    const uint64_t n = r.U64("pos embed");
    const uint64_t rows = m.pos_mode == PosEmbedMode::kAfterPrefix ? static_cast<uint64_t>(m.num_tokens())
                                                                   : static_cast<uint64_t>(e.num_patches());
    if (n != 0 && n != rows * static_cast<uint64_t>(m.dim)) r.Fail("pos embed has " + std::to_string(n) + " values");
    r.Need(n * 4, "pos embed");
    m.pos_embed.resize(static_cast<size_t>(n));
    for (auto& f : m.pos_embed) f = r.F32("pos embed");
  }
  r.End(end);

  // Version 3 is the Swin version: a SWIN section, blocks at their stage's width with rel_bias
  // and attn_mask. Every field is bounded here, before the blocks are read, so no size below is
  // computed from an unchecked value.
  const bool swin = version >= kSwinModelFileVersion;
  std::vector<int> block_stage;  // Swin: the stage of each block
  if (swin) {
    end = r.Begin("SWIN", "");
    if (m.has_cls_token || m.has_dist_token || !m.pos_embed.empty() || m.pooling != Pooling::kMeanPatches)
      r.Fail("a Swin model has no prefix tokens, no position embedding and mean pooling");
    m.swin.embed_norm = ReadLn(r, m.dim);
    const int nstages = r.Dim("stage count");
    if (nstages > depth) r.Fail("stage count " + std::to_string(nstages) + " exceeds the depth " + std::to_string(depth));
    int64_t blocks_in_stages = 0;
    for (int s = 0; s < nstages; ++s) {
      SwinStage& st = m.swin.stages.emplace_back();
      const std::string sp = "stages." + std::to_string(s);
      st.depth = r.Dim("stage depth");
      st.dim = r.Dim("stage dim");
      st.grid_h = r.Dim("stage grid_h");
      st.grid_w = r.Dim("stage grid_w");
      const uint8_t has_merge = r.U8("stage has_merge");
      if (has_merge > 1) r.Fail(sp + " has_merge " + std::to_string(has_merge) + " is not 0 or 1");
      st.has_merge = has_merge == 1;
      blocks_in_stages += st.depth;
      if (blocks_in_stages > depth)
        r.Fail(sp + ": the stages hold more blocks than the depth " + std::to_string(depth));
      if (st.grid_h > 4096 || st.grid_w > 4096)
        r.Fail(sp + " grid " + std::to_string(st.grid_h) + "x" + std::to_string(st.grid_w) + " exceeds 4096");
      if (s == 0 && (st.dim != m.dim || st.grid_h != e.grid_h() || st.grid_w != e.grid_w()))
        r.Fail("stages.0 (dim " + std::to_string(st.dim) + ", grid " + std::to_string(st.grid_h) + "x" +
               std::to_string(st.grid_w) + ") does not match the patch embedding");
      if (s > 0) {
        const SwinStage& pv = m.swin.stages[static_cast<size_t>(s) - 1];
        if (st.grid_h != (pv.grid_h + 1) / 2 || st.grid_w != (pv.grid_w + 1) / 2)
          r.Fail(sp + " grid " + std::to_string(st.grid_h) + "x" + std::to_string(st.grid_w) +
                 " is not the merge of the previous " + std::to_string(pv.grid_h) + "x" + std::to_string(pv.grid_w));
      }
      if (st.has_merge != (s + 1 < nstages))
        r.Fail(sp + (st.has_merge ? " has a patch merge after the last stage" : " has no patch merge"));
      for (int k = 0; k < st.depth; ++k) block_stage.push_back(s);
    }
    if (blocks_in_stages != depth)
      r.Fail("the stages hold " + std::to_string(blocks_in_stages) + " blocks, the depth is " + std::to_string(depth));
    for (int s = 0; s + 1 < nstages; ++s) {
      SwinStage& st = m.swin.stages[static_cast<size_t>(s)];
      const int in = 4 * st.dim, out = m.swin.stages[static_cast<size_t>(s) + 1].dim;
      if (in > kMaxDim) r.Fail("stages." + std::to_string(s) + " merge width 4 x " + std::to_string(st.dim) + " out of range");
      st.merge.norm = ReadLn(r, in);
      ReadMergeReduction(r, &st.merge.reduction, &p.merges.emplace_back(), in, out);
    }
    r.End(end);
  }

  // Blocks are appended as they are read, not sized to `depth` up front: a header declaring up to
  // 2^20 blocks then costs memory and time only for the blocks the file really holds.
  for (int b = 0; b < depth; ++b) {
    BlockParams& bp = m.blocks.emplace_back();
    BlockQuant& bq = p.blocks.emplace_back();
    end = r.Begin("BLCK", "block " + std::to_string(b));
    // A ViT block is m.dim wide; a Swin block its stage's width.
    const SwinStage* st = swin ? &m.swin.stages[static_cast<size_t>(block_stage[static_cast<size_t>(b)])] : nullptr;
    const int d = st ? st->dim : m.dim;
    bp.heads = r.Dim("heads");
    if (d % bp.heads != 0) r.Fail("heads " + std::to_string(bp.heads) + " do not divide the width " + std::to_string(d));
    bp.attn_scale = r.F32("attn_scale");
    const uint8_t gelu = r.U8("gelu");
    if (gelu > static_cast<uint8_t>(GeluKind::kTanh)) r.Fail("unknown gelu kind");
    bp.gelu = static_cast<GeluKind>(gelu);
    bp.window_size = r.Dim("window_size", 0);
    bp.shift_size = r.Dim("shift_size", 0);
    if (swin && (bp.window_size < 1 || bp.window_size > 64 || bp.shift_size >= bp.window_size))
      r.Fail("window_size " + std::to_string(bp.window_size) + " / shift_size " + std::to_string(bp.shift_size) +
             " (a Swin block needs 1 <= window <= 64 and shift < window)");
    bp.ln1 = ReadLn(r, d);
    ReadLinear(r, &bp.qkv, &bq.qkv, d, 3 * d);
    bq.attn.q = ReadHeads(r, bp.heads, "q quantizer");
    bq.attn.k = ReadHeads(r, bp.heads, "k quantizer");
    bq.attn.probs = ReadAct(r);
    bq.attn.v = ReadHeads(r, bp.heads, "v quantizer");
    ReadLinear(r, &bp.proj, &bq.proj, d, d);
    bp.ln2 = ReadLn(r, d);
    ReadLinear(r, &bp.fc1, &bq.fc1, d, 0);
    ReadLinear(r, &bp.fc2, &bq.fc2, bp.fc1.out, d);
    if (swin) {
      // rel_bias [heads][N][N]; attn_mask [windows][N][N] of the padded stage grid, or empty when
      // unshifted. heads <= 2^20, N <= 4096, windows <= 4096^2: the products fit 64 bits.
      const uint64_t n = static_cast<uint64_t>(bp.window_size) * static_cast<uint64_t>(bp.window_size);
      bp.rel_bias = r.F32s("rel_bias", static_cast<uint64_t>(bp.heads) * n * n);
      const uint64_t windows = static_cast<uint64_t>(SwinPadded(st->grid_h, bp.window_size) / bp.window_size) *
                               static_cast<uint64_t>(SwinPadded(st->grid_w, bp.window_size) / bp.window_size);
      bp.attn_mask = r.F32s("attn_mask", bp.shift_size > 0 ? windows * n * n : 0);
    }
    r.End(end);
  }
  end = r.Begin("HEAD", "");
  const int head_dim = swin ? m.swin.stages.back().dim : m.dim;
  m.norm = ReadLn(r, head_dim);
  ReadLinear(r, &m.head, &p.head, head_dim, classes);
  if (m.pooling == Pooling::kClsDistAvg) ReadLinear(r, &m.head_dist, &p.head_dist, m.dim, classes);
  r.End(end);
  end = r.Begin("META", "");
  const uint32_t nmeta = r.U32("meta count");
  for (uint32_t i = 0; i < nmeta; ++i) {
    std::string k = r.Str("meta key");
    p.meta.emplace_back(std::move(k), r.Str("meta value"));
  }
  r.End(end);
  ADALOG_CHECK(r.pos() == bytes.size() - kChecksumBytes, "model file '", source, "': ",
               bytes.size() - kChecksumBytes - r.pos(), " trailing bytes after the last section");
  try {
    ValidateVitModel(m);
  } catch (const Error& err) {
    Fail("model file '", source, "': ", err.what());
  }
  return qm;
}

void SaveQuantizedModel(const QuantizedModel& qm, const std::string& path) {
  WriteFileAtomically(path, SerializeQuantizedModel(qm), "model file");
}

QuantizedModel LoadQuantizedModel(const std::string& path, uint32_t* version) {
  std::ifstream f(path, std::ios::binary);
  ADALOG_CHECK(f.good(), "model file '", path, "': cannot open");
  std::ostringstream ss;
  ss << f.rdbuf();
  return ParseQuantizedModel(ss.str(), path, version);
}

}  // namespace adalog
