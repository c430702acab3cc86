// Constant folding evaluators for arithmetic, comparisons, casts, Where, reductions, Range and
// ConstantOfShape, and the output shapes of the compute ops (MatMul, Gemm, Conv): eval_ops.h.
#include "runtime/passes/eval_ops.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <set>

namespace adalog {
namespace graph {
namespace eval_ops {

namespace {

bool IsCompareOp(const std::string& op) {
  return op == "Equal" || op == "Less" || op == "Greater" || op == "And" || op == "Or" ||
         op == "LessOrEqual" || op == "GreaterOrEqual";
}

double BinaryF(const std::string& op, double a, double b) {
  if (op == "Add") return a + b;
  if (op == "Sub") return a - b;
  if (op == "Mul") return a * b;
  if (op == "Div") return a / b;
  if (op == "Pow") return std::pow(a, b);
  if (op == "Mod") return std::fmod(a, b);  // floats: only fmod=1 reaches here (EvalMod)
  if (op == "Max") return std::max(a, b);
  if (op == "Min") return std::min(a, b);
  if (op == "Equal") return a == b;
  if (op == "Less") return a < b;
  if (op == "Greater") return a > b;
  if (op == "LessOrEqual") return a <= b;
  if (op == "GreaterOrEqual") return a >= b;
  if (op == "And") return (a != 0) && (b != 0);
  return (a != 0) || (b != 0);  // Or
}

bool Small(int64_t v) { return v > -(int64_t{1} << 31) && v < (int64_t{1} << 31); }

int64_t BinaryI(const Node& n, int64_t a, int64_t b) {
  const std::string& op = n.op;
  // Shape arithmetic stays far from overflow; guard anyway (untrusted constants).
  auto ok = [&](bool c) { ADALOG_CHECK(c, n.Describe(), ": integer overflow on ", a, " and ", b); };
  if (op == "Add") {
    ok((b >= 0) ? a <= std::numeric_limits<int64_t>::max() - b
                : a >= std::numeric_limits<int64_t>::min() - b);
    return a + b;
  }
  if (op == "Sub") {
    ok((b >= 0) ? a >= std::numeric_limits<int64_t>::min() + b
                : a <= std::numeric_limits<int64_t>::max() + b);
    return a - b;
  }
  if (op == "Mul") {
    if (a == 0 || b == 0) return 0;
    ok(Small(a) && Small(b));
    return a * b;
  }
  if (op == "Div") {
    ADALOG_CHECK(b != 0, n.Describe(), ": integer division by zero");
    ok(!(a == std::numeric_limits<int64_t>::min() && b == -1));
    return a / b;
  }
  if (op == "Max") return std::max(a, b);
  if (op == "Min") return std::min(a, b);
  if (op == "Mod") {
    ADALOG_CHECK(b != 0, n.Describe(), ": integer Mod by zero");
    int64_t r = (b == -1) ? 0 : a % b;  // C++ %: sign of a (= fmod)
    if (n.GetInt("fmod", 0) == 0 && r != 0 && ((r < 0) != (b < 0))) r += b;  // sign of the divisor
    return r;
  }
  if (op == "Pow") {
    ADALOG_CHECK(b >= 0 && b < 64, n.Describe(), ": integer power ", b, " unsupported");
    int64_t r = 1;
    for (int64_t k = 0; k < b; ++k) {
      ok(Small(r) && Small(a));
      r *= a;
    }
    return r;
  }
  return static_cast<int64_t>(BinaryF(op, static_cast<double>(a), static_cast<double>(b)));
}

}  // namespace

Tensor EvalBinary(const Node& n, const Tensor& a, const Tensor& b) {
  const Dims out_dims = Broadcast(a.dims, b.dims, n);
  const bool is_int = a.dtype == DType::kInt64 && b.dtype == DType::kInt64;
  const DType dt = IsCompareOp(n.op) || is_int ? DType::kInt64 : DType::kFloat;
  if (!a.has_data || !b.has_data) {
    Tensor t;
    t.dtype = dt;
    t.dims = out_dims;
    CheckedNumel(out_dims, n.Describe());
    return t;
  }
  Tensor out = MakeTensor(dt, out_dims, n.Describe());
  const Dims sa = Strides(a.dims), sb = Strides(b.dims);
  int64_t k = 0;
  ForEachIndex(out_dims, [&](const Dims& idx) {
    const int64_t ia = BroadcastSrc(a.dims, sa, out_dims, idx);
    const int64_t ib = BroadcastSrc(b.dims, sb, out_dims, idx);
    if (is_int && !IsCompareOp(n.op)) {
      out.i[k++] = BinaryI(n, a.i[ia], b.i[ib]);
    } else if (dt == DType::kInt64) {
      out.i[k++] = static_cast<int64_t>(BinaryF(n.op, a.AtF(ia), b.AtF(ib)));
    } else {
      out.f[k++] = static_cast<float>(BinaryF(n.op, a.AtF(ia), b.AtF(ib)));
    }
  });
  return out;
}

Tensor EvalUnary(const Node& n, const Tensor& x) {
  const bool keeps_int = n.op == "Neg" || n.op == "Abs" || n.op == "Not";
  const DType dt = keeps_int ? x.dtype : DType::kFloat;
  if (!x.has_data) {
    Tensor t;
    t.dtype = dt;
    t.dims = x.dims;
    return t;
  }
  Tensor out = MakeTensor(dt, x.dims, n.Describe());
  for (int64_t k = 0; k < x.numel(); ++k) {
    if (dt == DType::kInt64) {
      const int64_t v = x.i[k];
      if (n.op == "Not") {
        out.i[k] = v == 0;
      } else {
        ADALOG_CHECK(v != std::numeric_limits<int64_t>::min(), n.Describe(), ": integer overflow");
        out.i[k] = n.op == "Neg" ? -v : std::llabs(v);
      }
      continue;
    }
    const double v = x.AtF(k);
    double r = 0;
    if (n.op == "Neg") r = -v;
    else if (n.op == "Abs") r = std::fabs(v);
    else if (n.op == "Sqrt") r = std::sqrt(v);
    else if (n.op == "Erf") r = std::erf(v);
    else if (n.op == "Tanh") r = std::tanh(v);
    else if (n.op == "Exp") r = std::exp(v);
    else if (n.op == "Reciprocal") r = 1.0 / v;
    else if (n.op == "Sigmoid") r = 1.0 / (1.0 + std::exp(-v));
    else if (n.op == "Relu") r = v > 0 ? v : 0;
    else if (n.op == "Floor") r = std::floor(v);
    else if (n.op == "Ceil") r = std::ceil(v);
    out.f[k] = static_cast<float>(r);
  }
  return out;
}

Tensor EvalCast(const Node& n, const Tensor& x) {
  const int64_t to = n.GetInt("to", 1);
  DType dt;
  if (to == 1 || to == 10 || to == 11 || to == 16) {
    dt = DType::kFloat;
  } else if (to == 2 || to == 3 || to == 4 || to == 5 || to == 6 || to == 7 || to == 9 ||
             to == 12 || to == 13) {
    dt = DType::kInt64;
  } else {
    Fail(n.Describe(), ": Cast to unsupported element type ", to);
  }
  if (!x.has_data || x.dtype == dt) {
    Tensor t = x;
    t.dtype = dt;
    if (x.has_data && to == 9) {
      for (auto& v : t.i) v = v != 0;
    }
    return t;
  }
  Tensor out = MakeTensor(dt, x.dims, n.Describe());
  for (int64_t k = 0; k < x.numel(); ++k) {
    if (dt == DType::kFloat) {
      out.f[k] = static_cast<float>(x.i[k]);
    } else {
      const double v = x.f[k];
      if (to == 9) {
        out.i[k] = v != 0;
        continue;
      }
      ADALOG_CHECK(std::isfinite(v) && std::fabs(v) < 9.0e18, n.Describe(), ": cannot cast ", v,
                   " to an integer");
      out.i[k] = static_cast<int64_t>(v);
    }
  }
  return out;
}

Tensor EvalWhere(const Node& n, const Tensor& c, const Tensor& x, const Tensor& y) {
  const Dims out = Broadcast(Broadcast(c.dims, x.dims, n), y.dims, n);
  const DType dt = x.dtype == y.dtype ? x.dtype : DType::kFloat;
  if (!c.has_data || !x.has_data || !y.has_data) return ShapeOnly(dt, out, n);
  Tensor o = MakeTensor(dt, out, n.Describe());
  const Dims sc = Strides(c.dims), sx = Strides(x.dims), sy = Strides(y.dims);
  int64_t k = 0;
  ForEachIndex(out, [&](const Dims& idx) {
    const bool cond = c.AtF(BroadcastSrc(c.dims, sc, out, idx)) != 0;
    const Tensor& t = cond ? x : y;
    const int64_t s = BroadcastSrc(t.dims, cond ? sx : sy, out, idx);
    if (dt == DType::kFloat) {
      o.f[k++] = static_cast<float>(t.AtF(s));
    } else {
      o.i[k++] = t.i[s];
    }
  });
  return o;
}

Tensor EvalReduce(const Node& n, const std::vector<const Tensor*>& ins) {
  const Tensor& x = *ins[0];
  std::vector<int64_t> axes = AxesOf(n, ins, 1);
  const bool keep = n.GetInt("keepdims", 1) != 0;
  std::vector<bool> red(x.rank(), axes.empty() && n.GetInt("noop_with_empty_axes", 0) == 0);
  for (int64_t a : axes) red[NormAxis(a, x.rank(), n)] = true;
  Dims out, kept;
  for (int k = 0; k < x.rank(); ++k) {
    if (red[k]) {
      if (keep) out.push_back(1);
    } else {
      out.push_back(x.dims[k]);
    }
    kept.push_back(red[k] ? 1 : x.dims[k]);
  }
  const DType dt = n.op == "ReduceMean" ? DType::kFloat : x.dtype;
  if (!x.has_data) return ShapeOnly(dt, out, n);
  Tensor o = MakeTensor(DType::kFloat, kept, n.Describe());
  const bool is_max = n.op == "ReduceMax", is_min = n.op == "ReduceMin";
  const bool is_prod = n.op == "ReduceProd";
  std::vector<bool> init(o.f.size(), false);
  const Dims sk = Strides(kept);
  ForEachIndex(x.dims, [&, k = int64_t{0}](const Dims& idx) mutable {
    int64_t dst = 0;
    for (int a = 0; a < x.rank(); ++a) {
      if (!red[a]) dst += idx[a] * sk[a];
    }
    const float v = static_cast<float>(x.AtF(k++));
    float& acc = o.f[dst];
    if (!init[dst]) {
      acc = v;
      init[dst] = true;
    } else if (is_max) {
      acc = std::max(acc, v);
    } else if (is_min) {
      acc = std::min(acc, v);
    } else if (is_prod) {
      acc *= v;
    } else {
      acc += v;
    }
  });
  if (n.op == "ReduceMean") {
    const int64_t cnt = x.numel() / std::max<int64_t>(1, o.numel());
    for (auto& v : o.f) v /= static_cast<float>(std::max<int64_t>(1, cnt));
  }
  o.dims = out;
  if (dt == DType::kInt64) {
    Tensor r = MakeTensor(DType::kInt64, out, n.Describe());
    for (size_t k = 0; k < r.i.size(); ++k) {
      ADALOG_CHECK(std::isfinite(o.f[k]) && std::fabs(o.f[k]) < 9.0e18f, n.Describe(),
                   ": integer reduction overflows");
      r.i[k] = static_cast<int64_t>(o.f[k]);
    }
    return r;
  }
  return o;
}

Tensor EvalRange(const Node& n, const std::vector<const Tensor*>& ins) {
  const Tensor& s = ConstIn(n, ins, 0, "start");
  const Tensor& l = ConstIn(n, ins, 1, "limit");
  const Tensor& d = ConstIn(n, ins, 2, "delta");
  ADALOG_CHECK(s.numel() == 1 && l.numel() == 1 && d.numel() == 1, n.Describe(),
               ": Range needs scalars");
  const double start = s.AtF(0), limit = l.AtF(0), delta = d.AtF(0);
  const double kBig = 9.0e15;
  ADALOG_CHECK(delta != 0 && std::fabs(start) < kBig && std::fabs(limit) < kBig &&
                   std::fabs(delta) < kBig,
               n.Describe(), ": bad Range parameters");
  const double cnt = std::max(0.0, std::ceil((limit - start) / delta));
  ADALOG_CHECK(cnt <= static_cast<double>(kMaxFoldedElements), n.Describe(), ": Range of ", cnt,
               " elements");
  const DType dt = s.dtype;
  Tensor o = MakeTensor(dt, {static_cast<int64_t>(cnt)}, n.Describe());
  for (int64_t k = 0; k < static_cast<int64_t>(cnt); ++k) {
    if (dt == DType::kFloat) {
      o.f[k] = static_cast<float>(start + k * delta);
    } else {
      o.i[k] = static_cast<int64_t>(start + static_cast<double>(k) * delta);
    }
  }
  return o;
}

Tensor EvalConstantOfShape(const Node& n, const std::vector<const Tensor*>& ins) {
  const std::vector<int64_t> shape = IntsOf(ConstIn(n, ins, 0, "shape"));
  Tensor value = ScalarF(0.f);
  if (n.Has("value")) {
    value = n.attrs.at("value").t;
    ADALOG_CHECK(value.has_data && value.numel() == 1, n.Describe(), ": value must hold one element");
  }
  Tensor o = MakeTensor(value.dtype, shape, n.Describe());
  if (value.dtype == DType::kFloat) {
    std::fill(o.f.begin(), o.f.end(), value.f[0]);
  } else {
    std::fill(o.i.begin(), o.i.end(), value.i[0]);
  }
  return o;
}

Dims MatMulShape(const Node& n, const Tensor& a, const Tensor& b) {
  ADALOG_CHECK(a.rank() >= 2 && b.rank() >= 2, n.Describe(), ": MatMul of rank ", a.rank(),
               " and ", b.rank(), " unsupported");
  const int64_t m = a.dims[a.rank() - 2], k = a.dims[a.rank() - 1];
  const int64_t k2 = b.dims[b.rank() - 2], nn = b.dims[b.rank() - 1];
  ADALOG_CHECK(k == k2, n.Describe(), ": MatMul inner dims differ: ", ShapeStr(a.dims), " x ",
               ShapeStr(b.dims));
  Dims ba(a.dims.begin(), a.dims.end() - 2), bb(b.dims.begin(), b.dims.end() - 2);
  Dims out = Broadcast(ba, bb, n);
  out.push_back(m);
  out.push_back(nn);
  return out;
}

Dims GemmShape(const Node& n, const Tensor& a, const Tensor& b) {
  ADALOG_CHECK(a.rank() == 2 && b.rank() == 2, n.Describe(), ": Gemm needs rank-2 inputs");
  const bool ta = n.GetInt("transA", 0) != 0, tb = n.GetInt("transB", 0) != 0;
  const int64_t m = ta ? a.dims[1] : a.dims[0], k = ta ? a.dims[0] : a.dims[1];
  const int64_t k2 = tb ? b.dims[1] : b.dims[0], nn = tb ? b.dims[0] : b.dims[1];
  ADALOG_CHECK(k == k2, n.Describe(), ": Gemm inner dims differ");
  return {m, nn};
}

Dims ConvShape(const Node& n, const Tensor& x, const Tensor& w) {
  ADALOG_CHECK(x.rank() == 4 && w.rank() == 4, n.Describe(), ": only 2-D Conv is supported");
  const std::string ap = n.attrs.count("auto_pad") ? n.attrs.at("auto_pad").s : "NOTSET";
  ADALOG_CHECK(ap == "NOTSET" || ap.empty() || ap == "VALID", n.Describe(), ": auto_pad ", ap,
               " unsupported");
  const int64_t group = n.GetInt("group", 1);
  ADALOG_CHECK(group >= 1 && x.dims[1] == w.dims[1] * group, n.Describe(),
               ": channel mismatch between input ", ShapeStr(x.dims), " and weight ",
               ShapeStr(w.dims));
  std::vector<int64_t> st = n.GetInts("strides"), pads = n.GetInts("pads"),
                       dil = n.GetInts("dilations");
  if (st.empty()) st = {1, 1};
  if (dil.empty()) dil = {1, 1};
  if (pads.empty()) pads = {0, 0, 0, 0};
  ADALOG_CHECK(st.size() == 2 && dil.size() == 2 && pads.size() == 4, n.Describe(),
               ": bad strides/dilations/pads");
  Dims out = {x.dims[0], w.dims[0], 0, 0};
  for (int k = 0; k < 2; ++k) {
    ADALOG_CHECK(st[k] >= 1 && dil[k] >= 1 && pads[k] >= 0 && pads[k + 2] >= 0 &&
                     st[k] < (1 << 20) && dil[k] < (1 << 20) && pads[k] < (1 << 20) &&
                     pads[k + 2] < (1 << 20),
                 n.Describe(), ": bad strides/dilations/pads");
    const int64_t span = dil[k] * (w.dims[2 + k] - 1) + 1;
    const int64_t in = x.dims[2 + k] + pads[k] + pads[k + 2];
    ADALOG_CHECK(in >= span, n.Describe(), ": kernel larger than input");
    out[2 + k] = (in - span) / st[k] + 1;
  }
  return out;
}

}  // namespace eval_ops
}  // namespace graph
}  // namespace adalog
