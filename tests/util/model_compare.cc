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
// once per element, by brace elision). Checked against the table below, so that a new field fails
// the build here.
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

// ---------------------------------------------------------------------------------------------
// The table: every compared struct and its fields, in declaration order. A struct's row is checked
// against the struct itself at compile time (the static_assert in ADALOG_MC_DEFINE_DIFF): a field
// added to (or removed from) one of these structs fails the build here until its row lists it
// (then check that the model file writes and reads it).
#define ADALOG_MC_LINEAR_PARAMS(F) F(in) F(out) F(weight) F(bias)
#define ADALOG_MC_LAYER_NORM_PARAMS(F) F(dim) F(eps) F(gamma) F(beta)
#define ADALOG_MC_PATCH_EMBED_PARAMS(F) \
  F(in_channels) F(image_h) F(image_w) F(patch) F(dim) F(weight) F(bias)
#define ADALOG_MC_BLOCK_PARAMS(F) \
  F(ln1) F(qkv) F(heads) F(attn_scale) F(proj) F(ln2) F(fc1) F(gelu) F(fc2) F(window_size)   \
  F(shift_size) F(rel_bias) F(attn_mask)
#define ADALOG_MC_PATCH_MERGE_PARAMS(F) F(norm) F(reduction)
#define ADALOG_MC_SWIN_STAGE(F) F(depth) F(dim) F(grid_h) F(grid_w) F(has_merge) F(merge)
#define ADALOG_MC_SWIN_LAYOUT(F) F(embed_norm) F(stages)
#define ADALOG_MC_PREPROCESS(F) \
  F(resize_shorter) F(mean) F(std) F(interpolation) F(channel_order) F(known)
#define ADALOG_MC_VIT_MODEL(F)                                                                    \
  F(name) F(style) F(embed) F(dim) F(has_cls_token) F(has_dist_token) F(cls_token) F(dist_token) \
  F(pos_mode) F(pos_embed) F(blocks) F(norm) F(pooling) F(head) F(head_dist) F(preprocess) \
  F(swin)
#define ADALOG_MC_UNIFORM_PARAMS(F) F(bits) F(scale) F(zero_point) F(mode)
#define ADALOG_MC_UNIFORM_PER_TENSOR(F) F(params)
#define ADALOG_MC_UNIFORM_PER_CHANNEL(F) F(bits) F(mode) F(axis) F(scales) F(zero_points)
#define ADALOG_MC_UNIFORM_PER_HEAD(F) F(bits) F(mode) F(scales) F(zero_points)
#define ADALOG_MC_TWIN_UNIFORM_PARAMS(F) F(bits) F(scale_pos) F(scale_neg)
#define ADALOG_MC_LOG_PARAMS(F) F(kind) F(bits) F(scale) F(q)
// Every member, whatever the kind: a plan whose inactive members hold non-default values is a
// different plan in memory even where no executor reads them.
#define ADALOG_MC_ACT_QUANT(F) F(kind) F(uniform) F(log) F(shift) F(shift_folded) F(twin)
#define ADALOG_MC_LINEAR_QUANT(F) F(weight) F(input)
#define ADALOG_MC_ATTENTION_QUANT(F) F(q) F(k) F(probs) F(v)
#define ADALOG_MC_BLOCK_QUANT(F) F(qkv) F(attn) F(proj) F(fc1) F(fc2)
#define ADALOG_MC_QUANT_PLAN(F)                                                                  \
  F(weight_bits) F(act_bits) F(softmax_quantizer) F(gelu_quantizer) F(ln_reparam) F(fpcs)       \
  F(patch_embed_weight) F(blocks) F(head) F(head_dist) F(merges) F(meta)

#define ADALOG_MC_STRUCTS(S)                                                                      \
  S(LinearParams, ADALOG_MC_LINEAR_PARAMS)                                                        \
  S(LayerNormParams, ADALOG_MC_LAYER_NORM_PARAMS)                                                 \
  S(PatchEmbedParams, ADALOG_MC_PATCH_EMBED_PARAMS)                                               \
  S(BlockParams, ADALOG_MC_BLOCK_PARAMS)                                                          \
  S(Preprocess, ADALOG_MC_PREPROCESS)                                                             \
  S(PatchMergeParams, ADALOG_MC_PATCH_MERGE_PARAMS)                                               \
  S(SwinStage, ADALOG_MC_SWIN_STAGE)                                                              \
  S(SwinLayout, ADALOG_MC_SWIN_LAYOUT)                                                            \
  S(VitModel, ADALOG_MC_VIT_MODEL)                                                                \
  S(UniformParams, ADALOG_MC_UNIFORM_PARAMS)                                                      \
  S(UniformPerTensor, ADALOG_MC_UNIFORM_PER_TENSOR)                                               \
  S(UniformPerChannel, ADALOG_MC_UNIFORM_PER_CHANNEL)                                             \
  S(UniformPerHead, ADALOG_MC_UNIFORM_PER_HEAD)                                                   \
  S(TwinUniformParams, ADALOG_MC_TWIN_UNIFORM_PARAMS)                                             \
  S(LogParams, ADALOG_MC_LOG_PARAMS)                                                              \
  S(ActQuant, ADALOG_MC_ACT_QUANT)                                                                \
  S(LinearQuant, ADALOG_MC_LINEAR_QUANT)                                                          \
  S(AttentionQuant, ADALOG_MC_ATTENTION_QUANT)                                                    \
  S(BlockQuant, ADALOG_MC_BLOCK_QUANT)                                                            \
  S(QuantPlan, ADALOG_MC_QUANT_PLAN)

