// Validation and counting for the recognized-model IR.
#include "runtime/vit_model.h"

#include "quant/error.h"
#include "runtime/swin_model.h"

namespace adalog {
namespace {

void CheckSize(const std::vector<float>& v, size_t expect, const std::string& what) {
  ADALOG_CHECK(v.size() == expect, "model: ", what, " has ", v.size(), " values, expected ",
               expect);
}

void CheckLinear(const LinearParams& l, int in, int out, const std::string& what) {
  ADALOG_CHECK(l.in == in && l.out == out, "model: ", what, " is ", l.out, "x", l.in,
               ", expected ", out, "x", in);
  CheckSize(l.weight, static_cast<size_t>(in) * out, what + ".weight");
  CheckSize(l.bias, static_cast<size_t>(out), what + ".bias");
}

void CheckNorm(const LayerNormParams& n, int dim, const std::string& what) {
  ADALOG_CHECK(n.dim == dim, "model: ", what, " has dim ", n.dim, ", expected ", dim);
  ADALOG_CHECK(n.eps > 0.f && n.eps < 1.f, "model: ", what, " has eps ", n.eps);
  CheckSize(n.gamma, dim, what + ".gamma");
  CheckSize(n.beta, dim, what + ".beta");
}

}  // namespace

void ValidateVitModel(const VitModel& m) {
  const auto& e = m.embed;
  ADALOG_CHECK(m.dim > 0 && m.dim <= 65536, "model: embedding width ", m.dim, " out of range");
  ADALOG_CHECK(e.dim == m.dim, "model: patch embedding width ", e.dim, " != model width ", m.dim);
  ADALOG_CHECK(e.in_channels >= 1 && e.in_channels <= 16, "model: ", e.in_channels,
               " input channels");
  ADALOG_CHECK(e.patch >= 1 && e.image_h >= e.patch && e.image_w >= e.patch &&
                   e.image_h % e.patch == 0 && e.image_w % e.patch == 0 && e.image_h <= 8192 &&
                   e.image_w <= 8192,
               "model: image ", e.image_h, "x", e.image_w, " is not a multiple of patch ",
               e.patch);
  CheckSize(e.weight, static_cast<size_t>(e.dim) * e.in_channels * e.patch * e.patch,
            "patch_embed.weight");
  CheckSize(e.bias, e.dim, "patch_embed.bias");
  if (m.has_cls_token) CheckSize(m.cls_token, m.dim, "cls_token");
  if (m.has_dist_token) CheckSize(m.dist_token, m.dim, "dist_token");
  if (!m.pos_embed.empty()) {
    const int n = m.pos_mode == PosEmbedMode::kAfterPrefix ? m.num_tokens() : e.num_patches();
    CheckSize(m.pos_embed, static_cast<size_t>(n) * m.dim, "pos_embed");
  }
  ADALOG_CHECK(!m.blocks.empty(), "model: no transformer blocks");
  if (m.is_swin()) {
    ValidateSwinModel(m);  // stage widths, windows, biases, masks, merges, norm and head
    return;
  }
  for (size_t i = 0; i < m.blocks.size(); ++i) {
    const auto& b = m.blocks[i];
    const std::string p = "blocks." + std::to_string(i);
    ADALOG_CHECK(b.heads >= 1 && m.dim % b.heads == 0, "model: ", p, " has ", b.heads,
                 " heads for width ", m.dim);
    ADALOG_CHECK(b.attn_scale > 0.f, "model: ", p, " attention scale ", b.attn_scale);
    CheckNorm(b.ln1, m.dim, p + ".norm1");
    CheckLinear(b.qkv, m.dim, 3 * m.dim, p + ".attn.qkv");
    CheckLinear(b.proj, m.dim, m.dim, p + ".attn.proj");
    CheckNorm(b.ln2, m.dim, p + ".norm2");
    ADALOG_CHECK(b.fc1.out > 0, "model: ", p, ".mlp.fc1 has no outputs");
    CheckLinear(b.fc1, m.dim, b.fc1.out, p + ".mlp.fc1");
    CheckLinear(b.fc2, b.fc1.out, m.dim, p + ".mlp.fc2");
    ADALOG_CHECK(b.window_size == 0, "model: ", p, " uses window attention (Swin), not supported yet");
  }
  CheckNorm(m.norm, m.dim, "norm");
  ADALOG_CHECK(m.head.out > 0, "model: head has no outputs");
  CheckLinear(m.head, m.dim, m.head.out, "head");
  if (m.pooling == Pooling::kClsDistAvg) {
    ADALOG_CHECK(m.has_cls_token && m.has_dist_token, "model: distilled pooling needs cls and dist tokens");
    CheckLinear(m.head_dist, m.dim, m.head.out, "head_dist");
  }
  if (m.pooling == Pooling::kClsToken) {
    ADALOG_CHECK(m.has_cls_token, "model: cls pooling without a cls token");
  }
}

int64_t CountParameters(const VitModel& m) {
  auto lin = [](const LinearParams& l) { return static_cast<int64_t>(l.weight.size() + l.bias.size()); };
  auto ln = [](const LayerNormParams& n) { return static_cast<int64_t>(n.gamma.size() + n.beta.size()); };
  int64_t n = static_cast<int64_t>(m.embed.weight.size() + m.embed.bias.size() + m.cls_token.size() +
                                   m.dist_token.size() + m.pos_embed.size());
  for (const auto& b : m.blocks) n += ln(b.ln1) + lin(b.qkv) + lin(b.proj) + ln(b.ln2) + lin(b.fc1) + lin(b.fc2);
  n += ln(m.norm) + lin(m.head) + CountSwinExtraParameters(m);
  if (m.pooling == Pooling::kClsDistAvg) n += lin(m.head_dist);
  return n;
}

int64_t CountMacsPerImage(const VitModel& m) {
  if (m.is_swin()) return CountSwinMacsPerImage(m);
  const int64_t t = m.num_tokens(), d = m.dim, p = m.embed.num_patches();
  int64_t macs = p * d * m.embed.in_channels * m.embed.patch * m.embed.patch;
  for (const auto& b : m.blocks) {
    macs += t * d * 3 * d;      // qkv
    macs += 2 * t * t * d;      // q@k^T and attn@v over all heads
    macs += t * d * d;          // proj
    macs += 2 * t * d * b.fc1.out;  // fc1 + fc2
  }
  macs += static_cast<int64_t>(d) * m.head.out * (m.pooling == Pooling::kClsDistAvg ? 2 : 1);
  return macs;
}

}  // namespace adalog
