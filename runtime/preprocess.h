// The evaluation preprocessing a model expects (resize, interpolation, channel order, mean, std),
// whether it is known or a default, the named presets, and the ONNX metadata keys that declare it.
//
// A model's preprocessing comes from one of three places: an ONNX file's metadata_props
// (adalog.preprocess.*, below), a quantized model file (stored by `adalog quantize`), or nowhere,
// in which case it is the default (kImagenet preset) and `known` is false, so tools say
// "unknown (default ...)" instead of presenting a guess as a fact.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace adalog {

// How the shorter side is resampled (the centre crop follows). All three follow Pillow's
// Image.resize on 8-bit images, which is what torchvision's and timm's eval transforms call on
// PIL images: bilinear and bicubic are separable convolutions with the kernel widened by the
// downscale factor when `antialias` (Pillow always does); bicubic is Pillow's (a = -0.5), clamped
// to [0, 255] after each pass as Pillow does; nearest takes source pixel floor((i + 0.5) * in/out).
enum class Interpolation { kBilinear = 0, kBicubic = 1, kNearest = 2 };
// The model's input channel order: rgb (decoded order) or bgr (channels reversed before
// normalisation; mean/std are given in the model's order).
enum class ChannelOrder { kRgb = 0, kBgr = 1 };

const char* InterpolationName(Interpolation i);
const char* ChannelOrderName(ChannelOrder c);
std::vector<std::string> InterpolationNames();  // bilinear, bicubic, nearest
std::vector<std::string> ChannelOrderNames();   // rgb, bgr
// Throw adalog::Error listing the accepted names.
Interpolation ParseInterpolation(const std::string& name);
ChannelOrder ParseChannelOrder(const std::string& name);

// Evaluation preprocessing the model expects (used by image-folder loaders).
struct Preprocess {
  int resize_shorter = 0;  // 0: resize_shorter = floor(image size / 0.875) (crop_pct 0.875)
  float mean[3] = {0.485f, 0.456f, 0.406f};
  float std[3] = {0.229f, 0.224f, 0.225f};
  Interpolation interpolation = Interpolation::kBilinear;
  ChannelOrder channel_order = ChannelOrder::kRgb;
  // True when the fields were declared (ONNX metadata, or `quantize` given preprocessing options
  // or a model that had it); false when they are this struct's defaults standing in for unknown.
  bool known = false;
};

// resize_shorter with 0 resolved: floor(image_size / 0.875).
int EffectiveResize(const Preprocess& p, int image_size);

// The named presets (`--preprocess NAME`), each a complete Preprocess for a model input of
// image_size x image_size (known = true):
//  - imagenet:    resize floor(S / 0.875) (256 for 224), bilinear, ImageNet mean (0.485, 0.456,
//                 0.406) / std (0.229, 0.224, 0.225), rgb. This is also the default for a model
//                 whose preprocessing is unknown (then with known = false).
//  - torchvision: torchvision's classification eval preset (ImageClassification / references'
//                 ClassificationPresetEval): Resize(256) + CenterCrop(224) for 224, so resize
//                 floor(S / 0.875), bilinear (antialiased), ImageNet mean/std, rgb. Same values
//                 as imagenet.
//  - timm:        timm's transforms_imagenet_eval with resolve_data_config's defaults (a model
//                 whose pretrained_cfg names nothing else): crop_pct 0.875 -> resize
//                 floor(S / 0.875), bicubic, ImageNet mean/std, rgb.
//  - none:        no rescale beyond the crop (resize = S, crop_pct 1), bilinear, mean 0, std 1
//                 (pixels / 255 only), rgb.
std::vector<std::string> PreprocessPresetNames();
// Throws adalog::Error for an unknown name (listing the presets).
Preprocess PreprocessPreset(const std::string& name, int image_size);

// True when a and b preprocess an image of `image_size` identically (resize resolved; `known`
// ignored).
bool SamePreprocess(const Preprocess& a, const Preprocess& b, int image_size);
// The fields of `want` that differ from `have`, e.g. "mean 0.485,0.456,0.406 (stored 0.3,0.3,0.3)";
// empty when SamePreprocess.
std::vector<std::string> PreprocessDifferences(const Preprocess& want, const Preprocess& have,
                                               int image_size);

// "resize 18, crop 16, bilinear, rgb, mean 0.485,0.456,0.406, std 0.229,0.224,0.225" (numbers
// printed with %g, so they read back as the same float).
std::string DescribePreprocess(const Preprocess& p, int image_size);

// ONNX metadata_props keys declaring a model's preprocessing (values are plain text):
//   adalog.preprocess.mean           "0.3,0.3,0.3"   required when any key is present
//   adalog.preprocess.std            "0.4,0.4,0.4"   required when any key is present
//   adalog.preprocess.resize         "18"            optional (default floor(S / 0.875))
//   adalog.preprocess.interpolation  "bicubic"       optional (default bilinear)
//   adalog.preprocess.channel_order  "bgr"           optional (default rgb)
// Other adalog.preprocess.* keys are errors (a misspelled key must not be ignored); other
// metadata is ignored.
inline constexpr const char* kPreprocessMetadataPrefix = "adalog.preprocess.";

// Reads the keys above from `props` into *p (known = true) and returns true; returns false and
// leaves *p unchanged when no key has the prefix. Throws adalog::Error naming `source` and the
// key for a malformed value, a missing mean/std, or an unknown key.
bool ReadPreprocessMetadata(const std::vector<std::pair<std::string, std::string>>& props,
                            const std::string& source, Preprocess* p);

}  // namespace adalog
