// The shared preprocessing options and their resolution against a model (cli/preprocess_options.h).
#include "cli/preprocess_options.h"

#include <string>
#include <vector>

namespace adalog::cli {
namespace {

std::string JoinNames(const std::vector<std::string>& v, const char* sep) {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) s += (i ? sep : "") + v[i];
  return s;
}

OptionSpec WithDefault(OptionSpec o, std::string default_text) {
  o.default_text = std::move(default_text);
  return o;
}

}  // namespace

std::vector<OptionSpec> PreprocessOptionSpecs() {
  return {
      Choice("preprocess", PreprocessPresetNames(),
             "image folders: a preset for every field (cli/README.md: imagenet/torchvision = resize "
             "S/0.875, bilinear, ImageNet mean/std; timm = the same but bicubic; none = resize S, mean "
             "0, std 1)",
             "the model's, else imagenet"),
      Int("image-size", "S", "image folders: center-crop size (must be the model's input size)", 1,
          4096, "the model's input size"),
      Int("resize", "R", "image folders: resize the shorter side to R before cropping", 1, 8192,
          "the model's, else S / 0.875"),
      WithDefault(Str("mean", "a,b,c", "image folders: per-channel mean, in the model's channel order"),
                  "the model's, else ImageNet"),
      WithDefault(Str("std", "a,b,c", "image folders: per-channel std, in the model's channel order"),
                  "the model's, else ImageNet"),
      Choice("interpolation", InterpolationNames(),
             "image folders: resampling of the resize, as Pillow does it (antialiased)",
             "the model's, else bilinear"),
      Choice("channel-order", ChannelOrderNames(), "image folders: the model's input channel order",
             "the model's, else rgb"),
      Flag("force-preprocess",
           "use the preprocessing options even where they disagree with the model's declared "
           "preprocessing"),
      Flag("strict",
           "image folders: an entry that is skipped (not an image, empty class folder, ...) is an "
           "error"),
  };
}

PreprocessRequest GetPreprocessRequest(const ParsedArgs& a, const std::string& cmd) {
  PreprocessRequest r;
  r.force = a.Flag("force-preprocess");
  r.strict = a.Flag("strict");
  r.image_size = static_cast<int>(a.Int("image-size", 0));
  if (a.Has("preprocess")) {
    r.preset = a.String("preprocess");
    r.given.push_back("--preprocess " + r.preset);
  }
  if (a.Has("resize")) {
    r.resize = static_cast<int>(a.Int("resize", 0));
    r.given.push_back("--resize " + std::to_string(r.resize));
  }
  if (a.Has("mean")) {
    r.mean = ParseFloatList(a.String("mean"), 3, "option '--mean' of " + cmd);
    r.given.push_back("--mean " + a.String("mean"));
  }
  if (a.Has("std")) {
    r.std = ParseFloatList(a.String("std"), 3, "option '--std' of " + cmd);
    for (float s : r.std) {
      if (!(s > 0.f)) throw UsageError("option '--std' of " + cmd + ": every value must be > 0");
    }
    r.given.push_back("--std " + a.String("std"));
  }
  if (a.Has("interpolation")) {
    r.interpolation = a.String("interpolation");
    r.given.push_back("--interpolation " + r.interpolation);
  }
  if (a.Has("channel-order")) {
    r.channel_order = a.String("channel-order");
    r.given.push_back("--channel-order " + r.channel_order);
  }
  if (r.resize != 0 && r.image_size != 0 && r.resize < r.image_size) {
    throw UsageError(cmd + ": --resize " + std::to_string(r.resize) + " is smaller than --image-size " +
                     std::to_string(r.image_size));
  }
  if (r.force && !r.sets_fields()) {
    throw UsageError(cmd + ": --force-preprocess needs a preprocessing option to force (--preprocess, --resize, "
                           "--mean, --std, --interpolation or --channel-order)");
  }
  return r;
}

void RefusePreprocessForNpy(const PreprocessRequest& r, const std::string& cmd, const std::string& data) {
  std::vector<std::string> opts = r.given;
  if (r.image_size != 0) opts.push_back("--image-size");
  if (r.force) opts.push_back("--force-preprocess");
  if (opts.empty()) return;
  const std::string first = opts[0].substr(0, opts[0].find(' '));
  throw UsageError(cmd + ": " + first + " applies to image folders; .npy data (" + data +
                   ") is used as already preprocessed");
}

ResolvedPreprocess ResolvePreprocess(const PreprocessRequest& r, const VitModel& m, const std::string& model_path,
                                     const std::string& cmd, const std::string& data, bool folder) {
  const int S = m.embed.image_h;
  if (r.image_size != 0 && (r.image_size != m.embed.image_h || r.image_size != m.embed.image_w)) {
    throw UsageError(cmd + ": --image-size " + std::to_string(r.image_size) + " does not match the model's input " +
                     std::to_string(m.embed.image_h) + "x" + std::to_string(m.embed.image_w));
  }
  const Preprocess& declared = m.preprocess;
  ResolvedPreprocess out;
  Preprocess& p = out.preprocess;
  p = r.preset.empty() ? declared : PreprocessPreset(r.preset, S);
  if (r.resize != 0) p.resize_shorter = r.resize;
  if (!r.interpolation.empty()) p.interpolation = ParseInterpolation(r.interpolation);
  if (!r.channel_order.empty()) p.channel_order = ParseChannelOrder(r.channel_order);
  for (int c = 0; c < 3 && !r.mean.empty(); ++c) p.mean[c] = r.mean[c];
  for (int c = 0; c < 3 && !r.std.empty(); ++c) p.std[c] = r.std[c];
  p.known = declared.known || r.sets_fields();
  if (EffectiveResize(p, S) < S) {
    throw UsageError(cmd + ": resize " + std::to_string(EffectiveResize(p, S)) + " is smaller than the model's input " +
                     std::to_string(S));
  }
  const std::vector<std::string> diffs = PreprocessDifferences(p, declared, S);
  if (declared.known && !diffs.empty()) {
    if (!r.force) {
      throw UsageError(cmd + ": " + JoinNames(r.given, " ") + " disagrees with the preprocessing " + model_path +
                       " declares: " + JoinNames(diffs, "; ") +
                       ". Pass --force-preprocess to use the options anyway");
    }
    out.note = "adalog: note: --force-preprocess: " + data + " is preprocessed with " + DescribePreprocess(p, S) +
               ", not the " + DescribePreprocess(declared, S) + " that " + model_path + " declares";
  }
  if (!p.known) {
    const std::string what = "adalog: " + std::string(folder ? "warning" : "note") + ": " + model_path +
                             " declares no preprocessing (no adalog.preprocess.* ONNX metadata, none stored by "
                             "quantize): unknown, default ";
    out.note = what + DescribePreprocess(p, S) +
               (folder ? " applied to " + data + "; give --preprocess or --resize/--mean/--std to match the training"
                       : "");
  }
  return out;
}

}  // namespace adalog::cli
