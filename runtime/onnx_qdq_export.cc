// QuantizedModel -> ONNX QDQ ModelProto (runtime/onnx_qdq_export.h): the graph builder, the
// weight re-encoding and the refusal of quantizers QuantizeLinear cannot express.
#include "runtime/onnx_qdq_export.h"

#include <onnx/onnx_pb.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <map>
#include <utility>

#include "quant/error.h"
#include "quant/uniform.h"
#include "runtime/adalog_runtime.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "onnx_qdq_export.cc writes raw_data in host byte order; ONNX requires little-endian"
#endif

namespace adalog {
namespace {

constexpr int kOpset = 17;  // LayerNormalization (17); per-axis DequantizeLinear of weights (13+)

// Why one activation quantizer cannot be a uint8 QuantizeLinear; "" when it can (or is none).
std::string ActReason(const ActQuant& q) {
  switch (q.kind) {
    case ActQuant::Kind::kNone: return "";
    case ActQuant::Kind::kLog: return std::string(LogKindName(q.log.kind)) + " log quantizer";
    case ActQuant::Kind::kTwin: return "twin-uniform quantizer";
    case ActQuant::Kind::kUniform:
      if (q.uniform.params.mode != UniformMode::kAsymmetric) return "symmetric uniform quantizer";
      if (q.uniform.params.bits != 8) return std::to_string(q.uniform.params.bits) + "-bit uniform quantizer";
      return "";
  }
  return "unknown quantizer kind";
}

std::string HeadReason(const UniformPerHead& q) {
  if (q.scales.empty()) return "";
  if (q.mode != UniformMode::kAsymmetric) return "symmetric uniform quantizer";
  if (q.bits != 8) return std::to_string(q.bits) + "-bit uniform quantizer";
  return "";
}

// Builds the graph: names, initializers and nodes.
class Builder {
 public:
  explicit Builder(onnx::GraphProto* g) : g_(g) {}

  std::string Unique(const std::string& base) {
    const int n = used_[base]++;
    return n == 0 ? base : base + "_" + std::to_string(n);
  }

  onnx::NodeProto* Node(const std::string& op, const std::vector<std::string>& in,
                        const std::vector<std::string>& out, const std::string& name) {
    onnx::NodeProto* n = g_->add_node();
    n->set_op_type(op);
    n->set_name(Unique(name));
    for (const std::string& s : in) n->add_input(s);
    for (const std::string& s : out) n->add_output(s);
    return n;
  }
  // One node with one fresh output named after `name`; returns the output.
  std::string Op(const std::string& op, const std::vector<std::string>& in, const std::string& name) {
    const std::string out = Unique(name);
    Node(op, in, {out}, name);
    return out;
  }

  static void AttrInt(onnx::NodeProto* n, const std::string& k, int64_t v) {
    onnx::AttributeProto* a = n->add_attribute();
    a->set_name(k);
    a->set_type(onnx::AttributeProto::INT);
    a->set_i(v);
  }
  static void AttrFloat(onnx::NodeProto* n, const std::string& k, float v) {
    onnx::AttributeProto* a = n->add_attribute();
    a->set_name(k);
    a->set_type(onnx::AttributeProto::FLOAT);
    a->set_f(v);
  }
  static void AttrInts(onnx::NodeProto* n, const std::string& k, const std::vector<int64_t>& v) {
    onnx::AttributeProto* a = n->add_attribute();
    a->set_name(k);
    a->set_type(onnx::AttributeProto::INTS);
    for (int64_t x : v) a->add_ints(x);
  }

  template <class T>
  std::string Init(const std::string& base, int dtype, const std::vector<int64_t>& dims, const T* data,
                   size_t n) {
    onnx::TensorProto* t = g_->add_initializer();
    const std::string name = Unique(base);
    t->set_name(name);
    t->set_data_type(dtype);
    for (int64_t d : dims) t->add_dims(d);
    t->set_raw_data(std::string(reinterpret_cast<const char*>(data), n * sizeof(T)));
    return name;
  }
  std::string F32(const std::string& base, const std::vector<int64_t>& dims, const std::vector<float>& v) {
    return Init(base, onnx::TensorProto::FLOAT, dims, v.data(), v.size());
  }
  std::string Scalar(const std::string& base, float v) { return F32(base, {}, {v}); }
  std::string I64(const std::string& base, const std::vector<int64_t>& v) {
    return Init(base, onnx::TensorProto::INT64, {static_cast<int64_t>(v.size())}, v.data(), v.size());
  }

