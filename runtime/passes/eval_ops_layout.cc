// Constant folding evaluators for the ops that move or copy elements (Constant, Reshape,
// Transpose, Gather, Slice, Concat, (Un)Squeeze, Flatten, Expand, Split, Shape): eval_ops.h.
#include "runtime/passes/eval_ops.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <set>

namespace adalog {
namespace graph {
namespace eval_ops {

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

}  // namespace eval_ops
}  // namespace graph
}  // namespace adalog
