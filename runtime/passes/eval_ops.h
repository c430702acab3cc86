// Internal to runtime/passes: the per-op evaluators of constant folding and shape inference
// (fold.h's EvalNode dispatches to them) and the index helpers they share. Each evaluator
// computes data when its inputs have data and only the shape otherwise.
// eval_ops_math.cc: arithmetic, comparisons, casts, reductions and compute-op shapes;
// eval_ops_layout.cc: ops that move or copy elements (Reshape, Transpose, Gather, Slice, ...).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "quant/error.h"
#include "runtime/graph.h"

namespace adalog {
namespace graph {
namespace eval_ops {

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

inline Dims Strides(const Dims& dims) {
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

inline int64_t NormAxis(int64_t axis, int64_t rank, const Node& n) {
  ADALOG_CHECK(axis >= -rank && axis < rank, n.Describe(), ": axis ", axis, " out of range for rank ",
               rank);
  return axis < 0 ? axis + rank : axis;
}

inline const Tensor& ConstIn(const Node& n, const std::vector<const Tensor*>& ins, size_t k,
                      const char* what) {
  ADALOG_CHECK(k < ins.size() && ins[k] != nullptr, n.Describe(), ": missing input ", what);
  ADALOG_CHECK(ins[k]->has_data, n.Describe(), ": input ", what, " ('", n.inputs[k],
               "') must be a constant after folding");
  return *ins[k];
}

inline std::vector<int64_t> IntsOf(const Tensor& t) {
  std::vector<int64_t> v(static_cast<size_t>(t.numel()));
  for (size_t k = 0; k < v.size(); ++k) v[k] = t.AtI(static_cast<int64_t>(k));
  return v;
}

// Axes from an attribute (older opsets) or an optional constant input.
inline std::vector<int64_t> AxesOf(const Node& n, const std::vector<const Tensor*>& ins, size_t input) {
  if (n.Has("axes")) return n.GetInts("axes");
  if (input < ins.size() && ins[input] != nullptr) return IntsOf(ConstIn(n, ins, input, "axes"));
  return {};
}

inline Dims Broadcast(const Dims& a, const Dims& b, const Node& n) {
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
inline int64_t BroadcastSrc(const Dims& dims, const Dims& strides, const Dims& out, const Dims& idx) {
  int64_t s = 0;
  const size_t off = out.size() - dims.size();
  for (size_t k = 0; k < dims.size(); ++k) {
    if (dims[k] != 1) s += idx[k + off] * strides[k];
  }
  return s;
}

inline Tensor ShapeOnly(DType dt, const Dims& dims, const Node& n) {
  Tensor t;
  t.dtype = dt;
  t.dims = dims;
  CheckedNumel(dims, n.Describe());
  return t;
}

// ---- evaluators: eval_ops_math.cc ----

Tensor EvalBinary(const Node& n, const Tensor& a, const Tensor& b);

Tensor EvalUnary(const Node& n, const Tensor& x);

Tensor EvalCast(const Node& n, const Tensor& x);

Tensor EvalWhere(const Node& n, const Tensor& c, const Tensor& x, const Tensor& y);

Tensor EvalReduce(const Node& n, const std::vector<const Tensor*>& ins);

Tensor EvalRange(const Node& n, const std::vector<const Tensor*>& ins);

Tensor EvalConstantOfShape(const Node& n, const std::vector<const Tensor*>& ins);

Dims MatMulShape(const Node& n, const Tensor& a, const Tensor& b);

Dims GemmShape(const Node& n, const Tensor& a, const Tensor& b);

Dims ConvShape(const Node& n, const Tensor& x, const Tensor& w);

// ---- evaluators: eval_ops_layout.cc ----

Tensor EvalConstant(const Node& n);

Tensor EvalReshape(const Node& n, const Tensor& x, const Tensor& shape_t);

Tensor EvalTranspose(const Node& n, const Tensor& x);

Tensor EvalGather(const Node& n, const Tensor& x, const Tensor& ind);

Tensor EvalSlice(const Node& n, const std::vector<const Tensor*>& ins);

Tensor EvalConcat(const Node& n, const std::vector<const Tensor*>& ins);

Tensor EvalUnsqueeze(const Node& n, const std::vector<const Tensor*>& ins);

Tensor EvalSqueeze(const Node& n, const std::vector<const Tensor*>& ins);

Tensor EvalFlatten(const Node& n, const Tensor& x);

Tensor EvalExpand(const Node& n, const Tensor& x, const Tensor& shape_t);

std::vector<Tensor> EvalSplit(const Node& n, const std::vector<const Tensor*>& ins);

Tensor EvalShape(const Node& n, const Tensor& x);

// ---- evaluators: eval_ops_swin.cc (ops Swin exports add) ----

// Mod: integers with fmod 0 (sign of the divisor) or 1 (sign of the dividend); floats need fmod 1.
Tensor EvalMod(const Node& n, const Tensor& a, const Tensor& b);

// ScatterND with reduction "none"; data only when all three inputs are constant.
Tensor EvalScatterND(const Node& n, const Tensor& data, const Tensor& indices, const Tensor& updates);

// Pad, constant mode; pads (and axes, opset 18) must be constant; data when the input is.
Tensor EvalPad(const Node& n, const std::vector<const Tensor*>& ins, int64_t opset);

// GlobalAveragePool / GlobalMaxPool output shape: [N, C, 1, ...].
Dims GlobalPoolShape(const Node& n, const Tensor& x);

}  // namespace eval_ops
}  // namespace graph
}  // namespace adalog
