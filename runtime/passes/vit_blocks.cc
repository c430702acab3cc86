// ViT recognition on the folded graph (runtime/passes/vit_blocks.h).
#include "runtime/passes/vit_blocks.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <map>
#include <set>
#include <sstream>

#include "quant/error.h"

namespace adalog {
namespace graph {
namespace {

bool IsScalarConst(const Folded& f, const std::string& name, double* v = nullptr) {
  if (name.empty() || !f.IsConst(name)) return false;
  const Tensor& t = f.Value(name);
  if (t.numel() != 1) return false;
  if (v) *v = t.AtF(0);
  return true;
}

// The other input of a binary node, given one of them.
const std::string& Other(const Node& n, const std::string& one) {
  return n.inputs[0] == one ? n.inputs[1] : n.inputs[0];
}

// Tensor row-major iota (identity index map) of `dims`.
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

// ---------------------------------------------------------------------------------------------
// Linear layers on real tensors: MatMul(x, W[in,out]) (+ Add bias[out]) or Gemm.

struct LinearMatch {
  LinearParams p;
  std::string out;  // output tensor (after the bias Add if any)
  std::string desc;
};

bool MatchLinearAt(const Folded& f, const Node& n, const std::string& x, LinearMatch* m) {
  if (n.op == "MatMul") {
    if (n.inputs.size() != 2 || n.inputs[0] != x || !f.IsConst(n.inputs[1])) return false;
    const Tensor& w = f.Value(n.inputs[1]);
    if (w.rank() != 2 || w.dtype != DType::kFloat) return false;
    const int64_t in = w.dims[0], out = w.dims[1];
    m->p.in = static_cast<int>(in);
    m->p.out = static_cast<int>(out);
    m->p.weight.assign(static_cast<size_t>(in * out), 0.f);
    for (int64_t i = 0; i < in; ++i) {
      for (int64_t o = 0; o < out; ++o) m->p.weight[o * in + i] = w.f[i * out + o];
    }
    m->p.bias.assign(static_cast<size_t>(out), 0.f);
    m->out = n.outputs[0];
    m->desc = "MatMul";
    const auto cons = f.Consumers(m->out);
    if (cons.size() == 1 && cons[0]->op == "Add") {
      const std::string& b = Other(*cons[0], m->out);
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
    const int64_t in = tb ? w.dims[1] : w.dims[0], out = tb ? w.dims[0] : w.dims[1];
    m->p.in = static_cast<int>(in);
    m->p.out = static_cast<int>(out);
    if (tb) {
      m->p.weight = w.f;
    } else {
      m->p.weight.assign(static_cast<size_t>(in * out), 0.f);
      for (int64_t i = 0; i < in; ++i) {
        for (int64_t o = 0; o < out; ++o) m->p.weight[o * in + i] = w.f[i * out + o];
      }
    }
    m->p.bias.assign(static_cast<size_t>(out), 0.f);
    if (n.inputs.size() > 2 && !n.inputs[2].empty()) {
      ADALOG_CHECK(f.IsConst(n.inputs[2]) && f.Value(n.inputs[2]).numel() == out &&
                       f.Value(n.inputs[2]).dtype == DType::kFloat,
                   n.Describe(), ": Gemm bias must be a constant of ", out, " values");
      m->p.bias = f.Value(n.inputs[2]).f;
    }
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

// ---------------------------------------------------------------------------------------------
// Element-wise regions (decomposed LayerNorm, GELU): grown from a start tensor, evaluated on
// probe values.

struct Region {
  std::vector<const Node*> nodes;  // topological order
  std::string out;
};

// Grows the region of nodes in `ops` whose non-constant inputs are all `start` or region tensors.
// `accept` may veto further nodes (e.g. a ReduceMean that is not over the last axis).
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

// Evaluates the region on probe data for `start` (and optionally `extra` -> data).
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

double GeluErf(double x) { return 0.5 * x * (1.0 + std::erf(x / std::sqrt(2.0))); }
double GeluTanh(double x) {
  const double c = std::sqrt(2.0 / M_PI);
  return 0.5 * x * (1.0 + std::tanh(c * (x + 0.044715 * x * x * x)));
}

// Recognizes GELU applied to `h`; returns the output tensor name.
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

struct LnMatch {
  LayerNormParams p;
  std::string out;
  std::string kind;
  std::vector<const Node*> nodes;
};

bool LastAxisOnly(const Node& n, const Folded& f, int rank) {
  std::vector<int64_t> axes = n.GetInts("axes");
  if (axes.empty() && n.inputs.size() > 1 && f.IsConst(n.inputs[1])) {
    const Tensor& t = f.Value(n.inputs[1]);
    for (int64_t k = 0; k < t.numel(); ++k) axes.push_back(t.AtI(k));
  }
  return axes.size() == 1 && (axes[0] == -1 || axes[0] == rank - 1) &&
         n.GetInt("keepdims", 1) == 1;
}

// LayerNorm over the last axis of `x`: LayerNormalization (opset 17) or its decomposition.
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
    Region r = GrowRegion(f, sub->outputs[0], kOps, [&](const Node& n) {
      return n.op != "ReduceMean" || LastAxisOnly(n, f, rank);
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

// ---------------------------------------------------------------------------------------------
// Attention: abstract interpretation with index maps.
//
// A "space" is a virtual [B][N][C] tensor; an index map holds, per element, the code
// (b*N + n)*C + c of the space element it copies. Space 0 is the attention input (LN output).

struct Space {
  int64_t c = 0;
  int linear = -1;      // the Linear that produced it (-1: the input or the merged heads)
  int from_space = -1;  // the Linear's input space
};

struct Abs {
  enum Kind { kMap, kScores, kProbs } kind = kMap;
  int space = 0;
  Tensor idx;
  double scale = 1.0;
  bool bias_open = false;  // fresh Linear output; an Add of a bias vector may follow
  // kScores / kProbs: the per-leading-index (b, h) table and roles.
  std::vector<std::pair<int64_t, int64_t>> table;
  int q_space = -1, k_space = -1, q_sec = -1, k_sec = -1;
  std::vector<int64_t> lead;  // leading dims
};

struct AttnResult {
  LinearParams qkv, proj;
  int heads = 0;
  float scale = 0;
  std::string out;  // residual Add output
  std::string layout;
  bool seq_first = false;
};

class AttentionTracer {
 public:
  AttentionTracer(const Folded& f, int64_t b, int64_t n, int64_t d, std::string where)
      : f_(f), B_(b), N_(n), D_(d), where_(std::move(where)) {}

  AttnResult Trace(const std::string& y, const std::string& x, const Node* residual);

 private:
  Abs Linear(const Node& node, const Abs& a, const Tensor& w, bool trans_w, const Tensor* bias);
  void DecodeHeads(const Abs& a, bool transposed, int* space, int* sec,
                   std::vector<std::pair<int64_t, int64_t>>* table, int64_t* hd,
                   std::vector<int64_t>* lead, const Node& at);
  [[noreturn]] void Bad(const Node& n, const std::string& why) {
    Fail(where_, ": attention not recognized at ", n.Describe(), ": ", why);
  }

  const Folded& f_;
  int64_t B_, N_, D_;
  std::string where_;
  std::vector<Space> spaces_;
  std::vector<LinearParams> linears_;
  int64_t hd_ = 0;
  float scale_ = 0;
  int roles_space_[3] = {-1, -1, -1}, roles_sec_[3] = {-1, -1, -1};
  std::vector<std::pair<int64_t, int64_t>> table_;
  int merged_space_ = -1;
  bool seq_first_ = false;
  std::set<std::string> ops_seen_;
};

Abs AttentionTracer::Linear(const Node& node, const Abs& a, const Tensor& w, bool trans_w,
                            const Tensor* bias) {
  if (a.kind != Abs::kMap || a.scale != 1.0 || a.bias_open) Bad(node, "Linear on a non-plain input");
  const int64_t in = trans_w ? w.dims[1] : w.dims[0];
  const int64_t out = trans_w ? w.dims[0] : w.dims[1];
  if (in <= 0 || out <= 0) Bad(node, "empty weight");
  const Space& s = spaces_[a.space];
  if (a.idx.dims.empty() || a.idx.dims.back() != in || s.c != in) {
    Bad(node, "Linear input is not whole tokens");
  }
  const int64_t rows = a.idx.numel() / in;
  if (a.idx.rank() >= 2 && a.idx.dims[0] == N_ && a.idx.dims[1] == B_ && N_ != B_) {
    seq_first_ = true;
  }
  Abs r;
  r.kind = Abs::kMap;
  std::vector<int64_t> od = a.idx.dims;
  od.back() = out;
  r.idx = MakeTensor(DType::kInt64, od, where_ + " index map");
  for (int64_t row = 0; row < rows; ++row) {
    const int64_t base = a.idx.i[row * in];
    if (base % in != 0) Bad(node, "Linear rows are not token-aligned");
    for (int64_t c = 0; c < in; ++c) {
      if (a.idx.i[row * in + c] != base + c) Bad(node, "Linear rows are not whole tokens");
    }
    const int64_t tok = base / in;
    for (int64_t c = 0; c < out; ++c) r.idx.i[row * out + c] = tok * out + c;
  }
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
  lp.bias.assign(static_cast<size_t>(out), 0.f);
  if (bias) lp.bias = bias->f;
  linears_.push_back(std::move(lp));
  spaces_.push_back({out, static_cast<int>(linears_.size()) - 1, a.space});
  r.space = static_cast<int>(spaces_.size()) - 1;
  r.bias_open = bias == nullptr;
  return r;
}

void AttentionTracer::DecodeHeads(const Abs& a, bool transposed, int* space, int* sec,
                                  std::vector<std::pair<int64_t, int64_t>>* table, int64_t* hd,
                                  std::vector<int64_t>* lead, const Node& at) {
  if (a.kind != Abs::kMap || a.bias_open) Bad(at, "operand is not a projected token tensor");
  const Tensor& t = a.idx;
  if (t.rank() < 3) Bad(at, "operand rank < 3");
  const int64_t r0 = t.dims[t.rank() - 2], r1 = t.dims[t.rank() - 1];
  const int64_t n = transposed ? r1 : r0, d = transposed ? r0 : r1;
  if (n != N_ || d <= 0 || D_ % d != 0) Bad(at, "operand is not [.., tokens, head_dim]");
  *hd = d;
  *space = a.space;
  const int64_t C = spaces_[a.space].c;
  lead->assign(t.dims.begin(), t.dims.end() - 2);
  const int64_t L = t.numel() / (n * d);
  table->clear();
  *sec = -1;
  for (int64_t l = 0; l < L; ++l) {
    const int64_t code0 = t.i[l * n * d];
    const int64_t c0 = code0 % C, tok = code0 / C;
    const int64_t b = tok / N_;
    if (tok % N_ != 0) Bad(at, "head rows do not start at token 0");
    const int64_t s = c0 / D_, h = (c0 % D_) / d;
    if ((c0 % D_) % d != 0) Bad(at, "head columns are not head-aligned");
    if (*sec < 0) *sec = static_cast<int>(s);
    if (s != *sec) Bad(at, "operand mixes q/k/v sections");
    table->push_back({b, h});
    for (int64_t i = 0; i < n; ++i) {
      for (int64_t j = 0; j < d; ++j) {
        const int64_t e = transposed ? (l * d + j) * n + i : (l * n + i) * d + j;
        const int64_t want = (b * N_ + i) * C + s * D_ + h * d + j;
        if (t.i[e] != want) Bad(at, "operand is not a per-head view of a projection");
      }
    }
  }
}

AttnResult AttentionTracer::Trace(const std::string& y, const std::string& x,
                                  const Node* residual) {
  std::map<std::string, Abs> abs;
  spaces_.push_back({D_, -1, -1});
  Abs a0;
  a0.idx = Iota(f_.Value(y).dims, where_ + " index map");
  abs[y] = std::move(a0);
  const Node* exit = nullptr;
  std::string branch;
  for (const Node& n : f_.compute) {
    bool any = false, all = true;
    for (const auto& in : n.inputs) {
      if (in.empty() || f_.IsConst(in)) continue;
      if (abs.count(in)) {
        any = true;
      } else {
        all = false;
      }
    }
    if (!any) continue;
    if (!all) {
      if (exit) Bad(n, "attention branch leaves through more than one node");
      exit = &n;
      for (const auto& in : n.inputs) {
        if (abs.count(in)) branch = in;
      }
      continue;
    }
    ops_seen_.insert(n.op);
    auto in_abs = [&](size_t k) -> const Abs& { return abs.at(n.inputs[k]); };
    if (n.op == "MatMul" && f_.IsConst(n.inputs[1])) {
      const Tensor& w = f_.Value(n.inputs[1]);
      if (w.rank() != 2 || w.dtype != DType::kFloat) Bad(n, "weight is not a matrix");
      abs[n.outputs[0]] = Linear(n, in_abs(0), w, false, nullptr);
    } else if (n.op == "Gemm") {
      if (!f_.IsConst(n.inputs[1]) || n.GetInt("transA", 0) != 0 ||
          n.GetFloat("alpha", 1.f) != 1.f || n.GetFloat("beta", 1.f) != 1.f) {
        Bad(n, "Gemm is not a plain Linear");
      }
      const Tensor* bias = nullptr;
      if (n.inputs.size() > 2 && !n.inputs[2].empty()) {
        bias = &f_.Value(n.inputs[2]);
        const Tensor& w = f_.Value(n.inputs[1]);
        const int64_t out = n.GetInt("transB", 0) ? w.dims[0] : w.dims[1];
        if (bias->numel() != out || bias->dtype != DType::kFloat) Bad(n, "bad Gemm bias");
      }
      abs[n.outputs[0]] =
          Linear(n, in_abs(0), f_.Value(n.inputs[1]), n.GetInt("transB", 0) != 0, bias);
    } else if (n.op == "Add") {
      const bool c0 = f_.IsConst(n.inputs[0]);
      const std::string& v = c0 ? n.inputs[1] : n.inputs[0];
      const std::string& c = c0 ? n.inputs[0] : n.inputs[1];
      Abs a = abs.at(v);
      if (!f_.IsConst(c) || a.kind != Abs::kMap || !a.bias_open) Bad(n, "unexpected Add");
      const Tensor& bt = f_.Value(c);
      LinearParams& lp = linears_[spaces_[a.space].linear];
      if (bt.numel() != lp.out || bt.dtype != DType::kFloat || bt.dims.empty() ||
          bt.dims.back() != lp.out) {
        Bad(n, "Add is not a bias of the preceding projection");
      }
      lp.bias = bt.f;
      a.bias_open = false;
      abs[n.outputs[0]] = std::move(a);
    } else if ((n.op == "Mul" || n.op == "Div") &&
               (IsScalarConst(f_, n.inputs[0]) || IsScalarConst(f_, n.inputs[1]))) {
      double c = 0;
      const bool c0 = IsScalarConst(f_, n.inputs[0], &c);
      if (!c0) IsScalarConst(f_, n.inputs[1], &c);
      if (n.op == "Div" && c0) Bad(n, "constant divided by activations");
      if (c == 0 || !std::isfinite(c)) Bad(n, "zero or non-finite scale");
      Abs a = abs.at(c0 ? n.inputs[1] : n.inputs[0]);
      if (a.bias_open) Bad(n, "scale before the projection bias");
      a.scale *= n.op == "Mul" ? c : 1.0 / c;  // a scalar constant keeps the map's shape
      abs[n.outputs[0]] = std::move(a);
    } else if (n.op == "MatMul") {
      const Abs& A = in_abs(0);
      const Abs& Bm = in_abs(1);
      if (A.kind == Abs::kMap && Bm.kind == Abs::kMap) {
        if (hd_ != 0) Bad(n, "more than one attention score product");
        Abs s;
        s.kind = Abs::kScores;
        int64_t hdq = 0, hdk = 0;
        std::vector<std::pair<int64_t, int64_t>> tk;
        std::vector<int64_t> lk;
        DecodeHeads(A, false, &s.q_space, &s.q_sec, &s.table, &hdq, &s.lead, n);
        DecodeHeads(Bm, true, &s.k_space, &s.k_sec, &tk, &hdk, &lk, n);
        if (hdq != hdk || tk != s.table || lk != s.lead) Bad(n, "q and k heads do not line up");
        hd_ = hdq;
        s.scale = A.scale * Bm.scale;
        abs[n.outputs[0]] = std::move(s);
      } else if (A.kind == Abs::kProbs && Bm.kind == Abs::kMap) {
        int vs = -1, vsec = -1;
        int64_t hdv = 0;
        std::vector<std::pair<int64_t, int64_t>> tv;
        std::vector<int64_t> lv;
        DecodeHeads(Bm, false, &vs, &vsec, &tv, &hdv, &lv, n);
        if (hdv != hd_ || tv != A.table || lv != A.lead) Bad(n, "v heads do not line up with q/k");
        if (Bm.scale != 1.0) Bad(n, "scaled v is not supported");
        const int64_t H = D_ / hd_;
        std::set<std::pair<int64_t, int64_t>> cover(A.table.begin(), A.table.end());
        for (const auto& [b, h] : cover) {
          if (b < 0 || b >= B_ || h < 0 || h >= H) Bad(n, "head table out of range");
        }
        if (static_cast<int64_t>(cover.size()) != B_ * H || A.table.size() != cover.size()) {
          Bad(n, "heads do not cover every (batch, head) exactly once");
        }
        roles_space_[0] = A.q_space;
        roles_sec_[0] = A.q_sec;
        roles_space_[1] = A.k_space;
        roles_sec_[1] = A.k_sec;
        roles_space_[2] = vs;
        roles_sec_[2] = vsec;
        table_ = A.table;
        scale_ = static_cast<float>(A.scale);
        spaces_.push_back({D_, -1, -1});
        merged_space_ = static_cast<int>(spaces_.size()) - 1;
        Abs o;
        o.space = merged_space_;
        std::vector<int64_t> od = A.lead;
        od.push_back(N_);
        od.push_back(hd_);
        o.idx = MakeTensor(DType::kInt64, od, where_ + " index map");
        int64_t e = 0;
        for (const auto& [b, h] : A.table) {
          for (int64_t i = 0; i < N_; ++i) {
            for (int64_t j = 0; j < hd_; ++j) o.idx.i[e++] = (b * N_ + i) * D_ + h * hd_ + j;
          }
        }
        abs[n.outputs[0]] = std::move(o);
      } else {
        Bad(n, "unexpected MatMul operands");
      }
    } else if (n.op == "Softmax") {
      const Abs& s = in_abs(0);
      const int64_t axis = n.GetInt("axis", -1);
      const int64_t rank = static_cast<int64_t>(s.lead.size()) + 2;
      if (s.kind != Abs::kScores || (axis != -1 && axis != rank - 1)) {
        Bad(n, "Softmax is not over the keys of the scores");
      }
      Abs p = s;
      p.kind = Abs::kProbs;
      abs[n.outputs[0]] = std::move(p);
    } else if (IsLayoutOp(n.op) && n.op != "Expand" && n.op != "Concat") {
      const Abs& a = in_abs(0);
      if (a.kind != Abs::kMap || a.bias_open) Bad(n, "layout op on scores or before the bias");
      std::vector<const Tensor*> ins;
      for (size_t k = 0; k < n.inputs.size(); ++k) {
        ins.push_back(n.inputs[k].empty() ? nullptr
                      : k == 0            ? &a.idx
                                          : &f_.Value(n.inputs[k]));
      }
      std::vector<Tensor> outs = EvalNode(n, ins, f_.opset);
      for (size_t k = 0; k < n.outputs.size() && k < outs.size(); ++k) {
        Abs o = a;
        o.idx = std::move(outs[k]);
        abs[n.outputs[k]] = std::move(o);
      }
    } else {
      Bad(n, "op not expected inside attention");
    }
  }
  if (!exit) Fail(where_, ": attention branch from '", y, "' never rejoins the residual stream");
  if (exit != residual) {
    Bad(*exit, "attention branch does not end in the residual Add on '" + x + "'");
  }
  const Abs& br = abs.at(branch);
  if (br.kind != Abs::kMap || br.bias_open || br.scale != 1.0 ||
      br.idx.dims != f_.Value(x).dims || !IsIota(br.idx) || spaces_[br.space].linear < 0 ||
      spaces_[br.space].from_space != merged_space_ || merged_space_ < 0) {
    Bad(*exit, "residual input is not the output projection of the merged heads");
  }
  AttnResult r;
  r.heads = static_cast<int>(D_ / hd_);
  r.scale = scale_;
  r.proj = linears_[spaces_[br.space].linear];
  // Assemble qkv rows: q, then k, then v, each head-major.
  r.qkv.in = static_cast<int>(D_);
  r.qkv.out = static_cast<int>(3 * D_);
  std::set<int> lin_ids;
  for (int role = 0; role < 3; ++role) {
    const Space& s = spaces_[roles_space_[role]];
    if (s.linear < 0 || s.from_space != 0) {
      Fail(where_, ": attention ", "qkv"[role], " is not a projection of the block input");
    }
    lin_ids.insert(s.linear);
    const LinearParams& lp = linears_[s.linear];
    const int64_t off = roles_sec_[role] * D_;
    if (off + D_ > lp.out) Fail(where_, ": attention projection too small");
    r.qkv.weight.insert(r.qkv.weight.end(), lp.weight.begin() + off * D_,
                        lp.weight.begin() + (off + D_) * D_);
    r.qkv.bias.insert(r.qkv.bias.end(), lp.bias.begin() + off, lp.bias.begin() + off + D_);
  }
  r.layout = lin_ids.size() == 1 ? "fused qkv" : "separate q/k/v";
  if (ops_seen_.count("Slice") || ops_seen_.count("Split")) r.layout += " (sliced)";
  r.seq_first = seq_first_;
  r.out = exit->outputs[0];
  return r;
}

// Follows single-consumer layout ops from `t` with index map `m` until `done(map)`.
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
    std::vector<const Tensor*> ins;
    for (size_t k = 0; k < n.inputs.size(); ++k) {
      ins.push_back(n.inputs[k].empty() ? nullptr : k == 0 ? &m : &f.Value(n.inputs[k]));
    }
    std::vector<Tensor> outs = EvalNode(n, ins, f.opset);
    if (outs.size() != 1) break;
    m = std::move(outs[0]);
    t = n.outputs[0];
  }
  Fail(what, ": expected a [batch, tokens, dim] = ", ShapeStr(want_dims), " view, not found after '",
       t, "'");
}

}  // namespace

VitModel RecognizeVit(const Folded& f, std::vector<std::string>* notes) {
  VitModel m;
  std::vector<std::string> local;
  if (!notes) notes = &local;
  const int64_t B = f.batch;
  const Tensor& xin = f.Value(f.input);

  // Patch embedding.
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
  m.embed.in_channels = static_cast<int>(xin.dims[1]);
  m.embed.image_h = static_cast<int>(xin.dims[2]);
  m.embed.image_w = static_cast<int>(xin.dims[3]);
  m.embed.patch = static_cast<int>(p);
  m.embed.dim = static_cast<int>(D);
  m.dim = static_cast<int>(D);
  m.embed.weight = cw.f;
  if (conv->inputs.size() > 2 && !conv->inputs[2].empty()) {
    ADALOG_CHECK(f.IsConst(conv->inputs[2]) && f.Value(conv->inputs[2]).numel() == D,
                 conv->Describe(), ": bias must be a constant of ", D, " values");
    m.embed.bias = f.Value(conv->inputs[2]).f;
  } else {
    m.embed.bias.assign(static_cast<size_t>(D), 0.f);
  }
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
    } else if (n.op == "Add" && !pos_seen && f.IsConst(Other(n, x))) {
      const Tensor& t = f.Value(Other(n, x));
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
        std::vector<const Tensor*> ins;
        for (size_t k = 0; k < n->inputs.size(); ++k) {
          ins.push_back(n->inputs[k].empty() ? nullptr : k == 0 ? &map : &f.Value(n->inputs[k]));
        }
        std::vector<Tensor> outs = EvalNode(*n, ins, f.opset);
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
        std::vector<const Tensor*> ins;
        Tensor probe = Iota(f.Value(x).dims, "pooling index map");
        for (size_t k = 0; k < c->inputs.size(); ++k) {
          ins.push_back(c->inputs[k].empty() ? nullptr : k == 0 ? &probe : &f.Value(c->inputs[k]));
        }
        const Tensor sl = EvalNode(*c, ins, f.opset)[0];
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
      std::vector<int64_t> axes = rm->GetInts("axes");
      if (axes.empty() && rm->inputs.size() > 1 && f.IsConst(rm->inputs[1])) {
        for (int64_t k = 0; k < f.Value(rm->inputs[1]).numel(); ++k) {
          axes.push_back(f.Value(rm->inputs[1]).AtI(k));
        }
      }
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
                     Other(*c0[0], heads[0].lin.out) == heads[1].lin.out,
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
