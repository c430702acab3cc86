// Bit-exact comparison of calibration results for the search tests: every quantizer of a plan,
// every FP32 tensor of the (rewritten) model.
#pragma once

#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "runtime/model_file.h"
#include "runtime/quant_plan.h"

namespace adalog::test {

inline bool SameBits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() &&
         (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0);
}

inline void ExpectSame(const UniformPerChannel& a, const UniformPerChannel& b, const std::string& what) {
  EXPECT_EQ(a.bits, b.bits) << what;
  EXPECT_TRUE(SameBits(a.scales, b.scales)) << what;
  EXPECT_EQ(a.zero_points, b.zero_points) << what;
}
inline void ExpectSame(const UniformPerHead& a, const UniformPerHead& b, const std::string& what) {
  EXPECT_EQ(a.bits, b.bits) << what;
  EXPECT_TRUE(SameBits(a.scales, b.scales)) << what;
  EXPECT_EQ(a.zero_points, b.zero_points) << what;
}
inline void ExpectSame(const ActQuant& a, const ActQuant& b, const std::string& what) {
  EXPECT_EQ(a.kind, b.kind) << what;
  EXPECT_EQ(a.uniform.params.bits, b.uniform.params.bits) << what;
  EXPECT_EQ(std::memcmp(&a.uniform.params.scale, &b.uniform.params.scale, 4), 0) << what;
  EXPECT_EQ(a.uniform.params.zero_point, b.uniform.params.zero_point) << what;
  EXPECT_EQ(a.log.kind, b.log.kind) << what;
  EXPECT_EQ(a.log.bits, b.log.bits) << what;
  EXPECT_EQ(std::memcmp(&a.log.scale, &b.log.scale, 4), 0) << what;
  EXPECT_EQ(a.log.q, b.log.q) << what;
  EXPECT_EQ(std::memcmp(&a.shift, &b.shift, 4), 0) << what;
  EXPECT_EQ(a.shift_folded, b.shift_folded) << what;
  EXPECT_EQ(a.twin.bits, b.twin.bits) << what;
  EXPECT_EQ(std::memcmp(&a.twin.scale_pos, &b.twin.scale_pos, 4), 0) << what;
  EXPECT_EQ(std::memcmp(&a.twin.scale_neg, &b.twin.scale_neg, 4), 0) << what;
}
inline void ExpectSame(const LinearQuant& a, const LinearQuant& b, const std::string& what) {
  ExpectSame(a.weight, b.weight, what + ".weight");
  ExpectSame(a.input, b.input, what + ".input");
}
inline void ExpectSame(const AttentionQuant& a, const AttentionQuant& b, const std::string& what) {
  ExpectSame(a.q, b.q, what + ".q");
  ExpectSame(a.k, b.k, what + ".k");
  ExpectSame(a.probs, b.probs, what + ".probs");
  ExpectSame(a.v, b.v, what + ".v");
}
inline void ExpectSame(const LinearParams& a, const LinearParams& b, const std::string& what) {
  EXPECT_EQ(a.in, b.in) << what;
  EXPECT_EQ(a.out, b.out) << what;
  EXPECT_TRUE(SameBits(a.weight, b.weight)) << what << ".weight";
  EXPECT_TRUE(SameBits(a.bias, b.bias)) << what << ".bias";
}
inline void ExpectSame(const LayerNormParams& a, const LayerNormParams& b, const std::string& what) {
  EXPECT_EQ(a.dim, b.dim) << what;
  EXPECT_TRUE(SameBits(a.gamma, b.gamma)) << what << ".gamma";
  EXPECT_TRUE(SameBits(a.beta, b.beta)) << what << ".beta";
}

// Every quantizer of the plan (placement by placement, so a failure names it).
inline void ExpectSamePlan(const QuantPlan& a, const QuantPlan& b) {
  ExpectSame(a.patch_embed_weight, b.patch_embed_weight, "patch_embed");
  ASSERT_EQ(a.blocks.size(), b.blocks.size());
  for (size_t i = 0; i < a.blocks.size(); ++i) {
    const std::string p = "block" + std::to_string(i);
    const BlockQuant &x = a.blocks[i], &y = b.blocks[i];
    ExpectSame(x.qkv, y.qkv, p + ".qkv");
    ExpectSame(x.attn, y.attn, p + ".attn");
    ExpectSame(x.proj, y.proj, p + ".proj");
    ExpectSame(x.fc1, y.fc1, p + ".fc1");
    ExpectSame(x.fc2, y.fc2, p + ".fc2");
  }
  ExpectSame(a.head, b.head, "head");
  ExpectSame(a.head_dist, b.head_dist, "head_dist");
}

// Every FP32 tensor of the model (the calibration rewrites ln1/qkv, ln2/fc1 and fc2's bias; the
// rest must come through untouched).
inline void ExpectSameModel(const VitModel& a, const VitModel& b) {
  EXPECT_TRUE(SameBits(a.embed.weight, b.embed.weight)) << "embed.weight";
  EXPECT_TRUE(SameBits(a.embed.bias, b.embed.bias)) << "embed.bias";
  EXPECT_TRUE(SameBits(a.cls_token, b.cls_token)) << "cls_token";
  EXPECT_TRUE(SameBits(a.dist_token, b.dist_token)) << "dist_token";
  EXPECT_TRUE(SameBits(a.pos_embed, b.pos_embed)) << "pos_embed";
  ASSERT_EQ(a.blocks.size(), b.blocks.size());
  for (size_t i = 0; i < a.blocks.size(); ++i) {
    const std::string p = "block" + std::to_string(i);
    const BlockParams &x = a.blocks[i], &y = b.blocks[i];
    ExpectSame(x.ln1, y.ln1, p + ".ln1");
    ExpectSame(x.qkv, y.qkv, p + ".qkv");
    ExpectSame(x.proj, y.proj, p + ".proj");
    ExpectSame(x.ln2, y.ln2, p + ".ln2");
    ExpectSame(x.fc1, y.fc1, p + ".fc1");
    ExpectSame(x.fc2, y.fc2, p + ".fc2");
  }
  ExpectSame(a.norm, b.norm, "norm");
  ExpectSame(a.head, b.head, "head");
  ExpectSame(a.head_dist, b.head_dist, "head_dist");
}

}  // namespace adalog::test