 private:
  onnx::GraphProto* g_;
  std::map<std::string, int> used_;
};

class Exporter {
 public:
  Exporter(const QuantizedModel& qm, onnx::GraphProto* g) : qm_(qm), m_(qm.model), b_(g), g_(g) {}

  void Build(QdqExportSummary* s) {
    BuildGraph();
    if (s != nullptr) {
      s->opset = kOpset;
      s->quantize_linear = act_qdq_;
      s->weight_dequantize = weight_dq_;
      s->nodes = g_->node_size();
    }
  }

 private:
  // x -> QuantizeLinear -> DequantizeLinear with one per-tensor (scale, zero point).
  std::string ActQdq(const std::string& x, const ActQuant& q, const std::string& name) {
    if (q.kind == ActQuant::Kind::kNone) return x;
    ADALOG_CHECK(ActReason(q).empty(), "internal: unexportable quantizer at ", name);
    const std::string s = b_.Scalar(name + ".scale", q.uniform.params.scale);
    const uint8_t z = static_cast<uint8_t>(q.uniform.params.zero_point);
    const std::string zp = b_.Init(name + ".zero_point", onnx::TensorProto::UINT8, {}, &z, 1);
    ++act_qdq_;
    const std::string qx = b_.Op("QuantizeLinear", {x, s, zp}, name + ".quantized");
    return b_.Op("DequantizeLinear", {qx, s, zp}, name + ".dequantized");
  }

  // Per-head Q/DQ of x [N, T, heads * hd] (q, k or v before the head split): Split into the
  // heads' hd-wide slices, one per-tensor QuantizeLinear -> DequantizeLinear pair per head with
  // that head's (scale, zero point), Concat back: the same element-wise math as per head on
  // [N, heads, T, hd]. Why not one per-axis pair: ONNX Runtime 1.30.0 fuses a per-axis
  // DequantizeLinear feeding MatMul directly into MatMulIntegerToFloat, whose kernel then rejects
  // the per-channel A zero point at run time; and its per-axis activation Q/DQ is slow (digits
  // b8, ort_bench.js 20 runs: 67 ms with per-axis pairs on [N, T, dim], 19 ms with them removed,
  // ORT FP32 26 ms; bench/RESULTS.md, Session 7).
  std::string HeadQdq(const std::string& x, const UniformPerHead& q, int heads, int hd, const std::string& name) {
    if (q.scales.empty()) return x;
    ADALOG_CHECK(HeadReason(q).empty() && q.num_heads() == heads, "internal: unexportable quantizer at ", name);
    q.Validate();
    std::vector<std::string> parts, deq;
    for (int h = 0; h < heads; ++h) parts.push_back(b_.Unique(name + ".head" + std::to_string(h)));
    Builder::AttrInt(b_.Node("Split", {x, b_.I64(name + ".split", std::vector<int64_t>(heads, hd))}, parts, name + ".split"),
                     "axis", 2);
    for (int h = 0; h < heads; ++h) {
      const std::string hn = name + ".head" + std::to_string(h);
      const std::string s = b_.Scalar(hn + ".scale", q.scales[static_cast<size_t>(h)]);
      const uint8_t z = static_cast<uint8_t>(q.zero_points[static_cast<size_t>(h)]);
      const std::string zp = b_.Init(hn + ".zero_point", onnx::TensorProto::UINT8, {}, &z, 1);
      ++act_qdq_;
      const std::string qx = b_.Op("QuantizeLinear", {parts[static_cast<size_t>(h)], s, zp}, hn + ".quantized");
      deq.push_back(b_.Op("DequantizeLinear", {qx, s, zp}, hn + ".dequantized"));
    }
    const std::string out = b_.Unique(name + ".dequantized");
    Builder::AttrInt(b_.Node("Concat", deq, {out}, name + ".concat"), "axis", 2);
    return out;
  }

