// Field-by-field comparator of VitModel / QuantPlan (see model_compare.h).
#include "tests/util/model_compare.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <sstream>
#include <type_traits>
#include <utility>

namespace adalog::test {
namespace {

// ---------------------------------------------------------------------------------------------
// Field counts. NumInitializers<T>() is the largest N for which T{x1, ..., xN} compiles with
// values convertible to anything: the number of fields of the aggregate T (a C array field counts
// once per element, by brace elision). Pinned below so that a new field fails the build here.
struct AnyField {
  template <typename T>
  operator T() const;  // declaration only: used in unevaluated contexts
};

template <typename T, typename... A>
constexpr auto CanInit(int) -> decltype(T{std::declval<A>()...}, true) {
  return true;
}
template <typename T, typename... A>
constexpr bool CanInit(...) {
  return false;
}
template <typename T, typename... A>
constexpr int NumInitializers() {
  if constexpr (sizeof...(A) > 40) {
    return -1;
  } else if constexpr (CanInit<T, A..., AnyField>(0)) {
    return NumInitializers<T, A..., AnyField>();
  } else {
    return static_cast<int>(sizeof...(A));
  }
}

// If one of these fails, a struct gained (or lost) a field: list it in the Diff function below
// (and check that the model file writes and reads it), then update the count.
static_assert(NumInitializers<LinearParams>() == 4, "LinearParams changed: update DiffLinear");
static_assert(NumInitializers<LayerNormParams>() == 4, "LayerNormParams changed: update DiffLn");
static_assert(NumInitializers<PatchEmbedParams>() == 7, "PatchEmbedParams changed: update DiffEmbed");
static_assert(NumInitializers<BlockParams>() == 11, "BlockParams changed: update DiffBlock");
static_assert(NumInitializers<Preprocess>() == 10,
              "Preprocess changed (1 int + 2 float[3] + interpolation, channel order, known): update");
static_assert(NumInitializers<VitModel>() == 16, "VitModel changed: update DiffVitModel");
static_assert(NumInitializers<UniformParams>() == 4, "UniformParams changed: update DiffUniform");
static_assert(NumInitializers<UniformPerTensor>() == 1, "UniformPerTensor changed: update DiffAct");
static_assert(NumInitializers<UniformPerChannel>() == 5, "UniformPerChannel changed: update");
static_assert(NumInitializers<UniformPerHead>() == 4, "UniformPerHead changed: update DiffHeads");
static_assert(NumInitializers<TwinUniformParams>() == 3, "TwinUniformParams changed: update DiffAct");
static_assert(NumInitializers<LogParams>() == 4, "LogParams changed: update DiffAct");
static_assert(NumInitializers<ActQuant>() == 6, "ActQuant changed: update DiffAct");
static_assert(NumInitializers<LinearQuant>() == 2, "LinearQuant changed: update DiffLinearQuant");
static_assert(NumInitializers<AttentionQuant>() == 4, "AttentionQuant changed: update DiffBlockQuant");
static_assert(NumInitializers<BlockQuant>() == 5, "BlockQuant changed: update DiffBlockQuant");
static_assert(NumInitializers<QuantPlan>() == 11, "QuantPlan changed: update DiffQuantPlan");

// ---------------------------------------------------------------------------------------------
class Differ {
 public:
  std::vector<std::string> diffs;

  template <typename T>
  void Scalar(const std::string& path, const T& a, const T& b) {
    if constexpr (std::is_floating_point_v<T>) {
      if (std::memcmp(&a, &b, sizeof(T)) != 0) Add(path, a, b);
    } else if constexpr (std::is_enum_v<T>) {
      if (a != b) Add(path, static_cast<int64_t>(a), static_cast<int64_t>(b));
    } else {
      if (a != b) Add(path, a, b);
    }
  }
  template <typename T>
  void Array(const std::string& path, const std::vector<T>& a, const std::vector<T>& b) {
    if (a.size() != b.size()) {
      Add(path + ".size()", a.size(), b.size());
      return;
    }
    for (size_t i = 0; i < a.size(); ++i) {
      const size_t before = diffs.size();
      Scalar(path + "[" + std::to_string(i) + "]", a[i], b[i]);
      if (diffs.size() != before) return;  // the first differing element only
    }
  }

