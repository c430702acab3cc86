// Recognition of the ViT structure on a folded graph: patch embedding, prefix tokens, position
// embedding, pre-norm blocks (LayerNorm, attention, GELU MLP), final norm and head(s).
//
// Matching is semantic rather than positional: LayerNorm and GELU sub-graphs are verified by
// evaluating them on probe values; attention is verified by pushing index maps (each element's
// token/channel coordinates) through the exporter's Reshape/Transpose/Gather/Slice chains, so any
// head split/merge that computes the same thing is accepted and anything else is rejected.
#pragma once

#include <string>
#include <vector>

#include "runtime/passes/fold.h"
#include "runtime/vit_model.h"

namespace adalog {
namespace graph {

// Throws adalog::Error saying what was not found. Appends one line per structure to `notes`.
VitModel RecognizeVit(const Folded& f, std::vector<std::string>* notes);

}  // namespace graph
}  // namespace adalog