  // The weight [out][in] (dequantized values) as codes under `q`; checks that every value is
  // on its row's grid, i.e. that the model and plan belong together.
  std::vector<int8_t> WeightCodes(const UniformPerChannel& q, const std::vector<float>& w, int out, int in,
                                  const std::string& what, std::vector<int8_t>* zps) {
    ADALOG_CHECK(q.num_channels() == out && q.zero_points.size() == q.scales.size(), what, ": the plan has ",
                 q.num_channels(), " per-channel weight parameters, the weight ", out, " rows");
    ADALOG_CHECK(q.mode == UniformMode::kAsymmetric, what, ": symmetric weight quantizers are not exported");
    ADALOG_CHECK(w.size() == static_cast<size_t>(out) * in, what, ": weight size mismatch");
    const int32_t offset = 1 << (q.bits - 1);  // codes 0..2^b-1 -> -2^(b-1)..2^(b-1)-1 fits int8
    std::vector<int8_t> codes(w.size());
    zps->resize(static_cast<size_t>(out));
    for (int o = 0; o < out; ++o) {
      const UniformQuantizer uq(q.channel(o));
      (*zps)[static_cast<size_t>(o)] = static_cast<int8_t>(q.zero_points[static_cast<size_t>(o)] - offset);
      for (int i = 0; i < in; ++i) {
        const size_t k = static_cast<size_t>(o) * in + i;
        const int32_t c = uq.Encode(w[k]);
        const float back = uq.Decode(c);
        ADALOG_CHECK(std::memcmp(&back, &w[k], sizeof(float)) == 0, what, ": weight [", o, "][", i, "] = ", w[k],
                     " is not on its quantization grid (row scale ", q.scales[static_cast<size_t>(o)],
                     "); the model file's weights and plan do not belong together");
        codes[k] = static_cast<int8_t>(c - offset);
      }
    }
    return codes;
  }

  // Linear: x [..., in] -> MatMul(x, DQ(W^T)) + bias. Unquantized weights (empty plan entry)
  // stay FP32.
  std::string Linear(const std::string& x, const LinearParams& p, const UniformPerChannel& q,
                     const std::string& name) {
    std::string w;
    if (q.scales.empty()) {
      std::vector<float> wt(p.weight.size());
      for (int o = 0; o < p.out; ++o)
        for (int i = 0; i < p.in; ++i) wt[static_cast<size_t>(i) * p.out + o] = p.weight[static_cast<size_t>(o) * p.in + i];
      w = b_.F32(name + ".weight", {p.in, p.out}, wt);
    } else {
      std::vector<int8_t> zps;
      const std::vector<int8_t> codes = WeightCodes(q, p.weight, p.out, p.in, name, &zps);
      std::vector<int8_t> ct(codes.size());
      for (int o = 0; o < p.out; ++o)
        for (int i = 0; i < p.in; ++i) ct[static_cast<size_t>(i) * p.out + o] = codes[static_cast<size_t>(o) * p.in + i];
      const std::string wq = b_.Init(name + ".weight_quantized", onnx::TensorProto::INT8, {p.in, p.out}, ct.data(), ct.size());
      const std::string s = b_.F32(name + ".weight_scale", {p.out}, q.scales);
      const std::string zp = b_.Init(name + ".weight_zero_point", onnx::TensorProto::INT8, {p.out}, zps.data(), zps.size());
      onnx::NodeProto* n = b_.Node("DequantizeLinear", {wq, s, zp}, {b_.Unique(name + ".weight")}, name + ".weight_dequantize");
      Builder::AttrInt(n, "axis", 1);
      w = n->output(0);
      ++weight_dq_;
    }
    const std::string y = b_.Op("MatMul", {x, w}, name + ".matmul");
    return b_.Op("Add", {y, b_.F32(name + ".bias", {p.out}, p.bias)}, name + ".out");
  }

  std::string LayerNorm(const std::string& x, const LayerNormParams& p, const std::string& name) {
    const std::string out = b_.Unique(name + ".out");
    onnx::NodeProto* n = b_.Node("LayerNormalization",
                                 {x, b_.F32(name + ".weight", {p.dim}, p.gamma), b_.F32(name + ".bias", {p.dim}, p.beta)},
                                 {out}, name);
    Builder::AttrInt(n, "axis", -1);
    Builder::AttrFloat(n, "epsilon", p.eps);
    return out;
  }

