// Swin recognition on the folded graph (runtime/passes/swin_blocks.h), with the matchers of
// match_ops.h and the row maps of runtime/swin_model.h.
#include "runtime/passes/swin_blocks.h"

#include <algorithm>
#include <cmath>
#include <set>
#include <sstream>

#include "quant/error.h"
#include "runtime/passes/match_ops.h"
#include "runtime/swin_model.h"

namespace adalog {
namespace graph {
namespace {

const std::set<std::string> kLayoutOps = {"Reshape", "Transpose", "Pad",     "Slice",
                                          "Concat",  "Squeeze",   "Unsqueeze", "Flatten"};

// A code map over `dims`: element k holds k + 1, so that 0 marks a zero brought in by Pad.
Tensor CodeMap(const std::vector<int64_t>& dims) {
  Tensor t = Iota(dims, "code map");
  for (auto& v : t.i) ++v;
  return t;
}

// Pushes `map` (a code map of `start`) through the layout ops that read only `start`, each other
// and constants. Returns the tensor they lead to (`start` itself if none) and its map in *out;
// `last` gets the last node of the chain (null if none).
std::string PropagateLayout(const Folded& f, const std::string& start, const Tensor& map,
                            Tensor* out, const Node** last) {
  Region r = GrowRegion(f, start, kLayoutOps, [&](const Node& n) {
    if (n.op != "Pad") return true;
    double v = 0;  // only zero padding keeps code 0 meaning "a zero"
    return n.inputs.size() < 3 || n.inputs[2].empty() || (IsScalarConst(f, n.inputs[2], &v) && v == 0);
  });
  *last = r.nodes.empty() ? nullptr : r.nodes.back();
  if (r.nodes.empty()) {
    *out = map;
    return start;
  }
  ADALOG_CHECK(!r.out.empty(), "the layout ops after '", start, "' (", r.nodes.back()->Describe(),
               ") lead to more than one tensor");
  *out = EvalRegion(f, r, {{start, map}});
  return r.out;
}

// Rows of a code map whose last axis has `c` columns: each row copies one whole source row
// (index >= 0) or is all zeros (-1). False if some row is anything else.
bool DecodeRows(const Tensor& map, int64_t c, std::vector<int64_t>* rows) {
  if (map.dims.empty() || map.dims.back() != c || map.numel() % c != 0) return false;
  rows->assign(static_cast<size_t>(map.numel() / c), -1);
  for (size_t r = 0; r < rows->size(); ++r) {
    const int64_t* p = map.i.data() + r * c;
    if (p[0] != 0 && (p[0] - 1) % c != 0) return false;
    for (int64_t k = 0; k < c; ++k) {
      if (p[k] != (p[0] == 0 ? 0 : p[0] + k)) return false;
    }
    (*rows)[r] = p[0] == 0 ? -1 : (p[0] - 1) / c;
  }
  return true;
}

// The node's data evaluation, with MatMul and Softmax (shape-only in fold.cc) computed here for
// the numerical check of the attention core.
std::vector<Tensor> EvalWithMath(const Node& n, const std::vector<const Tensor*>& ins, int64_t opset) {
  if (n.op == "MatMul") {
    const Tensor& a = *ins[0];
    const Tensor& b = *ins[1];
    ADALOG_CHECK(a.rank() >= 2 && (b.rank() == 2 || b.rank() == a.rank()), n.Describe(),
                 ": MatMul of ", ShapeStr(a.dims), " and ", ShapeStr(b.dims));
    const int64_t m = a.dims[a.rank() - 2], k = a.dims.back(), nn = b.dims.back();
    ADALOG_CHECK(b.dims[b.rank() - 2] == k && m > 0 && k > 0 && nn > 0, n.Describe(),
                 ": MatMul of ", ShapeStr(a.dims), " and ", ShapeStr(b.dims));
    const int64_t batch = a.numel() / (m * k);
    ADALOG_CHECK(b.rank() == 2 || b.numel() == batch * k * nn, n.Describe(), ": MatMul batch dims differ");
    std::vector<int64_t> dims = a.dims;
    dims.back() = nn;
    Tensor y = MakeTensor(DType::kFloat, dims, n.Describe());
    for (int64_t t = 0; t < batch; ++t) {
      const float* pa = a.f.data() + t * m * k;
      const float* pb = b.f.data() + (b.rank() == 2 ? 0 : t * k * nn);
      float* py = y.f.data() + t * m * nn;
      // Row i of y in double, summed over q in order (k-outer so b is read row by row).
      std::vector<double> acc(static_cast<size_t>(nn));
      for (int64_t i = 0; i < m; ++i) {
        std::fill(acc.begin(), acc.end(), 0.0);
        for (int64_t q = 0; q < k; ++q) {
          const double aq = pa[i * k + q];
          const float* brow = pb + q * nn;
          for (int64_t j = 0; j < nn; ++j) acc[static_cast<size_t>(j)] += aq * brow[j];
        }
        for (int64_t j = 0; j < nn; ++j) py[i * nn + j] = static_cast<float>(acc[static_cast<size_t>(j)]);
      }
    }
    return {y};
  }
  if (n.op == "Softmax") {
    const Tensor& x = *ins[0];
    const int64_t axis = n.GetInt("axis", -1);
    ADALOG_CHECK(axis == -1 || axis == x.rank() - 1, n.Describe(),
                 ": Softmax over axis ", axis, " (window attention needs the last axis)");
    ADALOG_CHECK(x.rank() >= 1 && x.dims.back() > 0, n.Describe(), ": Softmax over an empty axis");
    Tensor y = x;
    const int64_t c = x.dims.back();
    for (int64_t r = 0; r < x.numel() / c; ++r) {
      float* p = y.f.data() + r * c;
      const float mx = *std::max_element(p, p + c);
      double s = 0;
      for (int64_t j = 0; j < c; ++j) s += std::exp(double(p[j]) - mx);
      for (int64_t j = 0; j < c; ++j) p[j] = static_cast<float>(std::exp(double(p[j]) - mx) / s);
    }
    return {y};
  }
  // Inference-mode Dropout (torchvision keeps the node when its mask output is named): identity.
  if (n.op == "Dropout" || n.op == "Identity") return {*ins[0]};
  return EvalNode(n, ins, opset);
}

Tensor EvalRegionMath(const Folded& f, const Region& r, const std::string& in, const Tensor& probe) {
  std::map<std::string, Tensor> vals = {{in, probe}};
  for (const Node* n : r.nodes) {
    std::vector<const Tensor*> ins;
    for (const auto& i : n->inputs) {
      ins.push_back(i.empty() ? nullptr : vals.count(i) ? &vals.at(i) : &f.Value(i));
    }
    std::vector<Tensor> outs = EvalWithMath(*n, ins, f.opset);
    for (size_t k = 0; k < n->outputs.size() && k < outs.size(); ++k) {
      ADALOG_CHECK(outs[k].has_data, n->Describe(), ": cannot evaluate the probe");
      vals[n->outputs[k]] = std::move(outs[k]);
    }
  }
  return vals.at(r.out);
}

// The model's window attention on rows X [windows*N][C] (window-major), projected: [windows*N][C].
std::vector<float> WindowAttentionRef(const BlockParams& b, int64_t windows, int64_t n, int64_t nw,
                                      const std::vector<float>& x) {
  const int64_t c = b.qkv.in, hd = c / b.heads, rows = windows * n;
  auto linear = [](const LinearParams& l, const std::vector<float>& in, int64_t rws) {
    std::vector<float> y(static_cast<size_t>(rws * l.out));
    for (int64_t r = 0; r < rws; ++r) {
      for (int o = 0; o < l.out; ++o) {
        double s = l.bias[o];
        for (int i = 0; i < l.in; ++i) s += double(in[r * l.in + i]) * l.weight[o * l.in + i];
        y[r * l.out + o] = static_cast<float>(s);
      }
    }
    return y;
  };
  const std::vector<float> qkv = linear(b.qkv, x, rows);
  std::vector<float> merged(static_cast<size_t>(rows * c)), p(static_cast<size_t>(n));
  std::vector<double> e(static_cast<size_t>(n));  // exp(p - max) of one row
  for (int64_t w = 0; w < windows; ++w) {
    for (int h = 0; h < b.heads; ++h) {
      for (int64_t i = 0; i < n; ++i) {
        const float* q = qkv.data() + (w * n + i) * 3 * c + h * hd;
        double mx = -1e300;
        for (int64_t j = 0; j < n; ++j) {
          const float* k = qkv.data() + (w * n + j) * 3 * c + c + h * hd;
          double s = 0;
          for (int64_t t = 0; t < hd; ++t) s += double(q[t]) * k[t];
          s = s * b.attn_scale + b.rel_bias[(h * n + i) * n + j];
          if (!b.attn_mask.empty()) s += b.attn_mask[((w % nw) * n + i) * n + j];
          p[j] = static_cast<float>(s);
          mx = std::max(mx, s);
        }
        double sum = 0;
        for (int64_t j = 0; j < n; ++j) {
          e[j] = std::exp(p[j] - mx);
          sum += e[j];
        }
        for (int64_t t = 0; t < hd; ++t) {
          double o = 0;
          for (int64_t j = 0; j < n; ++j) o += e[j] / sum * qkv[(w * n + j) * 3 * c + 2 * c + h * hd + t];
          merged[(w * n + i) * c + h * hd + t] = static_cast<float>(o);
        }
      }
    }
  }
  return linear(b.proj, merged, rows);
}

// The residual Add consumers of stream `x` (both inputs computed).
std::vector<const Node*> ResidualAdds(const Folded& f, const std::string& x) {
  std::vector<const Node*> r;
  for (const Node* c : f.Consumers(x)) {
    if (c->op == "Add" && !f.IsConst(c->inputs[0]) && !f.IsConst(c->inputs[1])) r.push_back(c);
  }
  return r;
}

struct Grid {
  int64_t b, h, w, c;
  int64_t tokens() const { return h * w; }
};

// One block from residual stream `x` on grid g; returns the stream after it.
std::string MatchSwinBlock(const Folded& f, const std::string& x, const Grid& g,
                           const std::string& where, BlockParams* blk, std::vector<std::string>* notes) {
  LnMatch ln1;
  ADALOG_CHECK(MatchLayerNorm(f, x, &ln1), where, ": no LayerNorm on the residual stream '", x, "'");
  blk->ln1 = ln1.p;
  // Padding, shift, partition: the rows entering qkv, as rows of the LN1 output.
  Tensor map;
  const Node* last = nullptr;
  const std::string qkv_in = PropagateLayout(f, ln1.out, CodeMap(f.Value(ln1.out).dims), &map, &last);
  std::vector<int64_t> rows;
  ADALOG_CHECK(map.rank() == 3 && DecodeRows(map, g.c, &rows), where, ": the qkv input '", qkv_in,
               "' (after ", last ? last->Describe() : "LN1", ") is not [windows, tokens, ", g.c,
               "] rows of the LayerNorm output");
  const int64_t n = map.dims[1];
  ADALOG_CHECK(n >= 1 && n <= 4096, where, ": windows of ", n, " tokens at '", qkv_in, "'");
  const int win = static_cast<int>(std::lround(std::sqrt(static_cast<double>(n))));
  ADALOG_CHECK(int64_t{win} * win == n, where, ": windows of ", n, " tokens are not square");
  const int hp = SwinPadded(static_cast<int>(g.h), win), wp = SwinPadded(static_cast<int>(g.w), win);
  const int64_t nw = int64_t{hp / win} * (wp / win);
  ADALOG_CHECK(map.dims[0] == g.b * nw, where, ": ", map.dims[0], " windows at '", qkv_in,
               "', expected ", g.b * nw, " for a ", g.h, "x", g.w, " grid and window ", win);
  int shift = -1;
  for (int s = 0; s < win && shift < 0; ++s) {
    const std::vector<int32_t> want = SwinWindowRows(static_cast<int>(g.h), static_cast<int>(g.w), win, s);
    bool ok = true;
    for (int64_t r = 0; ok && r < static_cast<int64_t>(rows.size()); ++r) {
      const int32_t t = want[static_cast<size_t>(r % (nw * n))];
      ok = rows[r] == (t < 0 ? -1 : (r / (nw * n)) * g.tokens() + t);
    }
    if (ok) shift = s;
  }
  ADALOG_CHECK(shift >= 0, where, ": the rows entering qkv at '", qkv_in, "' (after ",
               last ? last->Describe() : "LN1", ") are not a window partition (window ", win,
               ", any shift) of the ", g.h, "x", g.w, " grid padded to ", hp, "x", wp);
  blk->window_size = win;
  blk->shift_size = shift;
  // The attention core.
  LinearMatch qkv;
  ADALOG_CHECK(FindLinear(f, qkv_in, &qkv) && qkv.p.out == 3 * g.c, where, ": no qkv Linear (", g.c,
               "->", 3 * g.c, ") reads '", qkv_in, "'");
  static const std::set<std::string> kCoreOps = {
      "Reshape", "Transpose", "Pad", "Slice", "Concat", "Squeeze", "Unsqueeze", "Flatten",
      "Gather", "Split", "MatMul", "Add", "Mul", "Div", "Softmax", "Dropout", "Identity"};
  Region core = GrowRegion(f, qkv_in, kCoreOps, [](const Node&) { return true; });
  const Node* softmax = nullptr;
  const Node* proj_mm = nullptr;
  double scale = 1.0;
  const Tensor* bias = nullptr;
  const Tensor* mask = nullptr;
  for (const Node* nd : core.nodes) {
    if (nd->op == "Softmax") {
      ADALOG_CHECK(!softmax, where, ": two Softmax nodes in one attention (", nd->Describe(), ")");
      softmax = nd;
      continue;
    }
    double v = 0;
    if (!softmax && (nd->op == "Mul" || nd->op == "Div") && IsScalarConst(f, nd->inputs[1], &v)) {
      scale *= nd->op == "Mul" ? v : 1.0 / v;
    } else if (!softmax && nd->op == "Mul" && IsScalarConst(f, nd->inputs[0], &v)) {
      scale *= v;
    } else if (!softmax && nd->op == "Add" && nd->outputs[0] != qkv.out) {
      for (const auto& in : nd->inputs) {
        if (!f.IsConst(in)) continue;
        const Tensor& t = f.Value(in);
        if (t.rank() == 5 && t.dims[2] == 1 && t.dims[3] == n && t.dims[4] == n) {
          ADALOG_CHECK(!mask, where, ": two masks added to the scores (", nd->Describe(), ")");
          mask = &t;
        } else if (t.rank() >= 3 && t.dims.back() == n && t.dims[t.rank() - 2] == n) {
          ADALOG_CHECK(!bias, where, ": two biases added to the scores (", nd->Describe(), ")");
          bias = &t;
        } else {
          Fail(where, ": ", nd->Describe(), " adds a constant of shape ", ShapeStr(t.dims),
               " to the attention scores (expected a relative position bias [1, heads, ", n, ", ", n,
               "] or a shift mask [1, windows, 1, ", n, ", ", n, "])");
        }
      }
    } else if (softmax && !proj_mm && nd->op == "MatMul" && f.IsConst(nd->inputs[1])) {
      proj_mm = nd;
    }
  }
  ADALOG_CHECK(softmax, where, ": no Softmax after the qkv Linear '", qkv.out, "'");
  ADALOG_CHECK(bias, where, ": no relative position bias added before ", softmax->Describe());
  ADALOG_CHECK(proj_mm, where, ": no projection Linear after ", softmax->Describe(),
               " (the attention sub-graph ends at ", core.nodes.back()->Describe(), ")");
  ADALOG_CHECK(!core.out.empty(), where, ": the attention after '", qkv_in,
               "' does not end in one tensor");
  LinearMatch proj;
  ADALOG_CHECK(MatchLinearAt(f, *proj_mm, proj_mm->inputs[0], &proj) && proj.p.in == g.c &&
                   proj.p.out == g.c,
               where, ": ", proj_mm->Describe(), " is not a ", g.c, "->", g.c, " projection");
  blk->heads = static_cast<int>(bias->numel() / (n * n));
  ADALOG_CHECK(bias->numel() == blk->heads * n * n && blk->heads >= 1 && g.c % blk->heads == 0,
               where, ": relative position bias of shape ", ShapeStr(bias->dims), " for width ", g.c);
  blk->rel_bias = bias->f;
  blk->attn_scale = static_cast<float>(scale);
  blk->qkv = qkv.p;
  blk->proj = proj.p;
  ADALOG_CHECK((shift > 0) == (mask != nullptr), where, ": ",
               shift > 0 ? "shifted windows but no mask added before " : "a mask but no shift before ",
               softmax->Describe());
  if (mask) {
    ADALOG_CHECK(mask->dims[1] == nw, where, ": shift mask for ", mask->dims[1], " windows, expected ", nw);
    blk->attn_mask = mask->f;
    ADALOG_CHECK(blk->attn_mask == SwinShiftMask(hp, wp, win, shift), where,
                 ": the mask added before ", softmax->Describe(),
                 " is not the shifted-window mask of a ", hp, "x", wp, " grid, window ", win,
                 ", shift ", shift);
  }
  // Numerical check: the exported core (attention, proj, window reverse, crop) on probe rows.
  const Tensor& xin = f.Value(qkv_in);
  Tensor probe = MakeTensor(DType::kFloat, xin.dims, "probe");
  for (int64_t k = 0; k < probe.numel(); ++k) {
    probe.f[k] = static_cast<float>(std::sin(0.731 * k + 0.3) * (0.5 + (k % 5) * 0.25));
  }
  const Tensor got = EvalRegionMath(f, core, qkv_in, probe);
  const std::vector<float> ref = WindowAttentionRef(*blk, g.b * nw, n, nw, probe.f);
  ADALOG_CHECK(got.numel() == g.b * g.tokens() * g.c, where, ": the attention output '", core.out,
               "' has shape ", ShapeStr(got.dims), ", expected ", g.b * g.tokens(), " rows of ", g.c);
  double err = 0;
  for (int64_t r = 0; r < static_cast<int64_t>(rows.size()); ++r) {
    if (rows[r] < 0) continue;
    for (int64_t c = 0; c < g.c; ++c) {
      const double a = got.f[rows[r] * g.c + c], e = ref[r * g.c + c];
      err = std::max(err, std::fabs(a - e) / (1.0 + std::fabs(e)));
    }
  }
  ADALOG_CHECK(err < 1e-4, where, ": the graph from '", qkv_in, "' through ", softmax->Describe(),
               " to '", core.out, "' does not compute window attention (window ", win, ", shift ",
               shift, ", ", blk->heads, " heads, scale ", scale, "; max relative error ", err, ")");
  const auto add = f.Consumers(core.out);
  ADALOG_CHECK(add.size() == 1 && add[0]->op == "Add" && OtherInput(*add[0], core.out) == x, where,
               ": the attention output '", core.out, "' is not added back to '", x, "'");
  const std::string x2 = add[0]->outputs[0];
  // MLP.
  LnMatch ln2;
  ADALOG_CHECK(MatchLayerNorm(f, x2, &ln2), where, ": no LayerNorm before the MLP on '", x2, "'");
  blk->ln2 = ln2.p;
  LinearMatch fc1, fc2;
  ADALOG_CHECK(FindLinear(f, ln2.out, &fc1), where, ": no fc1 Linear after '", ln2.out, "'");
  const std::string gl = MatchGelu(f, fc1.out, &blk->gelu, where);
  ADALOG_CHECK(FindLinear(f, gl, &fc2) && fc2.p.out == g.c, where, ": no fc2 Linear after the GELU '", gl, "'");
  const auto cons = f.Consumers(fc2.out);
  ADALOG_CHECK(cons.size() == 1 && cons[0]->op == "Add" && OtherInput(*cons[0], fc2.out) == x2 &&
                   f.Value(cons[0]->outputs[0]).dims == f.Value(x2).dims,
               where, ": MLP output '", fc2.out, "' is not added back to '", x2, "'");
  blk->fc1 = std::move(fc1.p);
  blk->fc2 = std::move(fc2.p);
  std::ostringstream note;
  note << where << ": " << ln1.kind << " -> window attn(" << blk->heads << " heads, window " << win
       << ", shift " << shift << (hp != g.h || wp != g.w ? ", padded" : "") << ", scale "
       << blk->attn_scale << ") -> " << ln2.kind << " -> MLP(" << blk->fc1.out << ")";
  notes->push_back(note.str());
  return cons[0]->outputs[0];
}

// The patch merge after a stage on grid g; returns the merged stream.
std::string MatchMerge(const Folded& f, const std::string& x, const Grid& g, const std::string& where,
                       PatchMergeParams* mp) {
  Tensor map;
  const Node* last = nullptr;
  const std::string cat = PropagateLayout(f, x, CodeMap(f.Value(x).dims), &map, &last);
  ADALOG_CHECK(last, where, ": '", x, "' is read by neither a block, a patch merge nor the final norm");
  const int64_t ho = (g.h + 1) / 2, wo = (g.w + 1) / 2;
  const std::vector<int32_t> want = SwinMergeRows(static_cast<int>(g.h), static_cast<int>(g.w));
  std::vector<int64_t> rows;
  Tensor flat = map;  // C-wide rows: merged row j's block k is row 4j + k
  flat.dims = {map.numel() / g.c, g.c};
  bool ok = map.numel() % g.c == 0 && DecodeRows(flat, g.c, &rows) &&
            static_cast<int64_t>(rows.size()) == g.b * ho * wo * 4;
  // Decoded per C-wide block: merged row j, block k is rows[4j + k].
  for (int64_t r = 0; ok && r < static_cast<int64_t>(rows.size()); ++r) {
    const int32_t t = want[static_cast<size_t>(r % (ho * wo * 4))];
    ok = rows[r] == (t < 0 ? -1 : (r / (ho * wo * 4)) * g.tokens() + t);
  }
  ADALOG_CHECK(ok, where, ": the tensor '", cat, "' after ", last->Describe(),
               " is not the 2x2 patch-merge gather (x0, x1, x2, x3) of the ", g.h, "x", g.w, " grid");
  ADALOG_CHECK(f.Value(cat).dims.back() == 4 * g.c, where, ": merged rows '", cat, "' are ",
               f.Value(cat).dims.back(), " wide, expected ", 4 * g.c);
  LnMatch ln;
  ADALOG_CHECK(MatchLayerNorm(f, cat, &ln), where, ": no LayerNorm on the merged rows '", cat, "'");
  LinearMatch red;
  ADALOG_CHECK(FindLinear(f, ln.out, &red), where, ": no reduction Linear after '", ln.out, "'");
  mp->norm = ln.p;
  mp->reduction = red.p;
  return red.out;
}

}  // namespace

bool LooksLikeSwin(const Folded& f) {
  // Both families pool with GlobalAveragePool (timm's AdaptiveAvgPool1d, torchvision's 2d), which
  // the ViT recognizer never accepted (its mean pooling is a ReduceMean). The Softmax's leading
  // dimension would not do: torchvision's ViT also folds heads into it ([B*heads, N, N]).
  for (const Node& n : f.compute) {
    if (n.op == "GlobalAveragePool") return true;
  }
  return false;
}

VitModel RecognizeSwin(const Folded& f, std::vector<std::string>* notes) {
  VitModel m;
  std::vector<std::string> local;
  if (!notes) notes = &local;
  const int64_t B = f.batch;
  const Node* conv = MatchPatchEmbedConv(f, &m.embed);
  const int64_t D = m.embed.dim, gh = m.embed.grid_h(), gw = m.embed.grid_w(), P = gh * gw;
  m.dim = static_cast<int>(D);
  m.has_cls_token = false;
  m.pooling = Pooling::kMeanPatches;
  notes->push_back("patch embed: Conv " + std::to_string(m.embed.patch) + "x" +
                   std::to_string(m.embed.patch) + ", " + std::to_string(m.embed.in_channels) + "->" +
                   std::to_string(D) + ", grid " + std::to_string(gh) + "x" + std::to_string(gw));
  // The Conv output [B, D, gh, gw] viewed as token rows: [B, P, D] (timm) or [B, gh, gw, D]
  // (torchvision), found by following the layout ops until the map is the identity of rows.
  std::string x = conv->outputs[0];
  {
    Tensor cmap = MakeTensor(DType::kInt64, {B, D, gh, gw}, "patch index map");
    for (int64_t b = 0; b < B; ++b) {
      for (int64_t d = 0; d < D; ++d) {
        for (int64_t s = 0; s < P; ++s) cmap.i[(b * D + d) * P + s] = (b * P + s) * D + d;
      }
    }
    for (int step = 0; step < 8 && !(cmap.dims.back() == D && IsIota(cmap)); ++step) {
      const auto cons = f.Consumers(x);
      ADALOG_CHECK(cons.size() == 1 && IsLayoutOp(cons[0]->op) && cons[0]->inputs[0] == x &&
                       cons[0]->op != "Concat" && cons[0]->op != "Expand",
                   "patch embedding: the Conv output is not viewed as token rows before '", x, "'");
      std::vector<Tensor> outs = EvalOnMap(f, *cons[0], cmap);
      cmap = std::move(outs[0]);
      x = cons[0]->outputs[0];
    }
    ADALOG_CHECK(cmap.dims.back() == D && IsIota(cmap),
                 "patch embedding: no [batch, tokens, dim] view of the Conv output");
  }
  LnMatch eln;
  ADALOG_CHECK(MatchLayerNorm(f, x, &eln), "Swin: no LayerNorm after the patch embedding '", x, "'");
  m.swin.embed_norm = eln.p;
  x = eln.out;
  Grid g{B, gh, gw, D};
  for (int si = 0;; ++si) {
    SwinStage st;
    st.dim = static_cast<int>(g.c);
    st.grid_h = static_cast<int>(g.h);
    st.grid_w = static_cast<int>(g.w);
    while (!ResidualAdds(f, x).empty()) {
      const std::string where = "block " + std::to_string(m.blocks.size()) + " (stage " +
                                std::to_string(si) + ")";
      ADALOG_CHECK(ResidualAdds(f, x).size() == 1, where, ": residual stream '", x, "' feeds ",
                   ResidualAdds(f, x).size(), " Adds");
      ADALOG_CHECK(m.blocks.size() < 4096, "too many blocks");
      BlockParams blk;
      x = MatchSwinBlock(f, x, g, where, &blk, notes);
      m.blocks.push_back(std::move(blk));
      ++st.depth;
    }
    ADALOG_CHECK(st.depth > 0, "Swin: stage ", si, " has no blocks at '", x, "'");
    LnMatch fin;
    if (MatchLayerNorm(f, x, &fin)) {
      m.swin.stages.push_back(std::move(st));
      m.norm = fin.p;
      x = fin.out;
      break;
    }
    st.has_merge = true;
    const std::string where = "patch merge after stage " + std::to_string(si);
    x = MatchMerge(f, x, g, where, &st.merge);
    notes->push_back(where + ": " + std::to_string(g.h) + "x" + std::to_string(g.w) + "x" +
                     std::to_string(g.c) + " -> " + std::to_string((g.h + 1) / 2) + "x" +
                     std::to_string((g.w + 1) / 2) + "x" + std::to_string(st.merge.reduction.out));
    g = Grid{B, (g.h + 1) / 2, (g.w + 1) / 2, st.merge.reduction.out};
    m.swin.stages.push_back(std::move(st));
    ADALOG_CHECK(m.swin.stages.size() < 64, "too many Swin stages");
  }
  // Pooling: layout ops to a GlobalAveragePool whose every (image, channel) averages all tokens.
  Tensor map;
  const Node* last = nullptr;
  const std::string gin = PropagateLayout(f, x, CodeMap(f.Value(x).dims), &map, &last);
  const auto gap = f.Consumers(gin);
  ADALOG_CHECK(gap.size() == 1 && gap[0]->op == "GlobalAveragePool", "Swin: the final norm '", x,
               "' is not average-pooled (", gap.empty() ? "no reader" : gap[0]->Describe(), ")");
  const int64_t L = g.tokens();
  bool ok = map.rank() >= 3 && map.dims[0] == B && map.dims[1] == g.c && map.numel() == B * L * g.c;
  for (int64_t bc = 0; ok && bc < B * g.c; ++bc) {
    std::vector<int64_t> got(map.i.begin() + bc * L, map.i.begin() + (bc + 1) * L), want;
    for (int64_t l = 0; l < L; ++l) want.push_back(((bc / g.c) * L + l) * g.c + bc % g.c + 1);
    std::sort(got.begin(), got.end());
    ok = got == want;
  }
  ADALOG_CHECK(ok, gap[0]->Describe(), ": does not average every channel over all tokens of an image");
  std::string pooled = gap[0]->outputs[0];
  for (int step = 0; step < 4 && f.Value(pooled).dims != std::vector<int64_t>{B, g.c}; ++step) {
    const auto c = f.Consumers(pooled);
    ADALOG_CHECK(c.size() == 1 && (c[0]->op == "Flatten" || c[0]->op == "Reshape" ||
                                   c[0]->op == "Squeeze"),
                 "Swin: pooled features '", pooled, "' are not flattened to [batch, channels]");
    pooled = c[0]->outputs[0];
  }
  ADALOG_CHECK(f.Value(pooled).dims == (std::vector<int64_t>{B, g.c}), "Swin: pooled features '",
               pooled, "' have shape ", ShapeStr(f.Value(pooled).dims));
  LinearMatch head;
  ADALOG_CHECK(FindLinear(f, pooled, &head), "Swin: no classifier Linear after '", pooled, "'");
  m.head = head.p;
  ADALOG_CHECK(std::find(f.outputs.begin(), f.outputs.end(), head.out) != f.outputs.end() &&
                   f.outputs.size() == 1,
               "Swin: classifier output '", head.out, "' is not the graph's only output");
  m.style = f.Value(x).rank() == 4 ? "swin-torchvision" : "swin-timm";
  notes->push_back("head: " + std::to_string(m.head.out) + " classes, average pooling (" + head.desc + ")");
  return m;
}

}  // namespace graph
}  // namespace adalog
