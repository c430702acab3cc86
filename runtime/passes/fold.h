// Constant folding and static shape inference over the importer's graph IR: substitutes the batch
// size, evaluates the exporter's shape arithmetic (Shape/Gather/Concat/Where/Expand/...), and
// leaves only compute nodes, each output with a known static shape.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "runtime/graph.h"

namespace adalog {
namespace graph {

struct Folded {
  std::map<std::string, Tensor> values;  // every live tensor: constants have data, others shape only
  std::vector<Node> compute;              // nodes left after folding, topological order
  std::map<std::string, std::vector<int>> consumers;  // tensor -> indices into `compute`
  std::map<std::string, int> producer;                // tensor -> index into `compute`
  std::string input;                      // the image input's name
  std::vector<std::string> outputs;       // graph outputs (aliases resolved)
  int64_t batch = 1;
  bool dynamic_batch = false;
  int64_t opset = 0;

  const Tensor& Value(const std::string& name) const;
  bool IsConst(const std::string& name) const;
  // The compute nodes reading `name` (empty if none).
  std::vector<const Node*> Consumers(const std::string& name) const;
  const Node* Producer(const std::string& name) const;
};

// Folds `g` for the given batch size (used when the input's batch dimension is symbolic).
// Throws adalog::Error on cycles, undefined inputs, unsupported ops, bad shapes.
Folded FoldAndInferShapes(const Graph& g, int64_t batch);
// The same, taking over `g`'s initializers instead of copying them (one copy of the weights).
Folded FoldAndInferShapes(Graph&& g, int64_t batch);

// Evaluates one node. If every input has data the outputs have data; otherwise only their shapes
// (and dtypes) are computed. Throws adalog::Error for unsupported ops or inconsistent shapes.
// Also used by the recognizer to push index maps through layout ops.
std::vector<Tensor> EvalNode(const Node& n, const std::vector<const Tensor*>& ins, int64_t opset);

// True for ops that only move or copy elements (Reshape, Transpose, Gather, Slice, ...).
bool IsLayoutOp(const std::string& op);

}  // namespace graph
}  // namespace adalog