  // The node patterns ORT's Gelu / FastGelu fusions match.
  std::string Gelu(const std::string& x, GeluKind kind, const std::string& name) {
    std::string inner;
    if (kind == GeluKind::kErf) {
      const std::string d = b_.Op("Div", {x, b_.Scalar(name + ".sqrt2", static_cast<float>(std::sqrt(2.0)))}, name + ".div");
      inner = b_.Op("Erf", {d}, name + ".erf");
    } else {
      const std::string x2 = b_.Op("Mul", {x, x}, name + ".x2");
      const std::string x3 = b_.Op("Mul", {x2, x}, name + ".x3");
      const std::string c3 = b_.Op("Mul", {x3, b_.Scalar(name + ".c", 0.044715f)}, name + ".cx3");
      const std::string sum = b_.Op("Add", {x, c3}, name + ".sum");
      const std::string arg =
          b_.Op("Mul", {sum, b_.Scalar(name + ".k", static_cast<float>(std::sqrt(2.0 / 3.14159265358979323846)))}, name + ".arg");
      inner = b_.Op("Tanh", {arg}, name + ".tanh");
    }
    const std::string one = b_.Op("Add", {inner, b_.Scalar(name + ".one", 1.f)}, name + ".add1");
    const std::string xm = b_.Op("Mul", {x, one}, name + ".mulx");
    return b_.Op("Mul", {xm, b_.Scalar(name + ".half", 0.5f)}, name + ".out");
  }

  std::string Transpose(const std::string& x, const std::vector<int64_t>& perm, const std::string& name) {
    const std::string out = b_.Unique(name);
    Builder::AttrInts(b_.Node("Transpose", {x}, {out}, name), "perm", perm);
    return out;
  }

  std::string Block(const std::string& x, size_t bi) {
    const BlockParams& p = m_.blocks[bi];
    const BlockQuant& q = qm_.plan.blocks[bi];
    const std::string pre = "blocks." + std::to_string(bi) + ".";
    const int D = m_.dim, H = p.heads, hd = D / H;
    // Attention.
    const std::string ln1 = LayerNorm(x, p.ln1, pre + "norm1");
    const std::string qkv = Linear(ActQdq(ln1, q.qkv.input, pre + "qkv.input"), p.qkv, q.qkv.weight, pre + "qkv");
    std::vector<std::string> parts{b_.Unique(pre + "q_rows"), b_.Unique(pre + "k_rows"), b_.Unique(pre + "v_rows")};
    Builder::AttrInt(b_.Node("Split", {qkv, b_.I64(pre + "qkv.split", {D, D, D})}, parts, pre + "qkv.split"), "axis", 2);
    const std::string heads_shape = b_.I64(pre + "heads_shape", {0, 0, H, hd});
    auto to_heads = [&](const std::string& t, const std::string& n) {
      return Transpose(b_.Op("Reshape", {t, heads_shape}, pre + n + "_split"), {0, 2, 1, 3}, pre + n);
    };
    const std::string qh = to_heads(HeadQdq(parts[0], q.attn.q, H, hd, pre + "attn.q"), "q");
    const std::string kh = to_heads(HeadQdq(parts[1], q.attn.k, H, hd, pre + "attn.k"), "k");
    const std::string vh = to_heads(HeadQdq(parts[2], q.attn.v, H, hd, pre + "attn.v"), "v");
    const std::string kt = Transpose(kh, {0, 1, 3, 2}, pre + "attn.k_t");
    const std::string scores = b_.Op("MatMul", {qh, kt}, pre + "attn.qk");
    const std::string scaled = b_.Op("Mul", {scores, b_.Scalar(pre + "attn.scale", p.attn_scale)}, pre + "attn.scores");
    const std::string probs_out = b_.Unique(pre + "attn.probs");
    Builder::AttrInt(b_.Node("Softmax", {scaled}, {probs_out}, pre + "attn.softmax"), "axis", -1);
    const std::string probs = ActQdq(probs_out, q.attn.probs, pre + "attn.probs");
    const std::string ctx = b_.Op("MatMul", {probs, vh}, pre + "attn.ctx");
    const std::string merged =
        b_.Op("Reshape", {Transpose(ctx, {0, 2, 1, 3}, pre + "attn.ctx_t"), b_.I64(pre + "merge_shape", {0, 0, D})},
              pre + "attn.merged");
    const std::string attn = Linear(ActQdq(merged, q.proj.input, pre + "proj.input"), p.proj, q.proj.weight, pre + "proj");
    const std::string x1 = b_.Op("Add", {x, attn}, pre + "residual1");
    // MLP.
    const std::string ln2 = LayerNorm(x1, p.ln2, pre + "norm2");
    const std::string h = Linear(ActQdq(ln2, q.fc1.input, pre + "fc1.input"), p.fc1, q.fc1.weight, pre + "fc1");
    const std::string g = Gelu(h, p.gelu, pre + "gelu");
    const std::string y = Linear(ActQdq(g, q.fc2.input, pre + "fc2.input"), p.fc2, q.fc2.weight, pre + "fc2");
    return b_.Op("Add", {x1, y}, pre + "residual2");
  }

