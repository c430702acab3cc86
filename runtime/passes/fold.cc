// Constant folding + static shape inference (runtime/passes/fold.h): one evaluator per op, which
// computes data when every input is constant and only the shape otherwise.
#include "runtime/passes/fold.h"

#include <algorithm>
#include <cmath>
#include <deque>
#include <limits>
#include <set>

#include "quant/error.h"

namespace adalog {
namespace graph {
namespace {

using Dims = std::vector<int64_t>;

// Calls f(idx) for every multi-index of `dims` in row-major order.
template <class F>
void ForEachIndex(const Dims& dims, F&& f) {
  int64_t n = 1;
  for (int64_t d : dims) n *= d;
  if (n == 0) return;
  Dims idx(dims.size(), 0);
  for (int64_t k = 0; k < n; ++k) {
    f(idx);
    for (int a = static_cast<int>(dims.size()) - 1; a >= 0; --a) {
      if (++idx[a] < dims[a]) break;
      idx[a] = 0;
    }
  }
}

Dims Strides(const Dims& dims) {
  Dims s(dims.size(), 1);
  for (int a = static_cast<int>(dims.size()) - 2; a >= 0; --a) s[a] = s[a + 1] * dims[a + 1];
  return s;
}

// Output tensor of `dims` filled by copying in[src(idx)], or shape only if `in` has no data.
template <class F>
Tensor CopyMapped(const Tensor& in, const Dims& dims, const std::string& what, F&& src) {
  if (!in.has_data) {
    Tensor t;
    t.dtype = in.dtype;
    t.dims = dims;
    CheckedNumel(dims, what);
    return t;
  }
  Tensor out = MakeTensor(in.dtype, dims, what);
  int64_t k = 0;
  ForEachIndex(dims, [&](const Dims& idx) {
    const int64_t s = src(idx);
    if (in.dtype == DType::kFloat) {
      out.f[k++] = in.f[s];
    } else {
      out.i[k++] = in.i[s];
    }
  });
  return out;
}

int64_t NormAxis(int64_t axis, int64_t rank, const Node& n) {
  ADALOG_CHECK(axis >= -rank && axis < rank, n.Describe(), ": axis ", axis, " out of range for rank ",
               rank);
  return axis < 0 ? axis + rank : axis;
}

const Tensor& ConstIn(const Node& n, const std::vector<const Tensor*>& ins, size_t k,
                      const char* what) {
  ADALOG_CHECK(k < ins.size() && ins[k] != nullptr, n.Describe(), ": missing input ", what);
  ADALOG_CHECK(ins[k]->has_data, n.Describe(), ": input ", what, " ('", n.inputs[k],
               "') must be a constant after folding");
  return *ins[k];
}

std::vector<int64_t> IntsOf(const Tensor& t) {
  std::vector<int64_t> v(static_cast<size_t>(t.numel()));
  for (size_t k = 0; k < v.size(); ++k) v[k] = t.AtI(static_cast<int64_t>(k));
  return v;
}

// Axes from an attribute (older opsets) or an optional constant input.
std::vector<int64_t> AxesOf(const Node& n, const std::vector<const Tensor*>& ins, size_t input) {
  if (n.Has("axes")) return n.GetInts("axes");
  if (input < ins.size() && ins[input] != nullptr) return IntsOf(ConstIn(n, ins, input, "axes"));
  return {};
}

Dims Broadcast(const Dims& a, const Dims& b, const Node& n) {
  const size_t r = std::max(a.size(), b.size());
  Dims out(r);
  for (size_t k = 0; k < r; ++k) {
    const int64_t da = k + a.size() >= r ? a[k + a.size() - r] : 1;
    const int64_t db = k + b.size() >= r ? b[k + b.size() - r] : 1;
    ADALOG_CHECK(da == db || da == 1 || db == 1, n.Describe(), ": cannot broadcast ", ShapeStr(a),
                 " with ", ShapeStr(b));
    out[k] = da == 1 ? db : da;
  }
  return out;
}

// Flat source index into a tensor of `dims` broadcast to `out` at multi-index idx.
int64_t BroadcastSrc(const Dims& dims, const Dims& strides, const Dims& out, const Dims& idx) {
  int64_t s = 0;
  const size_t off = out.size() - dims.size();
  for (size_t k = 0; k < dims.size(); ++k) {
    if (dims[k] != 1) s += idx[k + off] * strides[k];
  }
  return s;
}

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

Tensor ShapeOnly(DType dt, const Dims& dims, const Node& n) {
  Tensor t;
  t.dtype = dt;
  t.dims = dims;
  CheckedNumel(dims, n.Describe());
  return t;
}

Tensor EvalConstant(const Node& n) {
  ADALOG_CHECK(n.attrs.size() == 1, n.Describe(), ": Constant needs exactly one value attribute");
  const auto& [key, a] = *n.attrs.begin();
  if (key == "value") {
    ADALOG_CHECK(a.kind == Attr::kTensor, n.Describe(), ": 'value' is not a tensor");
    return a.t;
  }
  if (key == "value_float") return ScalarF(a.f);
  if (key == "value_int") {
    Tensor t = VectorI({a.i});
    t.dims.clear();
    return t;
  }
  if (key == "value_ints") return VectorI(a.ints);
  if (key == "value_floats") {
    Tensor t = MakeTensor(DType::kFloat, {static_cast<int64_t>(a.floats.size())}, n.Describe());
    t.f = a.floats;
    return t;
  }
  Fail(n.Describe(), ": unsupported Constant attribute '", key, "'");
}

Tensor EvalReshape(const Node& n, const Tensor& x, const Tensor& shape_t) {
  const std::vector<int64_t> spec = IntsOf(shape_t);
  ADALOG_CHECK(spec.size() <= static_cast<size_t>(kMaxRank), n.Describe(), ": target rank ",
               spec.size(), " too large");
  const bool allowzero = n.GetInt("allowzero", 0) != 0;
  Dims out(spec.size());
  int infer = -1;
  int64_t known = 1;
  for (size_t k = 0; k < spec.size(); ++k) {
    int64_t d = spec[k];
    if (d == 0 && !allowzero) {
      ADALOG_CHECK(k < x.dims.size(), n.Describe(), ": shape entry 0 at axis ", k,
                   " beyond input rank");
      d = x.dims[k];
    }
    if (d == -1) {
      ADALOG_CHECK(infer < 0, n.Describe(), ": more than one -1 in shape ", ShapeStr(spec));
      infer = static_cast<int>(k);
      out[k] = 1;
      continue;
    }
    ADALOG_CHECK(d >= 0, n.Describe(), ": invalid shape ", ShapeStr(spec));
    out[k] = d;
    CheckedNumel(out, n.Describe());
    known *= d == 0 ? 1 : d;
  }
  const int64_t total = x.numel();
  if (infer >= 0) {
    ADALOG_CHECK(known > 0 && total % known == 0, n.Describe(), ": cannot reshape ",
                 ShapeStr(x.dims), " to ", ShapeStr(spec));
    out[infer] = total / known;
  }
  ADALOG_CHECK(CheckedNumel(out, n.Describe()) == total, n.Describe(), ": cannot reshape ",
               ShapeStr(x.dims), " to ", ShapeStr(spec));
  Tensor t = x;
  t.dims = out;
  return t;
}

Tensor EvalTranspose(const Node& n, const Tensor& x) {
  const int r = x.rank();
  std::vector<int64_t> perm = n.GetInts("perm");
  if (perm.empty()) {
    for (int k = r - 1; k >= 0; --k) perm.push_back(k);
  }
  ADALOG_CHECK(static_cast<int>(perm.size()) == r, n.Describe(), ": perm size ", perm.size(),
               " != rank ", r);
  std::vector<bool> seen(r, false);
  Dims out(r);
  for (int k = 0; k < r; ++k) {
    ADALOG_CHECK(perm[k] >= 0 && perm[k] < r && !seen[perm[k]], n.Describe(), ": invalid perm");
    seen[perm[k]] = true;
    out[k] = x.dims[perm[k]];
  }
  const Dims s = Strides(x.dims);
  return CopyMapped(x, out, n.Describe(), [&](const Dims& idx) {
    int64_t src = 0;
    for (int k = 0; k < r; ++k) src += idx[k] * s[perm[k]];
    return src;
  });
}

Tensor EvalGather(const Node& n, const Tensor& x, const Tensor& ind) {
  ADALOG_CHECK(x.rank() >= 1, n.Describe(), ": Gather on a scalar");
  const int64_t axis = NormAxis(n.GetInt("axis", 0), x.rank(), n);
  const int64_t dim = x.dims[axis];
  std::vector<int64_t> iv = IntsOf(ind);
  for (auto& v : iv) {
    ADALOG_CHECK(v >= -dim && v < dim, n.Describe(), ": index ", v, " out of range for dim ", dim);
    if (v < 0) v += dim;
  }
  Dims out(x.dims.begin(), x.dims.begin() + axis);
  out.insert(out.end(), ind.dims.begin(), ind.dims.end());
  out.insert(out.end(), x.dims.begin() + axis + 1, x.dims.end());
  const Dims s = Strides(x.dims);
  const size_t qr = ind.dims.size();
  const Dims is = Strides(ind.dims);
  return CopyMapped(x, out, n.Describe(), [&](const Dims& idx) {
    int64_t src = 0;
    for (int64_t k = 0; k < axis; ++k) src += idx[k] * s[k];
    int64_t fi = 0;
    for (size_t k = 0; k < qr; ++k) fi += idx[axis + k] * is[k];
    src += iv[fi] * s[axis];
    for (int64_t k = axis + 1; k < x.rank(); ++k) src += idx[k - 1 + qr] * s[k];
    return src;
  });
}

Tensor EvalSlice(const Node& n, const std::vector<const Tensor*>& ins) {
  const Tensor& x = *ins[0];
  std::vector<int64_t> starts, ends, axes, steps;
  if (n.Has("starts")) {
    starts = n.GetInts("starts");
    ends = n.GetInts("ends");
    axes = n.GetInts("axes");
  } else {
    starts = IntsOf(ConstIn(n, ins, 1, "starts"));
    ends = IntsOf(ConstIn(n, ins, 2, "ends"));
    if (ins.size() > 3 && ins[3]) axes = IntsOf(ConstIn(n, ins, 3, "axes"));
    if (ins.size() > 4 && ins[4]) steps = IntsOf(ConstIn(n, ins, 4, "steps"));
  }
  if (axes.empty()) {
    for (size_t k = 0; k < starts.size(); ++k) axes.push_back(static_cast<int64_t>(k));
  }
  if (steps.empty()) steps.assign(starts.size(), 1);
  ADALOG_CHECK(starts.size() == ends.size() && axes.size() == starts.size() &&
                   steps.size() == starts.size(),
               n.Describe(), ": starts/ends/axes/steps sizes differ");
  const int r = x.rank();
  Dims begin(r, 0), step(r, 1), out = x.dims;
  std::vector<bool> seen(r, false);
  for (size_t k = 0; k < starts.size(); ++k) {
    const int64_t a = NormAxis(axes[k], r, n);
    ADALOG_CHECK(!seen[a], n.Describe(), ": axis ", a, " sliced twice");
    seen[a] = true;
    const int64_t dim = x.dims[a];
    const int64_t st = steps[k];
    ADALOG_CHECK(st != 0, n.Describe(), ": step 0");
    int64_t s = starts[k], e = ends[k];
    if (s < 0) s = s < -dim ? -dim - 1 : s + dim;  // keep within range before clamping
    if (e < 0) e = e < -dim ? -dim - 1 : e + dim;
    int64_t len;
    if (st > 0) {
      s = std::clamp<int64_t>(s, 0, dim);
      e = std::clamp<int64_t>(e, 0, dim);
      len = e > s ? 1 + (e - s - 1) / st : 0;
    } else {
      s = std::clamp<int64_t>(s, -1, dim - 1);
      e = std::clamp<int64_t>(e, -1, dim - 1);
      ADALOG_CHECK(st != std::numeric_limits<int64_t>::min(), n.Describe(), ": bad step");
      len = s > e ? 1 + (s - e - 1) / (-st) : 0;
    }
    begin[a] = s;
    step[a] = st;
    out[a] = len;
  }
  const Dims sx = Strides(x.dims);
  return CopyMapped(x, out, n.Describe(), [&](const Dims& idx) {
    int64_t src = 0;
    for (int k = 0; k < r; ++k) src += (begin[k] + idx[k] * step[k]) * sx[k];
    return src;
  });
}

Tensor EvalConcat(const Node& n, const std::vector<const Tensor*>& ins) {
  ADALOG_CHECK(!ins.empty(), n.Describe(), ": Concat without inputs");
  for (auto* t : ins) ADALOG_CHECK(t != nullptr, n.Describe(), ": empty input name");
  const Tensor& x0 = *ins[0];
  const int r = x0.rank();
  ADALOG_CHECK(r >= 1, n.Describe(), ": Concat of scalars");
  const int64_t axis = NormAxis(n.GetInt("axis", 0), r, n);
  Dims out = x0.dims;
  out[axis] = 0;
  bool all_data = true;
  DType dt = x0.dtype;
  for (auto* t : ins) {
    ADALOG_CHECK(t->rank() == r, n.Describe(), ": input ranks differ");
    for (int k = 0; k < r; ++k) {
      ADALOG_CHECK(k == axis || t->dims[k] == x0.dims[k], n.Describe(), ": cannot concatenate ",
                   ShapeStr(x0.dims), " with ", ShapeStr(t->dims), " on axis ", axis);
    }
    out[axis] += t->dims[axis];
    all_data = all_data && t->has_data;
    if (t->dtype != dt) dt = DType::kFloat;
  }
  if (!all_data) return ShapeOnly(dt, out, n);
  Tensor o = MakeTensor(dt, out, n.Describe());
  int64_t outer = 1;
  for (int64_t k = 0; k < axis; ++k) outer *= out[k];
  int64_t pos = 0;
  for (int64_t b = 0; b < outer; ++b) {
    for (auto* t : ins) {
      int64_t inner = 1;
      for (int k = static_cast<int>(axis); k < r; ++k) inner *= t->dims[k];
      for (int64_t j = 0; j < inner; ++j) {
        const int64_t s = b * inner + j;
        if (dt == DType::kFloat) {
          o.f[pos++] = static_cast<float>(t->AtF(s));
        } else {
          o.i[pos++] = t->i[s];
        }
      }
    }
  }
  return o;
}

Tensor EvalUnsqueeze(const Node& n, const std::vector<const Tensor*>& ins) {
  const Tensor& x = *ins[0];
  std::vector<int64_t> axes = AxesOf(n, ins, 1);
  const int64_t r = x.rank() + static_cast<int64_t>(axes.size());
  ADALOG_CHECK(r <= kMaxRank, n.Describe(), ": rank too large");
  std::vector<bool> is_new(r, false);
  for (int64_t a : axes) {
    const int64_t na = NormAxis(a, r, n);
    ADALOG_CHECK(!is_new[na], n.Describe(), ": duplicate axis ", a);
    is_new[na] = true;
  }
  Dims out;
  size_t j = 0;
  for (int64_t k = 0; k < r; ++k) out.push_back(is_new[k] ? 1 : x.dims[j++]);
  Tensor t = x;
  t.dims = out;
  return t;
}

Tensor EvalSqueeze(const Node& n, const std::vector<const Tensor*>& ins) {
  const Tensor& x = *ins[0];
  std::vector<int64_t> axes = AxesOf(n, ins, 1);
  std::vector<bool> drop(x.rank(), false);
  if (axes.empty()) {
    for (int k = 0; k < x.rank(); ++k) drop[k] = x.dims[k] == 1;
  }
  for (int64_t a : axes) {
    const int64_t na = NormAxis(a, x.rank(), n);
    ADALOG_CHECK(x.dims[na] == 1, n.Describe(), ": cannot squeeze axis ", a, " of size ",
                 x.dims[na]);
    drop[na] = true;
  }
  Dims out;
  for (int k = 0; k < x.rank(); ++k) {
    if (!drop[k]) out.push_back(x.dims[k]);
  }
  Tensor t = x;
  t.dims = out;
  return t;
}

Tensor EvalFlatten(const Node& n, const Tensor& x) {
  const int64_t r = x.rank();
  int64_t axis = n.GetInt("axis", 1);
  ADALOG_CHECK(axis >= -r && axis <= r, n.Describe(), ": axis ", axis, " out of range");
  if (axis < 0) axis += r;
  int64_t a = 1, b = 1;
  for (int64_t k = 0; k < r; ++k) (k < axis ? a : b) *= x.dims[k];
  Tensor t = x;
  t.dims = {a, b};
  return t;
}

Tensor EvalExpand(const Node& n, const Tensor& x, const Tensor& shape_t) {
  const std::vector<int64_t> shape = IntsOf(shape_t);
  ADALOG_CHECK(shape.size() <= static_cast<size_t>(kMaxRank), n.Describe(), ": rank too large");
  for (int64_t d : shape) ADALOG_CHECK(d >= 0, n.Describe(), ": negative dim in ", ShapeStr(shape));
  const Dims out = Broadcast(x.dims, shape, n);
  const Dims s = Strides(x.dims);
  return CopyMapped(x, out, n.Describe(),
                    [&](const Dims& idx) { return BroadcastSrc(x.dims, s, out, idx); });
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

std::vector<Tensor> EvalSplit(const Node& n, const std::vector<const Tensor*>& ins) {
  const Tensor& x = *ins[0];
  ADALOG_CHECK(x.rank() >= 1, n.Describe(), ": Split of a scalar");
  const int64_t axis = NormAxis(n.GetInt("axis", 0), x.rank(), n);
  std::vector<int64_t> split = n.GetInts("split");
  if (split.empty() && ins.size() > 1 && ins[1]) split = IntsOf(ConstIn(n, ins, 1, "split"));
  const int64_t nout = static_cast<int64_t>(n.outputs.size());
  ADALOG_CHECK(nout >= 1, n.Describe(), ": no outputs");
  if (split.empty()) {
    ADALOG_CHECK(x.dims[axis] % nout == 0, n.Describe(), ": dim ", x.dims[axis],
                 " not divisible into ", nout, " parts");
    split.assign(nout, x.dims[axis] / nout);
  }
  ADALOG_CHECK(static_cast<int64_t>(split.size()) == nout, n.Describe(), ": ", split.size(),
               " split sizes for ", nout, " outputs");
  int64_t total = 0;
  for (int64_t s : split) {
    ADALOG_CHECK(s >= 0 && s <= x.dims[axis], n.Describe(), ": bad split size ", s);
    total += s;
  }
  ADALOG_CHECK(total == x.dims[axis], n.Describe(), ": split sizes sum to ", total, ", dim is ",
               x.dims[axis]);
  std::vector<Tensor> outs;
  int64_t off = 0;
  const Dims sx = Strides(x.dims);
  for (int64_t s : split) {
    Dims od = x.dims;
    od[axis] = s;
    outs.push_back(CopyMapped(x, od, n.Describe(), [&](const Dims& idx) {
      int64_t src = 0;
      for (int k = 0; k < x.rank(); ++k) src += (idx[k] + (k == axis ? off : 0)) * sx[k];
      return src;
    }));
    off += s;
  }
  return outs;
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

Tensor EvalShape(const Node& n, const Tensor& x) {
  const int64_t r = x.rank();
  int64_t start = n.GetInt("start", 0), end = n.GetInt("end", r);
  if (start < 0) start += r;
  if (end < 0) end += r;
  start = std::clamp<int64_t>(start, 0, r);
  end = std::clamp<int64_t>(end, 0, r);
  std::vector<int64_t> v;
  for (int64_t k = start; k < end; ++k) v.push_back(x.dims[k]);
  return VectorI(v);
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

}  // namespace

bool IsLayoutOp(const std::string& op) {
  static const std::set<std::string> kOps = {"Reshape", "Transpose", "Gather", "Slice",
                                             "Squeeze", "Unsqueeze", "Flatten", "Split",
                                             "Concat", "Identity", "Expand"};
  return kOps.count(op) != 0;
}

std::vector<Tensor> EvalNode(const Node& n, const std::vector<const Tensor*>& ins, int64_t opset) {
  const std::string& op = n.op;
  ADALOG_CHECK(n.domain.empty() || n.domain == "ai.onnx", "unsupported op '", op, "' in domain '",
               n.domain, "' (node '", n.name, "', opset ", opset, ")");
  auto in = [&](size_t k) -> const Tensor& {
    ADALOG_CHECK(k < ins.size() && ins[k] != nullptr, n.Describe(), ": missing input ", k);
    return *ins[k];
  };
  auto one = [](Tensor t) { return std::vector<Tensor>{std::move(t)}; };
  static const std::set<std::string> kBinary = {"Add", "Sub", "Mul", "Div", "Pow",
                                                "Max", "Min", "Equal", "Less", "Greater",
                                                "And", "Or", "LessOrEqual", "GreaterOrEqual"};
  static const std::set<std::string> kUnary = {"Neg", "Abs", "Sqrt", "Erf", "Tanh", "Exp",
                                               "Reciprocal", "Sigmoid", "Relu", "Floor",
                                               "Ceil", "Not"};
  if (op == "Constant") return one(EvalConstant(n));
  if (kBinary.count(op)) {
    ADALOG_CHECK(ins.size() == 2, n.Describe(), ": expects 2 inputs");
    return one(EvalBinary(n, in(0), in(1)));
  }
  if (kUnary.count(op)) return one(EvalUnary(n, in(0)));
  if (op == "Identity") return one(in(0));
  if (op == "Dropout") {
    std::vector<Tensor> r{in(0)};
    if (n.outputs.size() > 1) r.push_back(ShapeOnly(DType::kInt64, in(0).dims, n));
    return r;
  }
  if (op == "Cast") return one(EvalCast(n, in(0)));
  if (op == "Shape") return one(EvalShape(n, in(0)));
  if (op == "Size") {
    Tensor t = VectorI({in(0).numel()});
    t.dims.clear();
    return one(t);
  }
  if (op == "Reshape") return one(EvalReshape(n, in(0), ConstIn(n, ins, 1, "shape")));
  if (op == "Transpose") return one(EvalTranspose(n, in(0)));
  if (op == "Gather") return one(EvalGather(n, in(0), ConstIn(n, ins, 1, "indices")));
  if (op == "Slice") {
    in(0);
    return one(EvalSlice(n, ins));
  }
  if (op == "Concat") return one(EvalConcat(n, ins));
  if (op == "Unsqueeze") {
    in(0);
    return one(EvalUnsqueeze(n, ins));
  }
  if (op == "Squeeze") {
    in(0);
    return one(EvalSqueeze(n, ins));
  }
  if (op == "Flatten") return one(EvalFlatten(n, in(0)));
  if (op == "Expand") return one(EvalExpand(n, in(0), ConstIn(n, ins, 1, "shape")));
  if (op == "Where") return one(EvalWhere(n, in(0), in(1), in(2)));
  if (op == "ReduceMean" || op == "ReduceSum" || op == "ReduceMax" || op == "ReduceMin" ||
      op == "ReduceProd") {
    in(0);
    return one(EvalReduce(n, ins));
  }
  if (op == "Split") {
    in(0);
    return EvalSplit(n, ins);
  }
  if (op == "Range") return one(EvalRange(n, ins));
  if (op == "ConstantOfShape") return one(EvalConstantOfShape(n, ins));
  // Compute ops: shapes only (the recognizer turns them into VitModel fields).
  if (op == "MatMul") return one(ShapeOnly(DType::kFloat, MatMulShape(n, in(0), in(1)), n));
  if (op == "Gemm") return one(ShapeOnly(DType::kFloat, GemmShape(n, in(0), in(1)), n));
  if (op == "Conv") return one(ShapeOnly(DType::kFloat, ConvShape(n, in(0), in(1)), n));
  if (op == "Softmax") {
    NormAxis(n.GetInt("axis", -1), in(0).rank(), n);
    return one(ShapeOnly(DType::kFloat, in(0).dims, n));
  }
  if (op == "LayerNormalization") {
    NormAxis(n.GetInt("axis", -1), in(0).rank(), n);
    std::vector<Tensor> r;
    for (size_t k = 0; k < n.outputs.size(); ++k) r.push_back(ShapeOnly(DType::kFloat, in(0).dims, n));
    return r;
  }
  Fail("unsupported op '", op, "' (node '", n.name, "', opset ", opset, ")");
}

const Tensor& Folded::Value(const std::string& name) const {
  auto it = values.find(name);
  ADALOG_CHECK(it != values.end(), "internal: tensor '", name, "' has no value");
  return it->second;
}

bool Folded::IsConst(const std::string& name) const {
  auto it = values.find(name);
  return it != values.end() && it->second.has_data;
}

std::vector<const Node*> Folded::Consumers(const std::string& name) const {
  std::vector<const Node*> r;
  auto it = consumers.find(name);
  if (it == consumers.end()) return r;
  for (int k : it->second) r.push_back(&compute[k]);
  return r;
}

const Node* Folded::Producer(const std::string& name) const {
  auto it = producer.find(name);
  return it == producer.end() ? nullptr : &compute[it->second];
}

Folded FoldAndInferShapes(const Graph& g, int64_t batch) {
  Folded f;
  f.opset = g.opset;
  ADALOG_CHECK(g.inputs.size() == 1, "expected exactly one graph input (the image), found ",
               g.inputs.size());
  const ValueInfo& vi = g.inputs[0];
  f.input = vi.name;
  ADALOG_CHECK(vi.elem_type == 1, "model input '", vi.name,
               "' must be float32, got ONNX element type ", vi.elem_type);
  ADALOG_CHECK(vi.has_shape && vi.dims.size() == 4, "model input '", vi.name,
               "' must be a rank-4 NCHW tensor, got rank ", vi.has_shape ? vi.dims.size() : 0);
  for (int k = 1; k < 4; ++k) {
    ADALOG_CHECK(vi.dims[k] > 0, "model input '", vi.name, "': dimension ", k,
                 " must be static and positive (NCHW), got ",
                 vi.dims[k] < 0 ? "'" + vi.dim_params[k] + "'" : std::to_string(vi.dims[k]));
  }
  f.dynamic_batch = vi.dims[0] <= 0;
  f.batch = f.dynamic_batch ? batch : vi.dims[0];
  Tensor x;
  x.dims = {f.batch, vi.dims[1], vi.dims[2], vi.dims[3]};
  CheckedNumel(x.dims, "model input '" + vi.name + "'");
  f.values[vi.name] = x;
  for (const auto& [name, t] : g.initializers) {
    if (name != vi.name) f.values[name] = t;
  }

  // Topological order (Kahn). Producers of every tensor, with duplicate detection.
  const size_t nn = g.nodes.size();
  std::map<std::string, size_t> prod;
  for (size_t k = 0; k < nn; ++k) {
    for (const auto& o : g.nodes[k].outputs) {
      if (o.empty()) continue;
      ADALOG_CHECK(!prod.count(o) && !f.values.count(o), "tensor '", o, "' is produced twice (",
                   g.nodes[k].Describe(), ")");
      prod[o] = k;
    }
  }
  std::vector<int> indeg(nn, 0);
  std::vector<std::vector<size_t>> users(nn);
  for (size_t k = 0; k < nn; ++k) {
    const Node& n = g.nodes[k];
    for (const auto& in : n.inputs) {
      if (in.empty()) continue;
      auto it = prod.find(in);
      if (it != prod.end()) {
        ++indeg[k];
        users[it->second].push_back(k);
      } else {
        ADALOG_CHECK(f.values.count(in), n.Describe(), ": input '", in,
                     "' is not produced by any node, initializer or graph input "
                     "(missing initializer?)");
      }
    }
  }
  std::deque<size_t> ready;
  for (size_t k = 0; k < nn; ++k) {
    if (indeg[k] == 0) ready.push_back(k);
  }
  std::vector<size_t> order;
  while (!ready.empty()) {
    const size_t k = ready.front();
    ready.pop_front();
    order.push_back(k);
    for (size_t u : users[k]) {
      if (--indeg[u] == 0) ready.push_back(u);
    }
  }
  if (order.size() != nn) {
    for (size_t k = 0; k < nn; ++k) {
      if (indeg[k] > 0) Fail("graph has a cycle: ", g.nodes[k].Describe(), " is on or after it");
    }
  }

  std::map<std::string, std::string> alias;
  auto resolve = [&](const std::string& s) {
    auto it = alias.find(s);
    return it == alias.end() ? s : it->second;
  };
  std::vector<Node> compute;
  for (size_t k : order) {
    Node n = g.nodes[k];
    for (auto& in : n.inputs) in = resolve(in);
    std::vector<const Tensor*> ins;
    bool all_const = true;
    for (const auto& in : n.inputs) {
      if (in.empty()) {
        ins.push_back(nullptr);
        continue;
      }
      const Tensor& t = f.values.at(in);
      ins.push_back(&t);
      all_const = all_const && t.has_data;
    }
    // Pass-throughs of activations become aliases.
    const bool pass = n.op == "Identity" || (n.op == "Dropout" && n.outputs.size() == 1) ||
                      (n.op == "Cast" && !all_const && n.GetInt("to", 0) == 1 && ins[0] &&
                       ins[0]->dtype == DType::kFloat);
    if (pass && !all_const && !n.inputs.empty() && !n.outputs.empty()) {
      alias[n.outputs[0]] = n.inputs[0];
      continue;
    }
    std::vector<Tensor> outs = EvalNode(n, ins, g.opset);
    ADALOG_CHECK(outs.size() >= n.outputs.size() || n.op == "Split", n.Describe(), ": produces ",
                 outs.size(), " outputs, graph expects ", n.outputs.size());
    ADALOG_CHECK(outs.size() >= n.outputs.size(), n.Describe(), ": output count mismatch");
    bool folded = true;
    for (size_t o = 0; o < n.outputs.size(); ++o) {
      if (n.outputs[o].empty()) continue;
      folded = folded && outs[o].has_data;
      f.values[n.outputs[o]] = std::move(outs[o]);
    }
    if (!folded) compute.push_back(std::move(n));
  }
  for (const auto& o : g.outputs) f.outputs.push_back(resolve(o));

  // Keep only compute nodes that graph outputs depend on.
  std::map<std::string, int> prod_c;
  for (size_t k = 0; k < compute.size(); ++k) {
    for (const auto& o : compute[k].outputs) prod_c[o] = static_cast<int>(k);
  }
  std::vector<bool> live(compute.size(), false);
  std::vector<std::string> stack = f.outputs;
  while (!stack.empty()) {
    const std::string s = stack.back();
    stack.pop_back();
    auto it = prod_c.find(s);
    if (it == prod_c.end() || live[it->second]) continue;
    live[it->second] = true;
    for (const auto& in : compute[it->second].inputs) {
      if (!in.empty()) stack.push_back(in);
    }
  }
  for (size_t k = 0; k < compute.size(); ++k) {
    if (live[k]) f.compute.push_back(std::move(compute[k]));
  }
  for (size_t k = 0; k < f.compute.size(); ++k) {
    for (const auto& in : f.compute[k].inputs) {
      if (in.empty()) continue;
      auto& c = f.consumers[in];
      if (c.empty() || c.back() != static_cast<int>(k)) c.push_back(static_cast<int>(k));
    }
    for (const auto& o : f.compute[k].outputs) f.producer[o] = static_cast<int>(k);
  }
  return f;
}

}  // namespace graph
}  // namespace adalog
