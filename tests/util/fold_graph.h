// Hand-built graphs for the constant-folding tests (importer_fold_test, swin_fold_test): nodes,
// their attributes, integer / float initializers and the one-input base graph.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "runtime/graph.h"

namespace adalog::graph::fold_test {

inline Node MakeNode(const std::string& op, const std::string& name, std::vector<std::string> in,
                     std::vector<std::string> out) {
  Node n;
  n.op = op;
  n.name = name;
  n.inputs = std::move(in);
  n.outputs = std::move(out);
  return n;
}

inline void SetInts(Node* n, const std::string& key, std::vector<int64_t> v) {
  Attr a;
  a.kind = Attr::kInts;
  a.ints = std::move(v);
  n->attrs[key] = a;
}

inline void SetInt(Node* n, const std::string& key, int64_t v) {
  Attr a;
  a.kind = Attr::kInt;
  a.i = v;
  n->attrs[key] = a;
}

inline Tensor Ints(std::vector<int64_t> v, std::vector<int64_t> dims) {
  Tensor t = VectorI(v);
  t.dims = std::move(dims);
  return t;
}

inline Tensor Floats(std::vector<float> v, std::vector<int64_t> dims) {
  Tensor t = MakeTensor(DType::kFloat, dims, "test");
  t.f = std::move(v);
  return t;
}

// Input 'x' [batch?, 3, 4, 4] (dynamic batch), one graph output.
inline Graph BaseGraph(const std::string& output) {
  Graph g;
  g.opset = 17;
  ValueInfo vi;
  vi.name = "x";
  vi.elem_type = 1;
  vi.has_shape = true;
  vi.dims = {-1, 3, 4, 4};
  vi.dim_params = {"batch", "", "", ""};
  g.inputs.push_back(vi);
  g.outputs = {output};
  return g;
}

}  // namespace adalog::graph::fold_test