  void BuildGraph() {
    const PatchEmbedParams& e = m_.embed;
    const int D = m_.dim, P = e.num_patches();
    g_->set_name(m_.name.empty() ? "adalog_qdq" : m_.name + "_qdq");
    onnx::ValueInfoProto* in = g_->add_input();
    in->set_name("input");
    {
      onnx::TypeProto_Tensor* t = in->mutable_type()->mutable_tensor_type();
      t->set_elem_type(onnx::TensorProto::FLOAT);
      t->mutable_shape()->add_dim()->set_dim_param("batch");
      for (int d : {e.in_channels, e.image_h, e.image_w}) t->mutable_shape()->add_dim()->set_dim_value(d);
    }
    // Patch embedding: Conv with a per-output-channel DQ weight (the image stays FP32).
    std::string w;
    const UniformPerChannel& pq = qm_.plan.patch_embed_weight;
    const std::vector<int64_t> wdims{D, e.in_channels, e.patch, e.patch};
    if (pq.scales.empty()) {
      w = b_.F32("patch_embed.weight", wdims, e.weight);
    } else {
      std::vector<int8_t> zps;
      const std::vector<int8_t> codes =
          WeightCodes(pq, e.weight, D, e.in_channels * e.patch * e.patch, "patch_embed", &zps);
      const std::string wq = b_.Init("patch_embed.weight_quantized", onnx::TensorProto::INT8, wdims, codes.data(), codes.size());
      const std::string s = b_.F32("patch_embed.weight_scale", {D}, pq.scales);
      const std::string zp = b_.Init("patch_embed.weight_zero_point", onnx::TensorProto::INT8, {D}, zps.data(), zps.size());
      onnx::NodeProto* n = b_.Node("DequantizeLinear", {wq, s, zp}, {b_.Unique("patch_embed.weight")}, "patch_embed.weight_dequantize");
      Builder::AttrInt(n, "axis", 0);
      w = n->output(0);
      ++weight_dq_;
    }
    const std::string conv = b_.Unique("patch_embed.conv");
    onnx::NodeProto* cn = b_.Node("Conv", {"input", w, b_.F32("patch_embed.bias", {D}, e.bias)}, {conv}, "patch_embed.conv");
    Builder::AttrInts(cn, "kernel_shape", {e.patch, e.patch});
    Builder::AttrInts(cn, "strides", {e.patch, e.patch});
    const std::string flat = b_.Op("Reshape", {conv, b_.I64("patch_embed.flat_shape", {0, D, -1})}, "patch_embed.flat");
    std::string patches = Transpose(flat, {0, 2, 1}, "patch_embed.tokens");  // [N, P, D]
    const bool has_pos = !m_.pos_embed.empty();
    if (has_pos && m_.pos_mode == PosEmbedMode::kPatchesOnly) {
      patches = b_.Op("Add", {patches, b_.F32("pos_embed", {1, P, D}, m_.pos_embed)}, "pos_embed.add");
    }
    std::string x = patches;
    if (m_.num_prefix_tokens() > 0) {
      // Prefix tokens broadcast to the batch: Expand([1,1,D], [N,1,D]).
      const std::string shape = b_.Op("Shape", {"input"}, "batch.shape");
      const std::string n = b_.Op("Slice", {shape, b_.I64("batch.start", {0}), b_.I64("batch.end", {1})}, "batch.n");
      const std::string tok_shape = b_.Unique("prefix.shape");
      Builder::AttrInt(b_.Node("Concat", {n, b_.I64("prefix.shape_tail", {1, D})}, {tok_shape}, "prefix.shape"), "axis", 0);
      std::vector<std::string> cat;
      if (m_.has_cls_token) cat.push_back(b_.Op("Expand", {b_.F32("cls_token", {1, 1, D}, m_.cls_token), tok_shape}, "cls_token.expand"));
      if (m_.has_dist_token) cat.push_back(b_.Op("Expand", {b_.F32("dist_token", {1, 1, D}, m_.dist_token), tok_shape}, "dist_token.expand"));
      cat.push_back(patches);
      x = b_.Unique("tokens");
      Builder::AttrInt(b_.Node("Concat", cat, {x}, "tokens"), "axis", 1);
    }
    if (has_pos && m_.pos_mode == PosEmbedMode::kAfterPrefix) {
      x = b_.Op("Add", {x, b_.F32("pos_embed", {1, m_.num_tokens(), D}, m_.pos_embed)}, "pos_embed.add");
    }
    for (size_t bi = 0; bi < m_.blocks.size(); ++bi) x = Block(x, bi);
    // Head: pooling, final norm, the quantized head Linear(s).
    std::string pooled, pooled_dist;
    if (m_.pooling == Pooling::kMeanPatches) {
      const std::string ln = LayerNorm(x, m_.norm, "norm");
      const std::string pt = b_.Op("Slice", {ln, b_.I64("pool.start", {m_.num_prefix_tokens()}),
                                             b_.I64("pool.end", {m_.num_tokens()}), b_.I64("pool.axis", {1})},
                                   "pool.patches");
      pooled = b_.Unique("pool.mean");
      onnx::NodeProto* r = b_.Node("ReduceMean", {pt}, {pooled}, "pool.mean");
      Builder::AttrInts(r, "axes", {1});
      Builder::AttrInt(r, "keepdims", 0);
    } else {
      auto pick = [&](int64_t t, const std::string& name) {
        const int64_t idx = t;
        const std::string i = b_.Init(name + ".index", onnx::TensorProto::INT64, {}, &idx, 1);
        const std::string out = b_.Unique(name);
        Builder::AttrInt(b_.Node("Gather", {x, i}, {out}, name), "axis", 1);
        return LayerNorm(out, m_.norm, name + ".norm");
      };
      pooled = pick(0, "pool.cls");
      if (m_.pooling == Pooling::kClsDistAvg) pooled_dist = pick(1, "pool.dist");
    }
    std::string logits = Linear(ActQdq(pooled, qm_.plan.head.input, "head.input"), m_.head, qm_.plan.head.weight, "head");
    if (m_.pooling == Pooling::kClsDistAvg) {
      const std::string ld = Linear(ActQdq(pooled_dist, qm_.plan.head_dist.input, "head_dist.input"), m_.head_dist,
                                    qm_.plan.head_dist.weight, "head_dist");
      logits = b_.Op("Mul", {b_.Op("Add", {logits, ld}, "heads.sum"), b_.Scalar("heads.half", 0.5f)}, "heads.avg");
    }
    b_.Node("Identity", {logits}, {"logits"}, "output");
    onnx::ValueInfoProto* out = g_->add_output();
    out->set_name("logits");
    onnx::TypeProto_Tensor* t = out->mutable_type()->mutable_tensor_type();
    t->set_elem_type(onnx::TensorProto::FLOAT);
    t->mutable_shape()->add_dim()->set_dim_param("batch");
    t->mutable_shape()->add_dim()->set_dim_value(m_.num_classes());
  }

