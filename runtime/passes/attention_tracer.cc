// Attention recognition by index-map tracing (runtime/passes/attention_tracer.h).
#include "runtime/passes/attention_tracer.h"

#include <cmath>
#include <map>

#include "quant/error.h"
#include "runtime/passes/match_ops.h"

namespace adalog {
namespace graph {

void AttentionTracer::Bad(const Node& n, const std::string& why) const {
  Fail(where_, ": attention not recognized at ", n.Describe(), ": ", why);
}

AttentionTracer::Abs AttentionTracer::Linear(const Node& node, const Abs& a, const Tensor& w, bool trans_w,
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
  linears_.push_back(MakeLinear(w, trans_w, bias));
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
      std::vector<Tensor> outs = EvalOnMap(f_, n, a.idx);
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

}  // namespace graph
}  // namespace adalog
