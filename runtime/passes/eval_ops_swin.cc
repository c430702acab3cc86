// Evaluators for the ops Swin exports add to constant folding (eval_ops.h): Mod (torchvision's pad
// amounts), ScatterND (its shift-mask construction), Pad (padding to a multiple of the window) and
// GlobalAveragePool's shape (the average pooling tail).
#include <cmath>
#include <string>
#include <vector>

#include "runtime/passes/eval_ops.h"

namespace adalog {
namespace graph {
namespace eval_ops {

// Mod is a broadcasting binary op (EvalBinary: integer Mod with ONNX's fmod attribute, float
// Mod as fmod); ONNX allows float inputs only with fmod=1.
Tensor EvalMod(const Node& n, const Tensor& a, const Tensor& b) {
  const bool is_int = a.dtype == DType::kInt64 && b.dtype == DType::kInt64;
  ADALOG_CHECK(is_int || n.GetInt("fmod", 0) != 0, n.Describe(), ": Mod of floats needs fmod=1 (ONNX)");
  return EvalBinary(n, a, b);
}

Tensor EvalScatterND(const Node& n, const Tensor& data, const Tensor& indices, const Tensor& updates) {
  const std::string red = n.attrs.count("reduction") ? n.attrs.at("reduction").s : "none";
  ADALOG_CHECK(red == "none", n.Describe(), ": ScatterND reduction '", red, "' is not supported");
  const int64_t q = static_cast<int64_t>(indices.dims.size());
  ADALOG_CHECK(q >= 1, n.Describe(), ": indices must have rank >= 1");
  const int64_t kdim = indices.dims.back();
  const int64_t r = static_cast<int64_t>(data.dims.size());
  ADALOG_CHECK(kdim >= 1 && kdim <= r, n.Describe(), ": index depth ", kdim, " for data of rank ", r);
  Dims want(indices.dims.begin(), indices.dims.end() - 1);
  want.insert(want.end(), data.dims.begin() + kdim, data.dims.end());
  ADALOG_CHECK(updates.dims == want, n.Describe(), ": updates shape ", ShapeStr(updates.dims),
               ", expected ", ShapeStr(want));
  if (!data.has_data || !indices.has_data || !updates.has_data) return ShapeOnly(data.dtype, data.dims, n);
  ADALOG_CHECK(updates.dtype == data.dtype, n.Describe(), ": updates and data differ in type");
  Tensor out = data;
  const Dims st = Strides(data.dims);
  int64_t slice = 1;
  for (int64_t a = kdim; a < r; ++a) slice *= data.dims[a];
  const int64_t tuples = indices.numel() / kdim;
  for (int64_t t = 0; t < tuples; ++t) {
    int64_t base = 0;
    for (int64_t a = 0; a < kdim; ++a) {
      int64_t v = indices.AtI(t * kdim + a);
      if (v < 0) v += data.dims[a];
      ADALOG_CHECK(v >= 0 && v < data.dims[a], n.Describe(), ": index ", v, " out of range on axis ", a);
      base += v * st[a];
    }
    for (int64_t e = 0; e < slice; ++e) {
      if (out.dtype == DType::kFloat) {
        out.f[base + e] = updates.f[t * slice + e];
      } else {
        out.i[base + e] = updates.i[t * slice + e];
      }
    }
  }
  return out;
}

Tensor EvalPad(const Node& n, const std::vector<const Tensor*>& ins, int64_t opset) {
  ADALOG_CHECK(!ins.empty() && ins[0] != nullptr, n.Describe(), ": missing input data");
  const Tensor& x = *ins[0];
  const std::string mode = n.attrs.count("mode") ? n.attrs.at("mode").s : "constant";
  ADALOG_CHECK(mode == "constant", n.Describe(), ": Pad mode '", mode, "' is not supported (constant only)");
  const int64_t r = static_cast<int64_t>(x.dims.size());
  std::vector<int64_t> pads = opset >= 11 ? IntsOf(ConstIn(n, ins, 1, "pads")) : n.GetInts("pads");
  std::vector<int64_t> axes;
  if (ins.size() > 3 && ins[3] != nullptr) axes = IntsOf(ConstIn(n, ins, 3, "axes"));
  if (axes.empty()) {
    for (int64_t a = 0; a < r; ++a) axes.push_back(a);
  }
  const int64_t na = static_cast<int64_t>(axes.size());
  ADALOG_CHECK(static_cast<int64_t>(pads.size()) == 2 * na, n.Describe(), ": ", pads.size(),
               " pads for ", na, " axes");
  Dims before(r, 0), dims = x.dims;
  for (int64_t k = 0; k < na; ++k) {
    const int64_t a = NormAxis(axes[k], r, n);
    before[a] = pads[k];
    dims[a] = x.dims[a] + pads[k] + pads[k + na];
    ADALOG_CHECK(dims[a] >= 0, n.Describe(), ": pads shrink axis ", a, " below zero");
  }
  double value = 0.0;
  if (ins.size() > 2 && ins[2] != nullptr) {
    const Tensor& v = ConstIn(n, ins, 2, "constant_value");
    ADALOG_CHECK(v.numel() == 1, n.Describe(), ": constant_value must be a scalar");
    value = v.AtF(0);
  } else if (opset < 11) {
    value = n.GetFloat("value", 0.0f);
  }
  if (!x.has_data) return ShapeOnly(x.dtype, dims, n);
  Tensor out = MakeTensor(x.dtype, dims, n.Describe());
  const Dims sx = Strides(x.dims);
  int64_t k = 0;
  ForEachIndex(dims, [&](const Dims& idx) {
    int64_t src = 0;
    bool inside = true;
    for (int64_t a = 0; a < r && inside; ++a) {
      const int64_t s = idx[a] - before[a];
      inside = s >= 0 && s < x.dims[a];
      src += s * sx[a];
    }
    if (x.dtype == DType::kFloat) {
      out.f[k++] = inside ? x.f[src] : static_cast<float>(value);
    } else {
      out.i[k++] = inside ? x.i[src] : static_cast<int64_t>(value);
    }
  });
  return out;
}

Dims GlobalPoolShape(const Node& n, const Tensor& x) {
  ADALOG_CHECK(x.dims.size() >= 3, n.Describe(), ": input rank ", x.dims.size(), " < 3");
  Dims d = x.dims;
  for (size_t a = 2; a < d.size(); ++a) d[a] = 1;
  return d;
}

}  // namespace eval_ops
}  // namespace graph
}  // namespace adalog
