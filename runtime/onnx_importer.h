// ONNX -> VitModel: parse (libonnx/protobuf), fold the exporter's shape arithmetic, infer static
// shapes, fuse Linear / LayerNorm / GELU / attention, and recognize the ViT block structure.
// Every failure on untrusted input throws adalog::Error naming the op, node, opset or tensor.
#pragma once

#include <string>
#include <vector>

#include "runtime/vit_model.h"

namespace adalog {

struct ImportReport {
  int64_t ir_version = 0;
  int64_t opset = 0;
  std::string producer;         // e.g. "pytorch 1.13.1"
  int nodes_total = 0;          // nodes in the file
  int nodes_after_folding = 0;  // compute nodes left after constant/shape folding
  bool dynamic_batch = false;   // the input's batch dimension was symbolic
  std::string input_name;
  std::vector<std::string> notes;  // one line per recognized structure, for `adalog inspect`
};

// Loads a ViT from an ONNX file. Throws adalog::Error on anything unreadable, unsupported or not a
// ViT (saying what was not found).
VitModel ImportOnnxVit(const std::string& path, ImportReport* report = nullptr);

// Same, from the serialized bytes of a ModelProto (used by the fuzz target and tests).
VitModel ImportOnnxVitFromBytes(const std::string& bytes, ImportReport* report = nullptr,
                                const std::string& source_name = "<memory>");

}  // namespace adalog
