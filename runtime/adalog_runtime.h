// The project's view of the public API (include/adalog/adalog.h: LoadModel, Session, ...): the
// LoadedModel behind the public API's opaque handle, and batch running over an ImageSource.
// Everything thrown is adalog::Error with a message for the user.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "adalog/adalog.h"
#include "runtime/data/image_source.h"
#include "runtime/metrics.h"  // top-k scoring (kept visible to the API's users)
#include "runtime/onnx_importer.h"
#include "runtime/quant_plan.h"
#include "runtime/vit_model.h"

namespace adalog {

enum class ModelFormat {
  kOnnx,       // an ONNX ViT, imported by ImportOnnxVit and run in FP32
  kQuantized,  // the adalog quantized model file (magic kQuantizedModelMagic, runtime/model_file.h)
};

// First bytes of a quantized model file (docs/model_format.md).
inline constexpr char kQuantizedModelMagic[] = "ADALOGQ";

struct LoadedModel {
  std::string path;
  ModelFormat format = ModelFormat::kOnnx;
  VitModel model;             // kOnnx: FP32 parameters. kQuantized: the calibrated (rewritten)
                              // model, weights holding their dequantized values
  ImportReport onnx_report;   // filled for kOnnx
  QuantPlan plan;             // filled for kQuantized: every quantizer of the model
  uint32_t file_version = 0;  // kQuantized: the format version read from the file's header
};

// LoadModel, SessionOptions, Session, RuntimeVersionString: include/adalog/adalog.h (the installed
// public API, where LoadedModel is opaque).

// Runs images [0, n) of `source` through `session` in batches of session.max_batch(): logits gets
// n * num_classes() floats; labels, when non-null (needs source.has_labels()), the n labels. An
// .npy runs straight from its array; a folder is decoded one batch at a time. The batches'
// shape is {b, source.image_shape()}, which Session::Run checks against the model.
void RunImages(Session& session, const ImageSource& source, int64_t n, float* logits,
               int64_t* labels = nullptr);

}  // namespace adalog
