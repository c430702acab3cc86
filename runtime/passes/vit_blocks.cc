// ViT recognition on the folded graph (runtime/passes/vit_blocks.h): walks the token stream from
// the patch embedding through the blocks to the head(s), using the matchers of match_ops.h and
// the AttentionTracer.
#include "runtime/passes/vit_blocks.h"

#include <algorithm>
#include <sstream>

#include "quant/error.h"
#include "runtime/passes/attention_tracer.h"
#include "runtime/passes/match_ops.h"

namespace adalog {
namespace graph {

VitModel RecognizeVit(const Folded& f, std::vector<std::string>* notes) {
  VitModel m;
  std::vector<std::string> local;
  if (!notes) notes = &local;
  const int64_t B = f.batch;
  const Tensor& xin = f.Value(f.input);

  // Patch embedding.
  const Node* conv = MatchPatchEmbedConv(f, &m.embed);
  const int64_t D = m.embed.dim, p = m.embed.patch;
  m.dim = m.embed.dim;
  const int64_t gh = xin.dims[2] / p, gw = xin.dims[3] / p, P = gh * gw;
  notes->push_back("patch embed: Conv " + std::to_string(p) + "x" + std::to_string(p) + "/" +
                   std::to_string(p) + ", " + std::to_string(xin.dims[1]) + "->" +
                   std::to_string(D) + ", grid " + std::to_string(gh) + "x" + std::to_string(gw));
  Tensor cmap = MakeTensor(DType::kInt64, {B, D, gh, gw}, "patch index map");
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t d = 0; d < D; ++d) {
      for (int64_t s = 0; s < P; ++s) cmap.i[(b * D + d) * P + s] = (b * P + s) * D + d;
    }
  }
  std::string x = FollowLayout(f, conv->outputs[0], std::move(cmap), {B, P, D},
                               "patch embedding");

  // Prefix tokens and position embedding.
  std::vector<std::vector<float>> prefix;
  bool concat_seen = false, pos_seen = false;
  for (int step = 0; step < 4; ++step) {
    const auto cons = f.Consumers(x);
    if (cons.size() != 1) break;
    const Node& n = *cons[0];
    if (n.op == "Concat" && !concat_seen) {
      const int64_t axis = n.GetInt("axis", 0);
      ADALOG_CHECK(axis == 1 || axis == -2, n.Describe(), ": token concat on axis ", axis);
      ADALOG_CHECK(n.inputs.back() == x, n.Describe(),
                   ": tokens after the patch tokens are not supported");
      for (size_t k = 0; k + 1 < n.inputs.size(); ++k) {
        ADALOG_CHECK(f.IsConst(n.inputs[k]), n.Describe(), ": prefix token input '",
                     n.inputs[k], "' is not a parameter");
        const Tensor& t = f.Value(n.inputs[k]);
        ADALOG_CHECK(t.rank() == 3 && t.dims[2] == D && t.dtype == DType::kFloat, n.Describe(),
                     ": prefix token shape ", ShapeStr(t.dims));
        for (int64_t j = 0; j < t.dims[1]; ++j) {
          prefix.emplace_back(t.f.begin() + j * D, t.f.begin() + (j + 1) * D);
        }
      }
      concat_seen = true;
      x = n.outputs[0];
    } else if (n.op == "Add" && !pos_seen && f.IsConst(OtherInput(n, x))) {
      const Tensor& t = f.Value(OtherInput(n, x));
      const int64_t tokens = f.Value(x).dims[1];
      ADALOG_CHECK(t.numel() == tokens * D && t.dtype == DType::kFloat && t.dims.back() == D,
                   n.Describe(), ": position embedding of shape ", ShapeStr(t.dims), " for ",
                   tokens, " tokens");
      m.pos_embed = t.f;
      m.pos_mode = concat_seen ? PosEmbedMode::kAfterPrefix : PosEmbedMode::kPatchesOnly;
      pos_seen = true;
      x = n.outputs[0];
    } else {
      break;
    }
  }
  if (!concat_seen && m.pos_mode == PosEmbedMode::kPatchesOnly) {
    m.pos_mode = PosEmbedMode::kAfterPrefix;  // no prefix: the two modes coincide
  }
  ADALOG_CHECK(prefix.size() <= 2, "not a ViT: ", prefix.size(),
               " prefix tokens (supported: none, cls, cls+dist)");
  m.has_cls_token = !prefix.empty();
  m.has_dist_token = prefix.size() == 2;
  if (m.has_cls_token) m.cls_token = prefix[0];
  if (m.has_dist_token) m.dist_token = prefix[1];
  const int64_t N = P + static_cast<int64_t>(prefix.size());
  {
    std::string t = prefix.empty() ? "none" : prefix.size() == 1 ? "cls" : "cls+dist";
    const int64_t pe_tokens = m.pos_mode == PosEmbedMode::kAfterPrefix ? N : P;
    notes->push_back("tokens: " + t + ", " +
                     (pos_seen ? "pos_embed " + std::to_string(pe_tokens) + "x" +
                                     std::to_string(D) +
                                     (m.pos_mode == PosEmbedMode::kPatchesOnly ? " (patches only)"
                                                                               : "")
                               : std::string("no pos_embed")));
  }
  ADALOG_CHECK(f.Value(x).dims == (std::vector<int64_t>{B, N, D}), "token stream '", x,
               "' has shape ", ShapeStr(f.Value(x).dims), ", expected ",
               ShapeStr({B, N, D}));

