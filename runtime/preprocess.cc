// Preprocessing descriptions: names, presets, comparison, text, ONNX metadata (runtime/preprocess.h).
#include "runtime/preprocess.h"

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "quant/error.h"

namespace adalog {
namespace {

std::string Join(const std::vector<std::string>& v) {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + v[i];
  return s;
}

std::string Triple(const float* v) {
  char buf[96];
  std::snprintf(buf, sizeof(buf), "%g,%g,%g", v[0], v[1], v[2]);
  return buf;
}

// Exactly three comma-separated finite floats.
bool ParseTriple(const std::string& text, float* out) {
  size_t pos = 0;
  for (int i = 0; i < 3; ++i) {
    const size_t comma = text.find(',', pos);
    const bool last = i == 2;
    if (last != (comma == std::string::npos)) return false;
    const std::string item = text.substr(pos, last ? std::string::npos : comma - pos);
    if (item.empty()) return false;
    char* end = nullptr;
    errno = 0;
    const float v = std::strtof(item.c_str(), &end);
    if (errno != 0 || end != item.c_str() + item.size() || !std::isfinite(v)) return false;
    out[i] = v;
    pos = comma + 1;
  }
  return true;
}

}  // namespace

const char* InterpolationName(Interpolation i) {
  switch (i) {
    case Interpolation::kBilinear: return "bilinear";
    case Interpolation::kBicubic: return "bicubic";
    case Interpolation::kNearest: return "nearest";
  }
  return "?";
}

const char* ChannelOrderName(ChannelOrder c) { return c == ChannelOrder::kBgr ? "bgr" : "rgb"; }

std::vector<std::string> InterpolationNames() { return {"bilinear", "bicubic", "nearest"}; }
std::vector<std::string> ChannelOrderNames() { return {"rgb", "bgr"}; }

Interpolation ParseInterpolation(const std::string& name) {
  for (Interpolation i : {Interpolation::kBilinear, Interpolation::kBicubic, Interpolation::kNearest}) {
    if (name == InterpolationName(i)) return i;
  }
  Fail("interpolation '", name, "' is not one of ", Join(InterpolationNames()));
}

ChannelOrder ParseChannelOrder(const std::string& name) {
  if (name == "rgb") return ChannelOrder::kRgb;
  if (name == "bgr") return ChannelOrder::kBgr;
  Fail("channel order '", name, "' is not one of ", Join(ChannelOrderNames()));
}

int EffectiveResize(const Preprocess& p, int image_size) {
  return p.resize_shorter > 0 ? p.resize_shorter : static_cast<int>(std::floor(image_size / 0.875));
}

std::vector<std::string> PreprocessPresetNames() { return {"imagenet", "torchvision", "timm", "none"}; }

Preprocess PreprocessPreset(const std::string& name, int image_size) {
  Preprocess p;  // ImageNet mean/std, bilinear, rgb
  p.known = true;
  p.resize_shorter = static_cast<int>(std::floor(image_size / 0.875));
  if (name == "imagenet" || name == "torchvision") return p;
  if (name == "timm") {
    p.interpolation = Interpolation::kBicubic;
    return p;
  }
  if (name == "none") {
    p.resize_shorter = image_size;
    for (int c = 0; c < 3; ++c) {
      p.mean[c] = 0.f;
      p.std[c] = 1.f;
    }
    return p;
  }
  Fail("preprocess preset '", name, "' is not one of ", Join(PreprocessPresetNames()));
}

bool SamePreprocess(const Preprocess& a, const Preprocess& b, int image_size) {
  return PreprocessDifferences(a, b, image_size).empty();
}

std::vector<std::string> PreprocessDifferences(const Preprocess& want, const Preprocess& have,
                                               int image_size) {
  std::vector<std::string> d;
  const int rw = EffectiveResize(want, image_size), rh = EffectiveResize(have, image_size);
  if (rw != rh) d.push_back("resize " + std::to_string(rw) + " (stored " + std::to_string(rh) + ")");
  if (want.interpolation != have.interpolation) {
    d.push_back(std::string("interpolation ") + InterpolationName(want.interpolation) + " (stored " +
                InterpolationName(have.interpolation) + ")");
  }
  if (want.channel_order != have.channel_order) {
    d.push_back(std::string("channel order ") + ChannelOrderName(want.channel_order) + " (stored " +
                ChannelOrderName(have.channel_order) + ")");
  }
  bool mean_same = true, std_same = true;
  for (int c = 0; c < 3; ++c) {
    mean_same = mean_same && want.mean[c] == have.mean[c];
    std_same = std_same && want.std[c] == have.std[c];
  }
  if (!mean_same) d.push_back("mean " + Triple(want.mean) + " (stored " + Triple(have.mean) + ")");
  if (!std_same) d.push_back("std " + Triple(want.std) + " (stored " + Triple(have.std) + ")");
  return d;
}

std::string DescribePreprocess(const Preprocess& p, int image_size) {
  return "resize " + std::to_string(EffectiveResize(p, image_size)) + ", crop " + std::to_string(image_size) +
         ", " + InterpolationName(p.interpolation) + ", " + ChannelOrderName(p.channel_order) + ", mean " +
         Triple(p.mean) + ", std " + Triple(p.std);
}

bool ReadPreprocessMetadata(const std::vector<std::pair<std::string, std::string>>& props,
                            const std::string& source, Preprocess* p) {
  const std::string prefix = kPreprocessMetadataPrefix;
  Preprocess r;
  r.known = true;
  bool any = false, has_mean = false, has_std = false;
  for (const auto& [key, value] : props) {
    if (key.compare(0, prefix.size(), prefix) != 0) continue;
    any = true;
    const std::string field = key.substr(prefix.size());
    const std::string what = source + ": metadata '" + key + "' = '" + value + "'";
    if (field == "mean" || field == "std") {
      float v[3];
      ADALOG_CHECK(ParseTriple(value, v), what, ": expected three comma-separated numbers");
      for (int c = 0; c < 3; ++c) {
        if (field == "std") ADALOG_CHECK(v[c] > 0.f, what, ": every std must be > 0");
        (field == "mean" ? r.mean : r.std)[c] = v[c];
      }
      (field == "mean" ? has_mean : has_std) = true;
    } else if (field == "resize") {
      char* end = nullptr;
      errno = 0;
      const long v = std::strtol(value.c_str(), &end, 10);
      ADALOG_CHECK(!value.empty() && errno == 0 && end == value.c_str() + value.size() && v >= 1 && v <= 65536,
                   what, ": expected an integer in 1..65536 (the shorter side before the crop)");
      r.resize_shorter = static_cast<int>(v);
    } else if (field == "interpolation") {
      try {
        r.interpolation = ParseInterpolation(value);
      } catch (const Error& e) {
        Fail(what, ": ", e.what());
      }
    } else if (field == "channel_order") {
      try {
        r.channel_order = ParseChannelOrder(value);
      } catch (const Error& e) {
        Fail(what, ": ", e.what());
      }
    } else {
      Fail(source, ": unknown metadata key '", key, "' (known: ", prefix, "mean, std, resize, interpolation, ",
           "channel_order)");
    }
  }
  if (!any) return false;
  ADALOG_CHECK(has_mean && has_std, source, ": metadata declares preprocessing (", prefix,
               "*) without both '", prefix, "mean' and '", prefix, "std'");
  *p = r;
  return true;
}

}  // namespace adalog