 private:
  template <typename T>
  void Add(const std::string& path, const T& a, const T& b) {
    std::ostringstream s;
    s.precision(9);
    s << path << ": " << a << " vs " << b;
    diffs.push_back(s.str());
  }
};

void DiffLinear(Differ& d, const std::string& p, const LinearParams& a, const LinearParams& b) {
  d.Scalar(p + ".in", a.in, b.in);
  d.Scalar(p + ".out", a.out, b.out);
  d.Array(p + ".weight", a.weight, b.weight);
  d.Array(p + ".bias", a.bias, b.bias);
}

void DiffLn(Differ& d, const std::string& p, const LayerNormParams& a, const LayerNormParams& b) {
  d.Scalar(p + ".dim", a.dim, b.dim);
  d.Scalar(p + ".eps", a.eps, b.eps);
  d.Array(p + ".gamma", a.gamma, b.gamma);
  d.Array(p + ".beta", a.beta, b.beta);
}

void DiffEmbed(Differ& d, const std::string& p, const PatchEmbedParams& a, const PatchEmbedParams& b) {
  d.Scalar(p + ".in_channels", a.in_channels, b.in_channels);
  d.Scalar(p + ".image_h", a.image_h, b.image_h);
  d.Scalar(p + ".image_w", a.image_w, b.image_w);
  d.Scalar(p + ".patch", a.patch, b.patch);
  d.Scalar(p + ".dim", a.dim, b.dim);
  d.Array(p + ".weight", a.weight, b.weight);
  d.Array(p + ".bias", a.bias, b.bias);
}

void DiffBlock(Differ& d, const std::string& p, const BlockParams& a, const BlockParams& b) {
  DiffLn(d, p + ".ln1", a.ln1, b.ln1);
  DiffLinear(d, p + ".qkv", a.qkv, b.qkv);
  d.Scalar(p + ".heads", a.heads, b.heads);
  d.Scalar(p + ".attn_scale", a.attn_scale, b.attn_scale);
  DiffLinear(d, p + ".proj", a.proj, b.proj);
  DiffLn(d, p + ".ln2", a.ln2, b.ln2);
  DiffLinear(d, p + ".fc1", a.fc1, b.fc1);
  d.Scalar(p + ".gelu", a.gelu, b.gelu);
  DiffLinear(d, p + ".fc2", a.fc2, b.fc2);
  d.Scalar(p + ".window_size", a.window_size, b.window_size);
  d.Scalar(p + ".shift_size", a.shift_size, b.shift_size);
}

void DiffUniform(Differ& d, const std::string& p, const UniformParams& a, const UniformParams& b) {
  d.Scalar(p + ".bits", a.bits, b.bits);
  d.Scalar(p + ".scale", a.scale, b.scale);
  d.Scalar(p + ".zero_point", a.zero_point, b.zero_point);
  d.Scalar(p + ".mode", a.mode, b.mode);
}

void DiffChannels(Differ& d, const std::string& p, const UniformPerChannel& a,
                  const UniformPerChannel& b) {
  d.Scalar(p + ".bits", a.bits, b.bits);
  d.Scalar(p + ".mode", a.mode, b.mode);
  d.Scalar(p + ".axis", a.axis, b.axis);
  d.Array(p + ".scales", a.scales, b.scales);
  d.Array(p + ".zero_points", a.zero_points, b.zero_points);
}

void DiffHeads(Differ& d, const std::string& p, const UniformPerHead& a, const UniformPerHead& b) {
  d.Scalar(p + ".bits", a.bits, b.bits);
  d.Scalar(p + ".mode", a.mode, b.mode);
  d.Array(p + ".scales", a.scales, b.scales);
  d.Array(p + ".zero_points", a.zero_points, b.zero_points);
}

// Every member, whatever the kind: a plan whose inactive members hold non-default values is a
// different plan in memory even where no executor reads them.
void DiffAct(Differ& d, const std::string& p, const ActQuant& a, const ActQuant& b) {
  d.Scalar(p + ".kind", a.kind, b.kind);
  DiffUniform(d, p + ".uniform.params", a.uniform.params, b.uniform.params);
  d.Scalar(p + ".log.kind", a.log.kind, b.log.kind);
  d.Scalar(p + ".log.bits", a.log.bits, b.log.bits);
  d.Scalar(p + ".log.scale", a.log.scale, b.log.scale);
  d.Scalar(p + ".log.q", a.log.q, b.log.q);
  d.Scalar(p + ".shift", a.shift, b.shift);
  d.Scalar(p + ".shift_folded", a.shift_folded, b.shift_folded);
  d.Scalar(p + ".twin.bits", a.twin.bits, b.twin.bits);
  d.Scalar(p + ".twin.scale_pos", a.twin.scale_pos, b.twin.scale_pos);
  d.Scalar(p + ".twin.scale_neg", a.twin.scale_neg, b.twin.scale_neg);
}

void DiffLinearQuant(Differ& d, const std::string& p, const LinearQuant& a, const LinearQuant& b) {
  DiffChannels(d, p + ".weight", a.weight, b.weight);
  DiffAct(d, p + ".input", a.input, b.input);
}

void DiffBlockQuant(Differ& d, const std::string& p, const BlockQuant& a, const BlockQuant& b) {
  DiffLinearQuant(d, p + ".qkv", a.qkv, b.qkv);
  DiffHeads(d, p + ".attn.q", a.attn.q, b.attn.q);
  DiffHeads(d, p + ".attn.k", a.attn.k, b.attn.k);
  DiffAct(d, p + ".attn.probs", a.attn.probs, b.attn.probs);
  DiffHeads(d, p + ".attn.v", a.attn.v, b.attn.v);
  DiffLinearQuant(d, p + ".proj", a.proj, b.proj);
  DiffLinearQuant(d, p + ".fc1", a.fc1, b.fc1);
  DiffLinearQuant(d, p + ".fc2", a.fc2, b.fc2);
}

void Report(const std::vector<std::string>& diffs, const std::string& what, const char* type) {
  if (diffs.empty()) return;
  std::ostringstream s;
  s << what << ": " << diffs.size() << " field(s) of the " << type << " differ:";
  for (size_t i = 0; i < diffs.size() && i < 20; ++i) s << "\n  " << diffs[i];
  ADD_FAILURE() << s.str();
}

}  // namespace

std::vector<std::string> DiffVitModel(const VitModel& a, const VitModel& b) {
  Differ d;
  d.Scalar("name", a.name, b.name);
  d.Scalar("style", a.style, b.style);
  DiffEmbed(d, "embed", a.embed, b.embed);
  d.Scalar("dim", a.dim, b.dim);
  d.Scalar("has_cls_token", a.has_cls_token, b.has_cls_token);
  d.Scalar("has_dist_token", a.has_dist_token, b.has_dist_token);
  d.Array("cls_token", a.cls_token, b.cls_token);
  d.Array("dist_token", a.dist_token, b.dist_token);
  d.Scalar("pos_mode", a.pos_mode, b.pos_mode);
  d.Array("pos_embed", a.pos_embed, b.pos_embed);
  d.Scalar("blocks.size()", a.blocks.size(), b.blocks.size());
  for (size_t i = 0; i < a.blocks.size() && i < b.blocks.size(); ++i) {
    DiffBlock(d, "blocks[" + std::to_string(i) + "]", a.blocks[i], b.blocks[i]);
  }
  DiffLn(d, "norm", a.norm, b.norm);
  d.Scalar("pooling", a.pooling, b.pooling);
  DiffLinear(d, "head", a.head, b.head);
  DiffLinear(d, "head_dist", a.head_dist, b.head_dist);
  d.Scalar("preprocess.resize_shorter", a.preprocess.resize_shorter, b.preprocess.resize_shorter);
  for (int c = 0; c < 3; ++c) {
    d.Scalar("preprocess.mean[" + std::to_string(c) + "]", a.preprocess.mean[c], b.preprocess.mean[c]);
    d.Scalar("preprocess.std[" + std::to_string(c) + "]", a.preprocess.std[c], b.preprocess.std[c]);
  }
  d.Scalar("preprocess.interpolation", a.preprocess.interpolation, b.preprocess.interpolation);
  d.Scalar("preprocess.channel_order", a.preprocess.channel_order, b.preprocess.channel_order);
  d.Scalar("preprocess.known", a.preprocess.known, b.preprocess.known);
  return d.diffs;
}

std::vector<std::string> DiffQuantPlan(const QuantPlan& a, const QuantPlan& b) {
  Differ d;
  d.Scalar("weight_bits", a.weight_bits, b.weight_bits);
  d.Scalar("act_bits", a.act_bits, b.act_bits);
  d.Scalar("softmax_quantizer", a.softmax_quantizer, b.softmax_quantizer);
  d.Scalar("gelu_quantizer", a.gelu_quantizer, b.gelu_quantizer);
  d.Scalar("ln_reparam", a.ln_reparam, b.ln_reparam);
  d.Scalar("fpcs", a.fpcs, b.fpcs);
  DiffChannels(d, "patch_embed_weight", a.patch_embed_weight, b.patch_embed_weight);
  d.Scalar("blocks.size()", a.blocks.size(), b.blocks.size());
  for (size_t i = 0; i < a.blocks.size() && i < b.blocks.size(); ++i) {
    DiffBlockQuant(d, "blocks[" + std::to_string(i) + "]", a.blocks[i], b.blocks[i]);
  }
  DiffLinearQuant(d, "head", a.head, b.head);
  DiffLinearQuant(d, "head_dist", a.head_dist, b.head_dist);
  d.Scalar("meta.size()", a.meta.size(), b.meta.size());
  for (size_t i = 0; i < a.meta.size() && i < b.meta.size(); ++i) {
    d.Scalar("meta[" + std::to_string(i) + "].key", a.meta[i].first, b.meta[i].first);
    d.Scalar("meta[" + std::to_string(i) + "].value", a.meta[i].second, b.meta[i].second);
  }
  return d.diffs;
}

void ExpectSameVitModel(const VitModel& want, const VitModel& got, const std::string& what) {
  Report(DiffVitModel(want, got), what, "VitModel");
}

void ExpectSameQuantPlan(const QuantPlan& want, const QuantPlan& got, const std::string& what) {
  Report(DiffQuantPlan(want, got), what, "QuantPlan");
}

}  // namespace adalog::test