  // Blocks.
  for (int bi = 0;; ++bi) {
    const std::string where = "block " + std::to_string(bi);
    LnMatch ln1;
    ADALOG_CHECK(MatchLayerNorm(f, x, &ln1), "not a ViT: no LayerNorm found on the residual stream '",
                 x, "' (", bi == 0 ? "after the embeddings" : "after block " + std::to_string(bi - 1),
                 ")");
    std::vector<const Node*> residuals;
    for (const Node* c : f.Consumers(x)) {
      if (c->op == "Add" && !f.IsConst(c->inputs[0]) && !f.IsConst(c->inputs[1])) {
        residuals.push_back(c);
      }
    }
    if (residuals.empty()) {
      m.norm = ln1.p;
      std::ostringstream eps;
      eps << ln1.p.eps;
      notes->push_back("final norm: " + ln1.kind + ", eps " + eps.str());
      x = ln1.out;
      break;
    }
    ADALOG_CHECK(residuals.size() == 1, where, ": residual stream '", x, "' feeds ",
                 residuals.size(), " Adds");
    ADALOG_CHECK(bi < 4096, "too many blocks");
    BlockParams blk;
    blk.ln1 = ln1.p;
    AttentionTracer tracer(f, B, N, D, where);
    AttnResult at = tracer.Trace(ln1.out, x, residuals[0]);
    blk.qkv = std::move(at.qkv);
    blk.proj = std::move(at.proj);
    blk.heads = at.heads;
    blk.attn_scale = at.scale;
    if (at.seq_first) m.style = "torchvision";
    x = at.out;
    // MLP.
    LnMatch ln2;
    ADALOG_CHECK(MatchLayerNorm(f, x, &ln2), where, ": no LayerNorm before the MLP on '", x, "'");
    blk.ln2 = ln2.p;
    LinearMatch fc1, fc2;
    ADALOG_CHECK(FindLinear(f, ln2.out, &fc1), where, ": no fc1 Linear after '", ln2.out, "'");
    const std::string g = MatchGelu(f, fc1.out, &blk.gelu, where);
    ADALOG_CHECK(FindLinear(f, g, &fc2), where, ": no fc2 Linear after the GELU '", g, "'");
    const auto cons = f.Consumers(fc2.out);
    ADALOG_CHECK(cons.size() == 1 && cons[0]->op == "Add" &&
                     (cons[0]->inputs[0] == x || cons[0]->inputs[1] == x),
                 where, ": MLP output '", fc2.out, "' is not added back to '", x, "'");
    ADALOG_CHECK(f.Value(cons[0]->outputs[0]).dims == f.Value(x).dims, where,
                 ": MLP residual changes the shape");
    blk.fc1 = std::move(fc1.p);
    blk.fc2 = std::move(fc2.p);
    x = cons[0]->outputs[0];
    std::ostringstream note;
    note << where << ": " << ln1.kind << " -> attn(" << blk.heads << " heads, " << at.layout
         << ", scale " << blk.attn_scale << ") -> " << ln2.kind << " -> MLP(" << blk.fc1.out
         << ", GELU " << (blk.gelu == GeluKind::kErf ? "erf" : "tanh") << ")";
    notes->push_back(note.str());
    m.blocks.push_back(std::move(blk));
  }
  ADALOG_CHECK(!m.blocks.empty(), "not a ViT: no transformer blocks found");

