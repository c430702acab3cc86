// Seeded random VitModels and inputs for executor tests and benchmarks (latency / exactness only:
// never use random weights for accuracy claims).
#pragma once

#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "runtime/vit_model.h"

namespace adalog {
namespace testing_util {

struct RandomVitSpec {
  int dim = 32;
  int heads = 2;
  int depth = 2;
  int mlp_ratio = 4;
  int image = 16;
  int patch = 4;
  int channels = 3;
  int classes = 10;
  bool dist = false;         // DeiT distilled (cls + dist tokens, kClsDistAvg)
  bool mean_pool = false;    // kMeanPatches (cls token kept unless no_cls)
  bool no_cls = false;       // no prefix tokens at all (mean pooling only)
  PosEmbedMode pos_mode = PosEmbedMode::kAfterPrefix;
  bool pos_embed = true;
  GeluKind gelu = GeluKind::kErf;
  uint32_t seed = 1;

  // Sets the six size fields at once (the others keep their values); returns *this.
  RandomVitSpec& Shape(int dim_, int heads_, int depth_, int image_, int patch_, int classes_) {
    dim = dim_;
    heads = heads_;
    depth = depth_;
    image = image_;
    patch = patch_;
    classes = classes_;
    return *this;
  }
};

inline void FillUniform(std::vector<float>* v, size_t n, float scale, std::mt19937* rng) {
  std::uniform_real_distribution<float> u(-scale, scale);
  v->resize(n);
  for (float& x : *v) x = u(*rng);
}

inline LinearParams RandomLinear(int in, int out, std::mt19937* rng) {
  LinearParams l;
  l.in = in;
  l.out = out;
  FillUniform(&l.weight, static_cast<size_t>(in) * out, std::sqrt(3.f / in), rng);
  FillUniform(&l.bias, out, 0.1f, rng);
  return l;
}

inline LayerNormParams RandomNorm(int dim, std::mt19937* rng) {
  LayerNormParams n;
  n.dim = dim;
  n.eps = 1e-6f;
  std::uniform_real_distribution<float> g(0.5f, 1.5f);
  n.gamma.resize(dim);
  for (float& x : n.gamma) x = g(*rng);
  FillUniform(&n.beta, dim, 0.2f, rng);
  return n;
}

inline VitModel MakeRandomVit(const RandomVitSpec& s) {
  std::mt19937 rng(s.seed);
  VitModel m;
  m.name = "random_vit_seed" + std::to_string(s.seed);
  m.style = "test";
  m.dim = s.dim;
  m.embed.in_channels = s.channels;
  m.embed.image_h = s.image;
  m.embed.image_w = s.image;
  m.embed.patch = s.patch;
  m.embed.dim = s.dim;
  const int pk = s.channels * s.patch * s.patch;
  FillUniform(&m.embed.weight, static_cast<size_t>(s.dim) * pk, std::sqrt(3.f / pk), &rng);
  FillUniform(&m.embed.bias, s.dim, 0.1f, &rng);
  m.has_cls_token = !s.no_cls;
  m.has_dist_token = s.dist;
  if (m.has_cls_token) FillUniform(&m.cls_token, s.dim, 1.f, &rng);
  if (m.has_dist_token) FillUniform(&m.dist_token, s.dim, 1.f, &rng);
  m.pos_mode = s.pos_mode;
  if (s.pos_embed) {
    const int n = s.pos_mode == PosEmbedMode::kAfterPrefix ? m.num_tokens() : m.embed.num_patches();
    FillUniform(&m.pos_embed, static_cast<size_t>(n) * s.dim, 0.5f, &rng);
  }
  for (int i = 0; i < s.depth; ++i) {
    BlockParams b;
    b.ln1 = RandomNorm(s.dim, &rng);
    b.qkv = RandomLinear(s.dim, 3 * s.dim, &rng);
    b.heads = s.heads;
    b.attn_scale = 1.f / std::sqrt(static_cast<float>(s.dim / s.heads));
    b.proj = RandomLinear(s.dim, s.dim, &rng);
    b.ln2 = RandomNorm(s.dim, &rng);
    b.fc1 = RandomLinear(s.dim, s.dim * s.mlp_ratio, &rng);
    b.gelu = s.gelu;
    b.fc2 = RandomLinear(s.dim * s.mlp_ratio, s.dim, &rng);
    m.blocks.push_back(std::move(b));
  }
  m.norm = RandomNorm(s.dim, &rng);
  m.pooling = s.dist ? Pooling::kClsDistAvg : (s.mean_pool || s.no_cls ? Pooling::kMeanPatches
                                                                      : Pooling::kClsToken);
  m.head = RandomLinear(s.dim, s.classes, &rng);
  if (s.dist) m.head_dist = RandomLinear(s.dim, s.classes, &rng);
  return m;
}

// [batch][C][H][W] uniform in [-2, 2].
inline std::vector<float> RandomImages(const VitModel& m, int batch, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<float> v;
  FillUniform(&v, static_cast<size_t>(batch) * m.embed.in_channels * m.embed.image_h * m.embed.image_w,
              2.f, &rng);
  return v;
}

}  // namespace testing_util
}  // namespace adalog
