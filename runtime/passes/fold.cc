// Constant folding + static shape inference (runtime/passes/fold.h): the per-node dispatch to the
// evaluators of eval_ops.h, and the graph walk that folds constants and infers every shape.
#include "runtime/passes/fold.h"

#include <algorithm>
#include <cmath>
#include <deque>
#include <limits>
#include <set>

#include "quant/error.h"
#include "runtime/passes/eval_ops.h"

namespace adalog {
namespace graph {

using namespace eval_ops;  // NOLINT: this file is their dispatcher

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
  if (op == "Mod") {
    ADALOG_CHECK(ins.size() == 2, n.Describe(), ": expects 2 inputs");
    return one(EvalMod(n, in(0), in(1)));
  }
  if (op == "ScatterND") return one(EvalScatterND(n, in(0), in(1), in(2)));
  if (op == "Pad") return one(EvalPad(n, ins, opset));
  if (op == "GlobalAveragePool") return one(ShapeOnly(DType::kFloat, GlobalPoolShape(n, in(0)), n));
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
  Graph copy = g;
  return FoldAndInferShapes(std::move(copy), batch);
}

Folded FoldAndInferShapes(Graph&& g, int64_t batch) {
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
  for (auto& [name, t] : g.initializers) {
    if (name != vi.name) f.values[name] = std::move(t);
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