  // Head(s).
  struct HeadUse {
    int64_t token;  // -1: mean pooling
    LinearMatch lin;
  };
  std::vector<HeadUse> heads;
  for (const Node* c : f.Consumers(x)) {
    HeadUse hu;
    std::string pooled;
    const bool slice_then_mean =
        c->op == "Slice" && f.Consumers(c->outputs[0]).size() == 1 &&
        f.Consumers(c->outputs[0])[0]->op == "ReduceMean";
    if (IsLayoutOp(c->op) && c->inputs[0] == x && !slice_then_mean) {
      // A token pick: Gather(x, t, axis 1), or Slice t:t+1 then Squeeze/Reshape/Flatten.
      // Verified with an index map: the [B, D] result must be row t of every image.
      Tensor map = Iota(f.Value(x).dims, "token index map");
      std::string t = x;
      const Node* n = c;
      for (int step = 0; step < 4 && map.dims != std::vector<int64_t>{B, D}; ++step) {
        ADALOG_CHECK(n && IsLayoutOp(n->op) && n->op != "Concat" && n->op != "Expand" &&
                         n->inputs[0] == t,
                     "not a ViT: cannot follow the classifier input after the final norm at ",
                     n ? n->Describe() : t);
        std::vector<Tensor> outs = EvalOnMap(f, *n, map);
        ADALOG_CHECK(outs.size() == 1, n->Describe(), ": unexpected outputs before the head");
        map = std::move(outs[0]);
        t = n->outputs[0];
        const auto next = f.Consumers(t);
        n = next.size() == 1 ? next[0] : nullptr;
      }
      ADALOG_CHECK(map.dims == (std::vector<int64_t>{B, D}), "not a ViT: classifier input '", t,
                   "' has shape ", ShapeStr(map.dims), ", expected ", ShapeStr({B, D}));
      const int64_t tok = (map.i[0] / D) % N;
      bool ok = map.i[0] % D == 0;
      for (int64_t k = 0; ok && k < B * D; ++k) {
        ok = map.i[k] == ((k / D) * N + tok) * D + k % D;
      }
      ADALOG_CHECK(ok, "not a ViT: classifier input '", t, "' is not one token of every image");
      hu.token = tok;
      pooled = t;
    } else if (c->op == "ReduceMean" || c->op == "Slice") {
      const Node* rm = c;
      if (c->op == "Slice") {
        // x[:, prefix:] before the mean: must drop exactly the prefix tokens on axis 1.
        const Tensor sl = EvalOnMap(f, *c, Iota(f.Value(x).dims, "pooling index map"))[0];
        const int64_t pre = static_cast<int64_t>(prefix.size());
        bool ok = sl.dims == std::vector<int64_t>{B, N - pre, D};
        for (int64_t k = 0; ok && k < sl.numel(); ++k) {
          const int64_t b = k / ((N - pre) * D), rest = k % ((N - pre) * D);
          ok = sl.i[k] == b * N * D + pre * D + rest;
        }
        ADALOG_CHECK(ok && pre > 0, c->Describe(),
                     ": token slice before pooling must drop exactly the prefix tokens");
        const auto cc = f.Consumers(c->outputs[0]);
        ADALOG_CHECK(cc.size() == 1 && cc[0]->op == "ReduceMean", c->Describe(),
                     ": sliced tokens are not mean-pooled");
        rm = cc[0];
      }
      const std::vector<int64_t> axes = ReduceAxes(*rm, f);
      ADALOG_CHECK(axes.size() == 1 && (axes[0] == 1 || axes[0] == -2), rm->Describe(),
                   ": pooling must average over tokens (axis 1)");
      ADALOG_CHECK(prefix.empty() || rm != c, rm->Describe(),
                   ": mean pooling over prefix tokens is not supported");
      hu.token = -1;
      pooled = rm->outputs[0];
      if (rm->GetInt("keepdims", 1) != 0) {
        const auto cc = f.Consumers(pooled);
        ADALOG_CHECK(cc.size() == 1 && (cc[0]->op == "Squeeze" || cc[0]->op == "Reshape" ||
                                        cc[0]->op == "Flatten"),
                     rm->Describe(), ": pooled tokens are not squeezed");
        pooled = cc[0]->outputs[0];
      }
    } else {
      Fail("not a ViT: after the final norm, ", c->Describe(),
           " is neither a token pick (Gather) nor mean pooling (ReduceMean)");
    }
    ADALOG_CHECK(f.Value(pooled).dims == (std::vector<int64_t>{B, D}), "pooled features '",
                 pooled, "' have shape ", ShapeStr(f.Value(pooled).dims));
    ADALOG_CHECK(FindLinear(f, pooled, &hu.lin), "not a ViT: no classifier Linear after '",
                 pooled, "'");
    heads.push_back(std::move(hu));
  }
  ADALOG_CHECK(!heads.empty(), "not a ViT: nothing reads the final norm output '", x, "'");
  std::string logits;
  if (heads.size() == 1) {
    const HeadUse& h = heads[0];
    ADALOG_CHECK(h.token <= 0, "head reads token ", h.token, ", expected token 0");
    m.pooling = h.token == 0 ? Pooling::kClsToken : Pooling::kMeanPatches;
    ADALOG_CHECK(h.token != 0 || m.has_cls_token, "head reads token 0 but there is no cls token");
    m.head = h.lin.p;
    logits = h.lin.out;
    notes->push_back("head: " + std::to_string(m.head.out) + " classes, " +
                     (h.token == 0 ? "cls token" : "mean pooling") + " (" + h.lin.desc + ")");
  } else {
    ADALOG_CHECK(heads.size() == 2 && m.has_dist_token, "not a ViT: ", heads.size(),
                 " heads read the final norm (distilled heads need cls+dist tokens)");
    std::sort(heads.begin(), heads.end(),
              [](const HeadUse& a, const HeadUse& b) { return a.token < b.token; });
    ADALOG_CHECK(heads[0].token == 0 && heads[1].token == 1, "distilled heads must read tokens 0 "
                 "and 1");
    m.pooling = Pooling::kClsDistAvg;
    m.head = heads[0].lin.p;
    m.head_dist = heads[1].lin.p;
    ADALOG_CHECK(m.head.out == m.head_dist.out, "distilled heads differ in class count");
    const auto c0 = f.Consumers(heads[0].lin.out);
    ADALOG_CHECK(c0.size() == 1 && c0[0]->op == "Add" &&
                     OtherInput(*c0[0], heads[0].lin.out) == heads[1].lin.out,
                 "distilled heads are not added together");
    const auto c1 = f.Consumers(c0[0]->outputs[0]);
    double v = 0;
    ADALOG_CHECK(c1.size() == 1 && c1[0]->inputs[0] == c0[0]->outputs[0] &&
                     IsScalarConst(f, c1[0]->inputs[1], &v) &&
                     ((c1[0]->op == "Div" && v == 2.0) || (c1[0]->op == "Mul" && v == 0.5)),
                 "distilled heads are not averaged (expected Div by 2 or Mul by 0.5)");
    logits = c1[0]->outputs[0];
    notes->push_back("head: " + std::to_string(m.head.out) + " classes, distilled average");
  }
  ADALOG_CHECK(std::find(f.outputs.begin(), f.outputs.end(), logits) != f.outputs.end(),
               "not a ViT: classifier output '", logits, "' is not a graph output");
  ADALOG_CHECK(f.outputs.size() == 1, "model has ", f.outputs.size(), " outputs, expected 1");
  if (m.style.empty()) m.style = m.has_dist_token ? "deit-distilled" : "timm";
  if (m.style == "torchvision" && m.has_dist_token) m.style = "torchvision-distilled";
  return m;
}

}  // namespace graph
}  // namespace adalog
