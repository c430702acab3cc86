// Rejection of Swin variants adalog does not import, decided on the raw (unfolded) graph so the
// error names the construct and its node instead of the first op constant folding cannot evaluate.
#pragma once

#include "runtime/graph.h"

namespace adalog {
namespace graph {

// Throws adalog::Error if `g` computes Swin V2's cosine attention: a MatMul both of whose operands
// are L2-normalized along their last axis (F.normalize exports as ReduceL2 -> Clip/Max -> Expand
// -> Div by it; a Transpose/Reshape between the Div and the MatMul is looked through). The message
// names the MatMul and both normalizing Divs. Graphs without such a MatMul pass unchanged.
void RejectUnsupportedSwin(const Graph& g);

}  // namespace graph
}  // namespace adalog