  const QuantizedModel& qm_;
  const VitModel& m_;
  Builder b_;
  onnx::GraphProto* g_;
  int act_qdq_ = 0;
  int weight_dq_ = 0;
};

}  // namespace

std::vector<QdqUnsupportedTap> QdqUnsupportedTaps(const QuantizedModel& qm) {
  std::vector<QdqUnsupportedTap> out;
  auto add = [&](int block, const std::string& tap, const std::string& reason) {
    if (!reason.empty()) out.push_back({block, tap, reason});
  };
  for (size_t b = 0; b < qm.plan.blocks.size(); ++b) {
    const BlockQuant& q = qm.plan.blocks[b];
    const int bi = static_cast<int>(b);
    add(bi, "qkv input", ActReason(q.qkv.input));
    add(bi, "attention q", HeadReason(q.attn.q));
    add(bi, "attention k", HeadReason(q.attn.k));
    add(bi, "attention probabilities (post-softmax)", ActReason(q.attn.probs));
    add(bi, "attention v", HeadReason(q.attn.v));
    add(bi, "proj input", ActReason(q.proj.input));
    add(bi, "fc1 input", ActReason(q.fc1.input));
    add(bi, "fc2 input (post-GELU)", ActReason(q.fc2.input));
    if (b < qm.model.blocks.size() && qm.model.blocks[b].window_size != 0) {
      add(bi, "attention", "Swin window attention");
    }
  }
  add(-1, "head input", ActReason(qm.plan.head.input));
  if (qm.model.pooling == Pooling::kClsDistAvg) add(-1, "head_dist input", ActReason(qm.plan.head_dist.input));
  return out;
}

std::string DescribeQdqRefusal(const std::vector<QdqUnsupportedTap>& taps) {
  // (tap, reason) -> blocks, in first-seen order; log quantizers listed first.
  std::vector<std::pair<std::string, std::string>> keys;
  std::map<std::pair<std::string, std::string>, std::vector<int>> blocks;
  for (const QdqUnsupportedTap& t : taps) {
    const auto key = std::make_pair(t.tap, t.reason);
    if (blocks.find(key) == blocks.end()) keys.push_back(key);
    blocks[key].push_back(t.block);
  }
  // Log quantizers first, each group in first-seen order (two passes, not std::stable_sort: its
  // temporary buffer of std::pair<string, string> trips ASan's alloc-dealloc-mismatch check with
  // Debian 12's libstdc++ in the CI's sanitizer build).
  std::vector<std::pair<std::string, std::string>> ordered;
  ordered.reserve(keys.size());
  for (const bool want_log : {true, false}) {
    for (const auto& key : keys) {
      if ((key.second.find(" log ") != std::string::npos) == want_log) ordered.push_back(key);
    }
  }
  keys.swap(ordered);
  std::string msg = "the QDQ export writes only 8-bit asymmetric uniform activation quantizers (ONNX "
                    "QuantizeLinear/DequantizeLinear, uint8); this model has " +
                    std::to_string(taps.size()) + " quantizer(s) it cannot express:";
  for (const auto& key : keys) {
    std::string where;
    for (int b : blocks[key]) {
      if (b < 0) continue;
      where += (where.empty() ? "" : ",") + std::to_string(b);
    }
    msg += "\n  " + key.first + ": " + key.second + (where.empty() ? "" : " (blocks " + where + ")");
  }
  msg += "\nre-quantize with uniform quantizers for those taps at 8-bit activations: adalog quantize "
         "MODEL.onnx --calib X.npy --bits W8A8 --softmax uniform --gelu uniform -o OUT.adalog";
  return msg;
}

std::string ExportQdqOnnx(const QuantizedModel& qm, const std::string& producer_note, QdqExportSummary* summary) {
  ValidateVitModel(qm.model);
  ADALOG_CHECK(qm.plan.blocks.size() == qm.model.blocks.size(), "quantized model: the plan has ",
               qm.plan.blocks.size(), " blocks, the model ", qm.model.blocks.size());
  const std::vector<QdqUnsupportedTap> bad = QdqUnsupportedTaps(qm);
  if (!bad.empty()) Fail(DescribeQdqRefusal(bad));
  onnx::ModelProto model;
  model.set_ir_version(8);  // the IR of opset 17 (ONNX 1.12)
  model.set_producer_name("adalog");
  std::string version = RuntimeVersionString();
  while (!version.empty() && (version.back() == '\n' || version.back() == ' ')) version.pop_back();
  version = version.substr(0, version.find('\n'));
  if (version.rfind("adalog ", 0) == 0) version = version.substr(7);
  model.set_producer_version(version);
  model.set_doc_string("adalog QDQ export (runtime/onnx_qdq_export.h) of " + producer_note);
  onnx::OperatorSetIdProto* op = model.add_opset_import();
  op->set_domain("");
  op->set_version(kOpset);
  Exporter ex(qm, model.mutable_graph());
  ex.Build(summary);
  std::string bytes;
  ADALOG_CHECK(model.SerializeToString(&bytes), "QDQ export: protobuf serialization failed (model over 2 GiB?)");
  return bytes;
}

}  // namespace adalog
