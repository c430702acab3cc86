// Recognition of a Swin Transformer (V1; timm and torchvision layouts) on a folded graph: patch
// embedding + LayerNorm, stages of window-attention blocks, patch merging, final norm, average
// pooling, head. Every layout part (padding, cyclic shift, window partition and reverse, the 2x2
// merge gather, the pooling) is checked by pushing index maps through the exporter's
// Reshape/Transpose/Pad/Slice/Concat chains and comparing them with runtime/swin_model.h's row
// maps; window / shift / padding are read off those maps, not off node positions. The attention
// core (qkv, scale, relative position bias, mask, softmax, merge, proj, window reverse) is checked
// numerically: the exported sub-graph is evaluated on probe rows and compared with the model's
// window attention.
#pragma once

#include <string>
#include <vector>

#include "runtime/passes/fold.h"
#include "runtime/vit_model.h"

namespace adalog {
namespace graph {

// True if `f` pools with GlobalAveragePool (Swin, both families), so that RecognizeSwin reads it
// instead of RecognizeVit.
bool LooksLikeSwin(const Folded& f);

// Throws adalog::Error naming the node or tensor where the graph stops being Swin. Appends one
// line per structure to `notes`.
VitModel RecognizeSwin(const Folded& f, std::vector<std::string>* notes);

}  // namespace graph
}  // namespace adalog
