// The image-preprocessing options shared by `quantize`, `eval`, `run` and `bench` (one definition,
// spec and reading), and how they combine with the preprocessing a model declares.
//
// Rules (cli/README.md, "Preprocessing"):
//  - A model declares its preprocessing through ONNX metadata (runtime/preprocess.h) or a quantized
//    file (stored by `quantize`); otherwise it is unknown and the default (the imagenet preset)
//    stands in, with one line on stderr saying so.
//  - --preprocess PRESET replaces every field; --resize/--mean/--std/--interpolation/--channel-order
//    then override single fields.
//  - Options that disagree with a declared preprocessing are a usage error unless
//    --force-preprocess is given.
//  - `eval`, `run`, `bench`: the options apply to image folders only (an .npy is already
//    preprocessed). `quantize` also takes them with an .npy, to record how it was preprocessed.
#pragma once

#include <string>
#include <vector>

#include "cli/args.h"
#include "runtime/data/image_folder.h"
#include "runtime/preprocess.h"
#include "runtime/vit_model.h"

namespace adalog::cli {

// --preprocess, --image-size, --resize, --mean, --std, --interpolation, --channel-order,
// --force-preprocess, --strict.
std::vector<OptionSpec> PreprocessOptionSpecs();

struct PreprocessRequest {
  std::string preset;   // empty: none given
  int image_size = 0;   // 0: not given (must equal the model's input size when given)
  int resize = 0;       // 0: not given
  std::vector<float> mean, std;  // empty: not given
  std::string interpolation, channel_order;  // empty: not given
  bool force = false;   // --force-preprocess
  bool strict = false;  // --strict: a skipped folder entry is an error
  std::vector<std::string> given;  // "--mean", ... in spec order: the options that set a field

  bool sets_fields() const { return !given.empty(); }
};

// Reads and checks the options (UsageError naming `cmd`, e.g. "'adalog eval'").
PreprocessRequest GetPreprocessRequest(const ParsedArgs& a, const std::string& cmd);

// UsageError unless no preprocessing field option is given (eval/run/bench on an .npy: "<option>
// applies to image folders; .npy data is used as already preprocessed").
void RefusePreprocessForNpy(const PreprocessRequest& r, const std::string& cmd, const std::string& data);

struct ResolvedPreprocess {
  Preprocess preprocess;  // what to apply (and, for quantize, what to store); known as declared
  // One stderr line to print ("" if none): the preprocessing is unknown and the default applies,
  // or --force-preprocess overrode a declared one.
  std::string note;
};

// The preprocessing for `model` (loaded from `model_path`) under request `r`; `data` names the
// input it will apply to (for the note) and `folder` says whether it is an image folder (the
// unknown-preprocessing line is then a warning). Throws UsageError on a disagreement with a
// declared preprocessing (without --force-preprocess), a wrong --image-size or a resize smaller
// than the crop.
ResolvedPreprocess ResolvePreprocess(const PreprocessRequest& r, const VitModel& model, const std::string& model_path,
                                     const std::string& cmd, const std::string& data, bool folder);

}  // namespace adalog::cli
