// InspectJson: what `adalog inspect` prints, as JSON (same facts, full parameter arrays).
#include "cli/inspect_json.h"

#include <string>

#include "runtime/model_file.h"

namespace adalog::cli {
namespace {

const char* PoolingKey(Pooling p) {
  switch (p) {
    case Pooling::kClsToken:
      return "cls";
    case Pooling::kClsDistAvg:
      return "cls_dist_avg";
    case Pooling::kMeanPatches:
      return "mean";
  }
  return "?";
}

// null for "not quantized" (FP32) parameter sets.
Json PerChannelJson(const UniformPerChannel& q) {
  if (q.scales.empty()) return nullptr;
  return Json{{"kind", "uniform_per_channel"},
              {"bits", q.bits},
              {"scales", q.scales},
              {"zero_points", q.zero_points}};
}

Json PerHeadJson(const UniformPerHead& q) {
  if (q.scales.empty()) return nullptr;
  return Json{{"kind", "uniform_per_head"},
              {"bits", q.bits},
              {"scales", q.scales},
              {"zero_points", q.zero_points}};
}

Json ActJson(const ActQuant& a) {
  switch (a.kind) {
    case ActQuant::Kind::kNone:
      return nullptr;
    case ActQuant::Kind::kUniform:
      return Json{{"kind", "uniform"},
                  {"bits", a.uniform.params.bits},
                  {"scale", a.uniform.params.scale},
                  {"zero_point", a.uniform.params.zero_point}};
    case ActQuant::Kind::kTwin:
      return Json{{"kind", "twin"},
                  {"bits", a.twin.bits},
                  {"scale_pos", a.twin.scale_pos},
                  {"scale_neg", a.twin.scale_neg}};
    case ActQuant::Kind::kLog: {
      Json j{{"kind", LogKindName(a.log.kind)}, {"bits", a.log.bits}, {"scale", a.log.scale}};
      if (a.log.kind == LogKind::kAdaLog) j["q"] = a.log.q;
      j["shift"] = a.shift;
      j["shift_folded"] = a.shift_folded;
      return j;
    }
  }
  return nullptr;
}

Json LinearJson(const LinearQuant& l) {
  return Json{{"weight", PerChannelJson(l.weight)}, {"input", ActJson(l.input)}};
}

Json PlanJson(const QuantPlan& p, const VitModel& m) {
  Json meta = Json::object();
  for (const auto& [k, v] : p.meta) meta[k] = v;
  Json blocks = Json::array();
  for (const BlockQuant& b : p.blocks) {
    blocks.push_back({{"qkv", LinearJson(b.qkv)},
                      {"q", PerHeadJson(b.attn.q)},
                      {"k", PerHeadJson(b.attn.k)},
                      {"probs", ActJson(b.attn.probs)},
                      {"v", PerHeadJson(b.attn.v)},
                      {"proj", LinearJson(b.proj)},
                      {"fc1", LinearJson(b.fc1)},
                      {"fc2", LinearJson(b.fc2)}});
  }
  Json j{{"weight_bits", p.weight_bits},
         {"act_bits", p.act_bits},
         {"softmax_quantizer", SoftmaxQuantizerName(p.softmax_quantizer)},
         {"gelu_quantizer", GeluQuantizerName(p.gelu_quantizer)},
         {"ln_reparam", p.ln_reparam},
         {"fpcs", p.fpcs},
         {"meta", meta},
         {"patch_embed", {{"weight", PerChannelJson(p.patch_embed_weight)}}},
         {"blocks", blocks},
         {"head", LinearJson(p.head)}};
  if (m.pooling == Pooling::kClsDistAvg) j["head_dist"] = LinearJson(p.head_dist);
  return j;
}

}  // namespace

Json InspectJson(const LoadedModel& loaded) {
  const VitModel& m = loaded.model;
  const BlockParams* b0 = m.blocks.empty() ? nullptr : &m.blocks[0];
  Json j{{"model", loaded.path},
         {"format", loaded.format == ModelFormat::kOnnx ? "onnx" : "quantized"}};
  if (loaded.format == ModelFormat::kOnnx) {
    const ImportReport& r = loaded.onnx_report;
    j["onnx"] = {{"ir_version", r.ir_version},
                 {"opset", r.opset},
                 {"producer", r.producer},
                 {"nodes", r.nodes_total},
                 {"compute_nodes", r.nodes_after_folding},
                 {"input_name", r.input_name},
                 {"dynamic_batch", r.dynamic_batch}};
  } else {
    j["file_version"] = loaded.file_version;  // as read: 1, 2, or 3 (Swin)
  }
  j["name"] = m.name;
  j["style"] = m.style;
  j["input"] = {m.embed.in_channels, m.embed.image_h, m.embed.image_w};
  j["patch"] = m.embed.patch;
  j["grid"] = {m.embed.grid_h(), m.embed.grid_w()};
  j["tokens"] = m.num_tokens();
  j["prefix_tokens"] = m.num_prefix_tokens();
  j["dim"] = m.dim;
  j["blocks"] = m.blocks.size();
  j["heads"] = b0 ? b0->heads : 0;
  j["head_dim"] = m.head_dim();
  j["mlp"] = b0 ? b0->fc1.out : 0;
  j["gelu"] = b0 && b0->gelu == GeluKind::kTanh ? "tanh" : "erf";
  j["pooling"] = PoolingKey(m.pooling);
  if (m.is_swin()) {
    // The ViT fields above describe stage 0's first block; the stages say the rest.
    Json stages = Json::array();
    size_t bi = 0;
    for (const SwinStage& st : m.swin.stages) {
      Json windows = Json::array(), shifts = Json::array();
      const int heads = m.blocks[bi].heads;
      for (int k = 0; k < st.depth; ++k, ++bi) {
        windows.push_back(m.blocks[bi].window_size);
        shifts.push_back(m.blocks[bi].shift_size);
      }
      Json s{{"depth", st.depth}, {"dim", st.dim}, {"grid", {st.grid_h, st.grid_w}},
             {"heads", heads}, {"window", windows}, {"shift", shifts}};
      if (st.has_merge) s["merge_to"] = st.merge.reduction.out;
      stages.push_back(s);
    }
    j["swin_stages"] = stages;
  }
  j["classes"] = m.num_classes();
  j["parameters"] = CountParameters(m);
  j["macs_per_image"] = CountMacsPerImage(m);
  j["preprocess"] = {{"resize_shorter", m.preprocess.resize_shorter},
                     {"mean", m.preprocess.mean},
                     {"std", m.preprocess.std}};
  if (loaded.format == ModelFormat::kOnnx) {
    j["notes"] = loaded.onnx_report.notes;
  } else {
    j["plan"] = PlanJson(loaded.plan, m);
  }
  return j;
}

}  // namespace adalog::cli