// How many initializers a field takes in NumInitializers' count: a C array one per element.
template <typename F>
constexpr int FieldInitializers() {
  if constexpr (std::is_array_v<F>) {
    return static_cast<int>(std::extent_v<F>);
  } else {
    return 1;
  }
}

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

std::string Join(const std::string& path, const char* field) {
  return path.empty() ? std::string(field) : path + "." + field;
}
std::string Index(const std::string& path, size_t i) {
  return path + "[" + std::to_string(i) + "]";
}

// Diff(d, path, a, b): one overload per struct of the table (declared here, defined below), and
// the generic ones for the field types: scalars, C arrays, pairs, vectors.
#define ADALOG_MC_DECLARE_DIFF(T, FIELDS) \
  void Diff(Differ& d, const std::string& p, const T& a, const T& b);
ADALOG_MC_STRUCTS(ADALOG_MC_DECLARE_DIFF)

template <typename T>
void Diff(Differ& d, const std::string& p, const T& a, const T& b) {
  static_assert(std::is_arithmetic_v<T> || std::is_enum_v<T> || std::is_same_v<T, std::string>,
                "a struct without a row in the table above");
  d.Scalar(p, a, b);
}
// Every element of a C array.
template <typename T, size_t N>
void Diff(Differ& d, const std::string& p, const T (&a)[N], const T (&b)[N]) {
  for (size_t i = 0; i < N; ++i) Diff(d, Index(p, i), a[i], b[i]);
}
template <typename K, typename V>
void Diff(Differ& d, const std::string& p, const std::pair<K, V>& a, const std::pair<K, V>& b) {
  Diff(d, p + ".key", a.first, b.first);
  Diff(d, p + ".value", a.second, b.second);
}
// Numbers: the size, then the first differing element only. Structs (blocks, meta): the size,
// then every element both sides have.
template <typename T>
void Diff(Differ& d, const std::string& p, const std::vector<T>& a, const std::vector<T>& b) {
  if constexpr (std::is_arithmetic_v<T> || std::is_enum_v<T>) {
    d.Array(p, a, b);
  } else {
    d.Scalar(p + ".size()", a.size(), b.size());
    for (size_t i = 0; i < a.size() && i < b.size(); ++i) Diff(d, Index(p, i), a[i], b[i]);
  }
}

#define ADALOG_MC_DIFF_FIELD(f) Diff(d, Join(p, #f), a.f, b.f);
#define ADALOG_MC_COUNT_FIELD(f) +FieldInitializers<decltype(Self::f)>()
#define ADALOG_MC_DEFINE_DIFF(T, FIELDS)                                                         \
  void Diff(Differ& d, const std::string& p, const T& a, const T& b) {                          \
    using Self = T;                                                                              \
    static_assert(NumInitializers<Self>() == 0 FIELDS(ADALOG_MC_COUNT_FIELD),                    \
                  #T " gained or lost a field: list it in its row of the table (" #FIELDS ")"); \
    FIELDS(ADALOG_MC_DIFF_FIELD)                                                                 \
  }
ADALOG_MC_STRUCTS(ADALOG_MC_DEFINE_DIFF)

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
  Diff(d, "", a, b);
  return d.diffs;
}

std::vector<std::string> DiffQuantPlan(const QuantPlan& a, const QuantPlan& b) {
  Differ d;
  Diff(d, "", a, b);
  return d.diffs;
}

void ExpectSameVitModel(const VitModel& want, const VitModel& got, const std::string& what) {
  Report(DiffVitModel(want, got), what, "VitModel");
}

void ExpectSameQuantPlan(const QuantPlan& want, const QuantPlan& got, const std::string& what) {
  Report(DiffQuantPlan(want, got), what, "QuantPlan");
}

}  // namespace adalog::test
