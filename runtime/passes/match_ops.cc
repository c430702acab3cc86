// Sub-graph matchers shared by the recognizers (runtime/passes/match_ops.h).
#include "runtime/passes/match_ops.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "quant/error.h"

namespace adalog {
namespace graph {

bool IsScalarConst(const Folded& f, const std::string& name, double* v) {
  if (name.empty() || !f.IsConst(name)) return false;
  const Tensor& t = f.Value(name);
  if (t.numel() != 1) return false;
  if (v) *v = t.AtF(0);
  return true;
}

const std::string& OtherInput(const Node& n, const std::string& one) {
  return n.inputs[0] == one ? n.inputs[1] : n.inputs[0];
}

std::vector<int64_t> ReduceAxes(const Node& n, const Folded& f) {
  std::vector<int64_t> axes = n.GetInts("axes");
  if (axes.empty() && n.inputs.size() > 1 && f.IsConst(n.inputs[1])) {
    const Tensor& t = f.Value(n.inputs[1]);
    for (int64_t k = 0; k < t.numel(); ++k) axes.push_back(t.AtI(k));
  }
  return axes;
}

Tensor Iota(const std::vector<int64_t>& dims, const std::string& what) {
  Tensor t = MakeTensor(DType::kInt64, dims, what);
  for (size_t k = 0; k < t.i.size(); ++k) t.i[k] = static_cast<int64_t>(k);
  return t;
}

bool IsIota(const Tensor& t) {
  for (size_t k = 0; k < t.i.size(); ++k) {
    if (t.i[k] != static_cast<int64_t>(k)) return false;
  }
  return true;
}

std::vector<Tensor> EvalOnMap(const Folded& f, const Node& n, const Tensor& map) {
  std::vector<const Tensor*> ins;
  for (size_t k = 0; k < n.inputs.size(); ++k) {
    ins.push_back(n.inputs[k].empty() ? nullptr : k == 0 ? &map : &f.Value(n.inputs[k]));
  }
  return EvalNode(n, ins, f.opset);
}

std::string FollowLayout(const Folded& f, std::string t, Tensor m,
                         const std::vector<int64_t>& want_dims, const std::string& what) {
  for (int step = 0; step < 16; ++step) {
    if (m.dims == want_dims && IsIota(m)) return t;
    const auto cons = f.Consumers(t);
    if (cons.size() != 1 || !IsLayoutOp(cons[0]->op) || cons[0]->op == "Concat" ||
        cons[0]->op == "Expand" || cons[0]->inputs[0] != t) {
      break;
    }
    const Node& n = *cons[0];
    std::vector<Tensor> outs = EvalOnMap(f, n, m);
    if (outs.size() != 1) break;
    m = std::move(outs[0]);
    t = n.outputs[0];
  }
  Fail(what, ": expected a [batch, tokens, dim] = ", ShapeStr(want_dims), " view, not found after '",
       t, "'");
}

LinearParams MakeLinear(const Tensor& w, bool trans_w, const Tensor* bias) {
  const int64_t in = trans_w ? w.dims[1] : w.dims[0], out = trans_w ? w.dims[0] : w.dims[1];
  LinearParams lp;
  lp.in = static_cast<int>(in);
  lp.out = static_cast<int>(out);
  if (trans_w) {
    lp.weight = w.f;
  } else {
    lp.weight.assign(static_cast<size_t>(in * out), 0.f);
    for (int64_t i = 0; i < in; ++i) {
      for (int64_t o = 0; o < out; ++o) lp.weight[o * in + i] = w.f[i * out + o];
    }
  }
  if (bias) {
    lp.bias = bias->f;
  } else {
    lp.bias.assign(static_cast<size_t>(out), 0.f);
  }
  return lp;
}

bool MatchLinearAt(const Folded& f, const Node& n, const std::string& x, LinearMatch* m) {
  if (n.op == "MatMul") {
    if (n.inputs.size() != 2 || n.inputs[0] != x || !f.IsConst(n.inputs[1])) return false;
    const Tensor& w = f.Value(n.inputs[1]);
    if (w.rank() != 2 || w.dtype != DType::kFloat) return false;
    const int64_t out = w.dims[1];
    m->p = MakeLinear(w, false, nullptr);
    m->out = n.outputs[0];
    m->desc = "MatMul";
    const auto cons = f.Consumers(m->out);
    if (cons.size() == 1 && cons[0]->op == "Add") {
      const std::string& b = OtherInput(*cons[0], m->out);
      if (f.IsConst(b) && f.Value(b).numel() == out && f.Value(b).dtype == DType::kFloat &&
          f.Value(b).dims.size() >= 1 && f.Value(b).dims.back() == out) {
        m->p.bias = f.Value(b).f;
        m->out = cons[0]->outputs[0];
        m->desc = "MatMul+Add";
      }
    }
    return true;
  }
  if (n.op == "Gemm") {
    if (n.inputs.size() < 2 || n.inputs[0] != x || !f.IsConst(n.inputs[1])) return false;
    ADALOG_CHECK(n.GetInt("transA", 0) == 0 && n.GetFloat("alpha", 1.f) == 1.f &&
                     n.GetFloat("beta", 1.f) == 1.f,
                 n.Describe(), ": Gemm with transA/alpha/beta is not a plain Linear");
    const Tensor& w = f.Value(n.inputs[1]);
    if (w.rank() != 2 || w.dtype != DType::kFloat) return false;
    const bool tb = n.GetInt("transB", 0) != 0;
    const int64_t out = tb ? w.dims[0] : w.dims[1];
    const Tensor* bias = nullptr;
    if (n.inputs.size() > 2 && !n.inputs[2].empty()) {
      ADALOG_CHECK(f.IsConst(n.inputs[2]) && f.Value(n.inputs[2]).numel() == out &&
                       f.Value(n.inputs[2]).dtype == DType::kFloat,
                   n.Describe(), ": Gemm bias must be a constant of ", out, " values");
      bias = &f.Value(n.inputs[2]);
    }
    m->p = MakeLinear(w, tb, bias);
    m->out = n.outputs[0];
    m->desc = "Gemm";
    return true;
  }
  return false;
}

bool FindLinear(const Folded& f, const std::string& x, LinearMatch* m) {
  const auto cons = f.Consumers(x);
  if (cons.size() != 1) return false;
  return MatchLinearAt(f, *cons[0], x, m);
}

Region GrowRegion(const Folded& f, const std::string& start, const std::set<std::string>& ops,
                  const std::function<bool(const Node&)>& accept) {
  Region r;
  std::set<std::string> in_region = {start};
  const Node* first = nullptr;
  for (const Node* c : f.Consumers(start)) {
    if (!first || c < first) first = c;
  }
  if (!first) return r;
  for (const Node& n : f.compute) {
    if (&n < first) continue;
    if (!ops.count(n.op)) continue;
    bool touches = false, ok = true;
    for (const auto& in : n.inputs) {
      if (in.empty()) continue;
      if (in_region.count(in)) {
        touches = true;
      } else if (!f.IsConst(in)) {
        ok = false;
      }
    }
    if (!touches || !ok || !accept(n)) continue;
    r.nodes.push_back(&n);
    for (const auto& o : n.outputs) in_region.insert(o);
  }
  // Outputs: region tensors read outside the region or graph outputs.
  std::set<const Node*> members(r.nodes.begin(), r.nodes.end());
  std::vector<std::string> outs;
  for (const Node* n : r.nodes) {
    for (const auto& o : n->outputs) {
      bool outside = std::find(f.outputs.begin(), f.outputs.end(), o) != f.outputs.end();
      for (const Node* c : f.Consumers(o)) outside = outside || !members.count(c);
      if (outside) outs.push_back(o);
    }
  }
  if (outs.size() == 1) r.out = outs[0];
  return r;
}

Tensor EvalRegion(const Folded& f, const Region& r, const std::map<std::string, Tensor>& seed) {
  std::map<std::string, Tensor> vals = seed;
  for (const Node* n : r.nodes) {
    std::vector<const Tensor*> ins;
    for (const auto& in : n->inputs) {
      if (in.empty()) {
        ins.push_back(nullptr);
      } else if (vals.count(in)) {
        ins.push_back(&vals.at(in));
      } else {
        ins.push_back(&f.Value(in));
      }
    }
    std::vector<Tensor> outs = EvalNode(*n, ins, f.opset);
    for (size_t k = 0; k < n->outputs.size() && k < outs.size(); ++k) {
      ADALOG_CHECK(outs[k].has_data, n->Describe(), ": cannot evaluate probe");
      vals[n->outputs[k]] = std::move(outs[k]);
    }
  }
  return vals.at(r.out);
}

namespace {

double GeluErf(double x) { return 0.5 * x * (1.0 + std::erf(x / std::sqrt(2.0))); }
double GeluTanh(double x) {
  const double c = std::sqrt(2.0 / M_PI);
  return 0.5 * x * (1.0 + std::tanh(c * (x + 0.044715 * x * x * x)));
}

}  // namespace

std::string MatchGelu(const Folded& f, const std::string& h, GeluKind* kind,
                      const std::string& where) {
  static const std::set<std::string> kOps = {"Mul", "Div", "Add", "Sub", "Erf",
                                             "Tanh", "Pow", "Sqrt"};
  Region r = GrowRegion(f, h, kOps, [](const Node&) { return true; });
  ADALOG_CHECK(!r.nodes.empty() && !r.out.empty(), where,
               ": no GELU (erf or tanh form) found after fc1 output '", h, "'");
  for (const Node* n : r.nodes) {
    for (const auto& in : n->inputs) {
      ADALOG_CHECK(in.empty() || !f.IsConst(in) || f.Value(in).numel() == 1, where,
                   ": activation after fc1 uses a non-scalar constant (", n->Describe(),
                   "); not GELU");
    }
  }
  for (const Node* c : f.Consumers(h)) {
    ADALOG_CHECK(std::find(r.nodes.begin(), r.nodes.end(), c) != r.nodes.end(), where,
                 ": fc1 output '", h, "' is also read by ", c->Describe());
  }
  Tensor probe = MakeTensor(DType::kFloat, {97}, "probe");
  for (int k = 0; k < 97; ++k) probe.f[k] = static_cast<float>(-6.0 + 12.0 * k / 96.0);
  const Tensor y = EvalRegion(f, r, {{h, probe}});
  ADALOG_CHECK(y.numel() == 97 && y.dtype == DType::kFloat, where,
               ": activation after fc1 changes the shape");
  double err_erf = 0, err_tanh = 0;
  for (int k = 0; k < 97; ++k) {
    const double x = probe.f[k];
    const double tol = 1.0 + std::fabs(GeluErf(x));
    err_erf = std::max(err_erf, std::fabs(y.f[k] - GeluErf(x)) / tol);
    err_tanh = std::max(err_tanh, std::fabs(y.f[k] - GeluTanh(x)) / tol);
  }
  if (err_erf < 2e-6) {
    *kind = GeluKind::kErf;
  } else if (err_tanh < 2e-6) {
    *kind = GeluKind::kTanh;
  } else {
    Fail(where, ": activation after fc1 is neither erf-GELU nor tanh-GELU (max error ",
         std::min(err_erf, err_tanh), ")");
  }
  return r.out;
}

bool LastAxisOnly(const Node& n, const Folded& f, int rank) {
  const std::vector<int64_t> axes = ReduceAxes(n, f);
  return axes.size() == 1 && (axes[0] == -1 || axes[0] == rank - 1) &&
         n.GetInt("keepdims", 1) == 1;
}

bool MatchLayerNorm(const Folded& f, const std::string& x, LnMatch* m) {
  const Tensor& xv = f.Value(x);
  if (xv.rank() < 2) return false;
  const int64_t dim = xv.dims.back();
  for (const Node* c : f.Consumers(x)) {
    if (c->op != "LayerNormalization" || c->inputs[0] != x) continue;
    const int64_t axis = c->GetInt("axis", -1);
    ADALOG_CHECK(axis == -1 || axis == xv.rank() - 1, c->Describe(),
                 ": LayerNormalization over axis ", axis, " (only the last axis is supported)");
    ADALOG_CHECK(c->inputs.size() >= 2 && f.IsConst(c->inputs[1]) &&
                     f.Value(c->inputs[1]).numel() == dim,
                 c->Describe(), ": scale must be a constant of ", dim, " values");
    m->p.dim = static_cast<int>(dim);
    m->p.eps = c->GetFloat("epsilon", 1e-5f);
    m->p.gamma = f.Value(c->inputs[1]).f;
    if (c->inputs.size() > 2 && !c->inputs[2].empty()) {
      ADALOG_CHECK(f.IsConst(c->inputs[2]) && f.Value(c->inputs[2]).numel() == dim,
                   c->Describe(), ": bias must be a constant of ", dim, " values");
      m->p.beta = f.Value(c->inputs[2]).f;
    } else {
      m->p.beta.assign(static_cast<size_t>(dim), 0.f);
    }
    m->out = c->outputs[0];
    m->kind = "LN(opset17)";
    m->nodes = {c};
    return true;
  }
  // Decomposition: ReduceMean(x) -> Sub(x, mean) -> ... -> out.
  for (const Node* rm : f.Consumers(x)) {
    if (rm->op != "ReduceMean" || !LastAxisOnly(*rm, f, xv.rank())) continue;
    const std::string& mean = rm->outputs[0];
    const Node* sub = nullptr;
    for (const Node* c : f.Consumers(mean)) {
      if (c->op == "Sub" && c->inputs[0] == x && c->inputs[1] == mean) sub = c;
    }
    if (!sub) continue;
    static const std::set<std::string> kOps = {"Pow", "Mul", "ReduceMean", "Add",
                                               "Sqrt", "Div", "Reciprocal", "Sub"};
    const int rank = xv.rank();
    // One ReduceMean (the variance) besides `rm`: a second one is the next LayerNorm's mean
    // (Swin's patch-embedding norm feeds block 0's LN1 directly) and ends the region.
    int reduce_means = 0;
    Region r = GrowRegion(f, sub->outputs[0], kOps, [&](const Node& n) {
      if (n.op != "ReduceMean") return true;
      return LastAxisOnly(n, f, rank) && ++reduce_means == 1;
    });
    if (r.out.empty()) continue;
    LnMatch lm;
    lm.p.dim = static_cast<int>(dim);
    lm.p.gamma.assign(static_cast<size_t>(dim), 1.f);
    lm.p.beta.assign(static_cast<size_t>(dim), 0.f);
    bool eps_found = false;
    for (const Node* n : r.nodes) {
      for (const auto& in : n->inputs) {
        if (in.empty() || !f.IsConst(in)) continue;
        const Tensor& t = f.Value(in);
        if (t.dtype != DType::kFloat) continue;
        if (n->op == "Mul" && t.numel() == dim) lm.p.gamma = t.f;
        if (n->op == "Add" && t.numel() == dim) lm.p.beta = t.f;
        if (n->op == "Add" && t.numel() == 1) {
          lm.p.eps = t.f[0];
          eps_found = true;
        }
      }
    }
    if (!eps_found) continue;
    // Verify numerically on probe rows.
    const int rows = 3;
    Tensor px = MakeTensor(DType::kFloat, {rows, dim}, "probe");
    for (int64_t k = 0; k < rows * dim; ++k) {
      px.f[k] = static_cast<float>(std::sin(0.37 * k + 0.1) * (1 + k % 7) + 0.25 * (k % 3));
    }
    Tensor pm = MakeTensor(DType::kFloat, {rows, 1}, "probe");
    Tensor pd = px;
    for (int rr = 0; rr < rows; ++rr) {
      double s = 0;
      for (int64_t c = 0; c < dim; ++c) s += px.f[rr * dim + c];
      pm.f[rr] = static_cast<float>(s / dim);
      for (int64_t c = 0; c < dim; ++c) pd.f[rr * dim + c] = px.f[rr * dim + c] - pm.f[rr];
    }
    Tensor py;
    try {
      py = EvalRegion(f, r, {{sub->outputs[0], pd}, {x, px}, {mean, pm}});
    } catch (const Error&) {
      continue;
    }
    if (py.numel() != rows * dim || py.dtype != DType::kFloat) continue;
    double err = 0;
    for (int rr = 0; rr < rows; ++rr) {
      double var = 0;
      for (int64_t c = 0; c < dim; ++c) var += double(pd.f[rr * dim + c]) * pd.f[rr * dim + c];
      var /= dim;
      for (int64_t c = 0; c < dim; ++c) {
        const double ref = pd.f[rr * dim + c] / std::sqrt(var + lm.p.eps) * lm.p.gamma[c] +
                           lm.p.beta[c];
        err = std::max(err, std::fabs(py.f[rr * dim + c] - ref) / (1.0 + std::fabs(ref)));
      }
    }
    if (err > 1e-4) continue;
    lm.out = r.out;
    lm.kind = "LN(decomposed)";
    lm.nodes = r.nodes;
    lm.nodes.push_back(rm);
    lm.nodes.push_back(sub);
    *m = std::move(lm);
    return true;
  }
  return false;
}

const Node* MatchPatchEmbedConv(const Folded& f, PatchEmbedParams* e) {
  const Tensor& xin = f.Value(f.input);
  const Node* conv = nullptr;
  for (const Node* c : f.Consumers(f.input)) {
    if (c->op == "Conv" && c->inputs[0] == f.input) conv = c;
  }
  ADALOG_CHECK(conv, "not a ViT: no patch-embedding Conv found after input '", f.input, "'");
  ADALOG_CHECK(conv->inputs.size() >= 2 && f.IsConst(conv->inputs[1]), conv->Describe(),
               ": patch-embedding weight must be an initializer");
  const Tensor& cw = f.Value(conv->inputs[1]);
  const int64_t D = cw.dims[0], p = cw.dims[2];
  ADALOG_CHECK(D >= 1 && D <= 65536 && p >= 1, conv->Describe(), ": patch-embedding weight shape ",
               ShapeStr(cw.dims));
  {
    std::vector<int64_t> st = conv->GetInts("strides"), pads = conv->GetInts("pads"),
                         dil = conv->GetInts("dilations");
    const bool ok = cw.dims[2] == cw.dims[3] && conv->GetInt("group", 1) == 1 &&
                    st == std::vector<int64_t>{p, p} &&
                    (pads.empty() || pads == std::vector<int64_t>{0, 0, 0, 0}) &&
                    (dil.empty() || dil == std::vector<int64_t>{1, 1});
    ADALOG_CHECK(ok, conv->Describe(), ": not a patch embedding (need square kernel == stride, "
                 "no padding, no dilation, one group)");
    ADALOG_CHECK(xin.dims[2] % p == 0 && xin.dims[3] % p == 0, conv->Describe(), ": image ",
                 xin.dims[2], "x", xin.dims[3], " is not a multiple of patch ", p);
  }
  e->in_channels = static_cast<int>(xin.dims[1]);
  e->image_h = static_cast<int>(xin.dims[2]);
  e->image_w = static_cast<int>(xin.dims[3]);
  e->patch = static_cast<int>(p);
  e->dim = static_cast<int>(D);
  e->weight = cw.f;
  if (conv->inputs.size() > 2 && !conv->inputs[2].empty()) {
    ADALOG_CHECK(f.IsConst(conv->inputs[2]) && f.Value(conv->inputs[2]).numel() == D,
                 conv->Describe(), ": bias must be a constant of ", D, " values");
    e->bias = f.Value(conv->inputs[2]).f;
  } else {
    e->bias.assign(static_cast<size_t>(D), 0.f);
  }
  return conv;
}

}  // namespace graph
}  // namespace adalog
