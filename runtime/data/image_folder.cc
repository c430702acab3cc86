// Image-folder scanning and eval preprocessing (resize, crop, normalise); decoding is image_decode.h.
#include "runtime/data/image_folder.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>

#include "quant/error.h"
#include "runtime/data/image_decode.h"

namespace adalog {
namespace {

namespace fs = std::filesystem;

bool IsImageFile(const fs::path& p) {
  std::string ext = p.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return ext == ".jpg" || ext == ".jpeg" || ext == ".png" || ext == ".bmp" || ext == ".ppm" ||
         ext == ".pgm";
}

// Separable resampling weights for one axis: out[i] = sum_j w[i][j] * in[first[i] + j].
// Pillow's ImagingResample: half-pixel centres, kernel argument (j + 0.5 - centre) / filterscale
// where filterscale = max(in/out, 1) with antialias (1 without), support = kernel support *
// filterscale, weights normalised to sum 1. Nearest is Pillow's affine nearest: source
// floor((i + 0.5) * in/out), with Pillow's arithmetic.
struct AxisWeights {
  std::vector<int> first;
  std::vector<int> count;
  std::vector<float> w;  // taps per output, padded to max_taps
  int max_taps = 0;
};

double TriangleKernel(double x) {
  x = std::fabs(x);
  return x < 1.0 ? 1.0 - x : 0.0;
}

// Pillow's bicubic_filter (a = -0.5, support 2).
double BicubicKernel(double x) {
  constexpr double a = -0.5;
  x = std::fabs(x);
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0;
  if (x < 2.0) return (((x - 5.0) * x + 8.0) * x - 4.0) * a;
  return 0.0;
}

AxisWeights MakeAxisWeights(int in_size, int out_size, bool antialias, Interpolation interp) {
  AxisWeights a;
  const double scale = static_cast<double>(in_size) / out_size;
  a.first.resize(out_size);
  a.count.resize(out_size);
  if (interp == Interpolation::kNearest) {
    a.max_taps = 1;
    a.w.assign(static_cast<size_t>(out_size), 1.f);
    // Pillow's ImagingScaleAffine accumulates the position (x = scale / 2, then x += scale) and
    // truncates; computing (i + 0.5) * scale directly picks the other pixel where the product is
    // an exact integer (64 -> 23: 11.5 * 64/23 = 32), so its arithmetic is reproduced as is.
    double x = scale * 0.5;
    for (int i = 0; i < out_size; ++i, x += scale) {
      a.first[i] = std::min(static_cast<int>(x), in_size - 1);
      a.count[i] = 1;
    }
    return a;
  }
  const bool cubic = interp == Interpolation::kBicubic;
  const double filterscale = antialias ? std::max(scale, 1.0) : 1.0;
  const double support = (cubic ? 2.0 : 1.0) * filterscale;
  a.max_taps = static_cast<int>(std::ceil(support)) * 2 + 1;
  a.w.assign(static_cast<size_t>(out_size) * a.max_taps, 0.f);
  for (int i = 0; i < out_size; ++i) {
    const double center = (i + 0.5) * scale;
    int lo = static_cast<int>(std::floor(center - support));
    int hi = static_cast<int>(std::ceil(center + support));
    lo = std::max(lo, 0);
    hi = std::min(hi, in_size);
    double total = 0.0;
    std::vector<double> taps;
    for (int j = lo; j < hi; ++j) {
      const double x = (j + 0.5 - center) / filterscale;
      const double t = cubic ? BicubicKernel(x) : TriangleKernel(x);
      taps.push_back(t);
      total += t;
    }
    // Trim zero taps at both ends so count <= max_taps.
    size_t b = 0, e = taps.size();
    while (b < e && taps[b] == 0.0) ++b;
    while (e > b && taps[e - 1] == 0.0) --e;
    if (b == e || total == 0.0) {  // cannot happen for in_size >= 1, but keep a valid nearest tap
      lo = std::min(std::max(static_cast<int>(center), 0), in_size - 1);
      b = 0;
      e = 1;
      taps.assign(1, 1.0);
      total = 1.0;
    }
    a.first[i] = lo + static_cast<int>(b);
    a.count[i] = static_cast<int>(e - b);
    for (size_t j = b; j < e; ++j) a.w[static_cast<size_t>(i) * a.max_taps + (j - b)] = static_cast<float>(taps[j] / total);
  }
  return a;
}

}  // namespace

ImagePreprocessOptions PreprocessOptionsFrom(const Preprocess& p, int crop) {
  ImagePreprocessOptions o;
  o.crop = crop;
  o.resize_shorter = p.resize_shorter;
  o.interpolation = p.interpolation;
  o.channel_order = p.channel_order;
  for (int c = 0; c < 3; ++c) {
    o.mean[c] = p.mean[c];
    o.std[c] = p.std[c];
  }
  return o;
}

ImagePreprocessOptions PreprocessOptionsFor(const VitModel& model) {
  return PreprocessOptionsFrom(model.preprocess, model.embed.image_h);
}

int ImageFolder::skipped_total() const {
  int n = 0;
  for (const Skipped& s : skipped) n += s.count;
  return n;
}

ImageFolder ScanImageFolder(const std::string& root, const ImageFolderScanOptions& options) {
  std::error_code ec;
  ADALOG_CHECK(fs::is_directory(root, ec), root, ": not a directory");
  ImageFolder f;
  f.root = root;
  f.skipped = {{"unsupported extension", 0, ""},
               {"empty class folder", 0, ""},
               {"not a regular file", 0, ""},
               {"outside the class folders", 0, ""}};
  enum { kExtension, kEmptyClass, kNotRegular, kOutside };
  auto skip = [&f](int reason, const std::string& path) {
    ImageFolder::Skipped& s = f.skipped[static_cast<size_t>(reason)];
    if (s.count++ == 0) s.example = path;
  };
  // Regular files that are images go to *images; everything else is counted as skipped.
  auto list = [&](const fs::path& dir, std::vector<std::string>* images, std::vector<std::string>* subdirs,
                  int file_reason) {
    std::vector<fs::directory_entry> entries;
    for (const fs::directory_entry& e : fs::directory_iterator(dir, ec)) entries.push_back(e);
    ADALOG_CHECK(!ec, dir.string(), ": cannot list: ", ec.message());
    std::sort(entries.begin(), entries.end(),
              [](const fs::directory_entry& x, const fs::directory_entry& y) { return x.path() < y.path(); });
    for (const fs::directory_entry& e : entries) {
      std::error_code ee;
      if (subdirs != nullptr && e.is_directory(ee)) {
        subdirs->push_back(e.path().filename().string());
      } else if (!e.is_regular_file(ee)) {
        skip(kNotRegular, e.path().string());
      } else if (!IsImageFile(e.path())) {
        skip(kExtension, e.path().string());
      } else if (file_reason >= 0) {
        skip(file_reason, e.path().string());
      } else {
        images->push_back(e.path().string());
      }
    }
  };
  std::vector<std::string> root_images;
  list(root, &root_images, &f.classes, -1);
  if (f.classes.empty() && options.allow_flat) {
    f.flat = true;
    for (std::string& p : root_images) f.items.push_back({std::move(p), -1});
  } else {
    ADALOG_CHECK(!f.classes.empty(), root, ": no class sub-folders (expected root/<class>/<image>",
                 root_images.empty() ? ")" : "; a flat folder of images has no labels)");
    // Images directly in the root are not in any class: counted, not read.
    for (const std::string& p : root_images) skip(kOutside, p);
    if (options.expected_classes > 0) {
      ADALOG_CHECK(static_cast<int>(f.classes.size()) == options.expected_classes, root, ": found ",
                   f.classes.size(), " class folders but the model has ", options.expected_classes, " classes");
    }
    for (size_t label = 0; label < f.classes.size(); ++label) {
      const fs::path dir = fs::path(root) / f.classes[label];
      std::vector<std::string> files;
      list(dir, &files, nullptr, -1);  // sub-folders of a class folder count as not regular
      if (files.empty()) skip(kEmptyClass, dir.string());
      for (std::string& p : files) f.items.push_back({std::move(p), static_cast<int>(label)});
    }
  }
  const std::string skipped = DescribeSkipped(f);
  ADALOG_CHECK(!f.items.empty(), root, ": no images (.jpg/.jpeg/.png/.bmp/.ppm/.pgm) found",
               skipped.empty() ? "" : " (", skipped, skipped.empty() ? "" : ")");
  ADALOG_CHECK(!options.strict || skipped.empty(), skipped, " (strict: every entry must be a readable image)");
  return f;
}

ImageFolder ScanImageFolder(const std::string& root, int expected_classes) {
  ImageFolderScanOptions o;
  o.expected_classes = expected_classes;
  return ScanImageFolder(root, o);
}

std::string DescribeSkipped(const ImageFolder& folder) {
  const int total = folder.skipped_total();
  if (total == 0) return "";
  std::string s = folder.root + ": skipped " + std::to_string(total) + (total == 1 ? " entry:" : " entries:");
  bool first = true;
  for (const ImageFolder::Skipped& k : folder.skipped) {
    if (k.count == 0) continue;
    s += (first ? " " : ", ") + std::to_string(k.count) + " " + k.reason + " (e.g. '" + k.example + "')";
    first = false;
  }
  return s;
}

void PreprocessPixels(const uint8_t* pixels, int width, int height, int channels,
                      const ImagePreprocessOptions& opt, float* out) {
  ADALOG_CHECK(width > 0 && height > 0 && channels >= 1 && channels <= 4, "image: bad size ",
               width, "x", height, "x", channels);
  ADALOG_CHECK(opt.crop > 0, "preprocess: crop size ", opt.crop);
  const int shorter = opt.resize_shorter > 0 ? opt.resize_shorter
                                             : static_cast<int>(std::floor(opt.crop / 0.875));
  ADALOG_CHECK(shorter >= opt.crop, "preprocess: resize ", shorter, " smaller than crop ", opt.crop);
  // torchvision Resize(int): shorter side -> `shorter`, longer side scaled and truncated.
  int rw, rh;
  if (width <= height) {
    rw = shorter;
    rh = static_cast<int>(static_cast<int64_t>(shorter) * height / width);
  } else {
    rh = shorter;
    rw = static_cast<int>(static_cast<int64_t>(shorter) * width / height);
  }
  // torchvision CenterCrop: int(round((size - crop) / 2)), Python's round is half-to-even.
  const int top = static_cast<int>(std::nearbyint((rh - opt.crop) / 2.0));
  const int left = static_cast<int>(std::nearbyint((rw - opt.crop) / 2.0));
  const AxisWeights wx = MakeAxisWeights(width, rw, opt.antialias, opt.interpolation);
  const AxisWeights wy = MakeAxisWeights(height, rh, opt.antialias, opt.interpolation);
  // Bicubic overshoots; Pillow clamps each pass to the 8-bit range, and so do we (bilinear and
  // nearest cannot leave it). Bicubic also rounds its horizontal pass to 8 bits as Pillow does
  // (floor(v + 0.5)): with its negative lobes the float intermediate drifted up to 1.0007/255 from
  // Pillow on tests/data/images/resize_up.png, over the 1/255 the resampler promises; rounded, the
  // result is within Pillow's final rounding (DataResizePillow prints the measured maximum).
  const bool clamp = opt.interpolation == Interpolation::kBicubic;
  const int src_channel[3] = {opt.channel_order == ChannelOrder::kBgr ? 2 : 0, 1,
                              opt.channel_order == ChannelOrder::kBgr ? 0 : 2};
  const int S = opt.crop;
  const int gray = channels <= 2;  // 1: gray, 2: gray+alpha
  // Horizontal pass over all input rows for the cropped columns: tmp[y][x][c], c in 0..2.
  std::vector<float> tmp(static_cast<size_t>(height) * S * 3);
  for (int y = 0; y < height; ++y) {
    const uint8_t* row = pixels + static_cast<size_t>(y) * width * channels;
    for (int x = 0; x < S; ++x) {
      const int ox = left + x;
      float acc[3] = {0.f, 0.f, 0.f};
      for (int t = 0; t < wx.count[ox]; ++t) {
        const float w = wx.w[static_cast<size_t>(ox) * wx.max_taps + t];
        const uint8_t* px = row + static_cast<size_t>(wx.first[ox] + t) * channels;
        for (int c = 0; c < 3; ++c) acc[c] += w * px[gray ? 0 : c];
      }
      for (int c = 0; c < 3; ++c)
        tmp[(static_cast<size_t>(y) * S + x) * 3 + c] =
            clamp ? std::min(std::max(std::floor(acc[c] + 0.5f), 0.f), 255.f) : acc[c];
    }
  }
  // Vertical pass for the cropped rows, then scale to [0,1] and normalise.
  for (int y = 0; y < S; ++y) {
    const int oy = top + y;
    for (int x = 0; x < S; ++x) {
      float acc[3] = {0.f, 0.f, 0.f};
      for (int t = 0; t < wy.count[oy]; ++t) {
        const float w = wy.w[static_cast<size_t>(oy) * wy.max_taps + t];
        const float* px = &tmp[(static_cast<size_t>(wy.first[oy] + t) * S + x) * 3];
        for (int c = 0; c < 3; ++c) acc[c] += w * px[c];
      }
      if (clamp) {
        for (int c = 0; c < 3; ++c) acc[c] = std::min(std::max(acc[c], 0.f), 255.f);
      }
      for (int c = 0; c < 3; ++c) {
        out[(static_cast<size_t>(c) * S + y) * S + x] = (acc[src_channel[c]] / 255.f - opt.mean[c]) / opt.std[c];
      }
    }
  }
}

void LoadImageChw(const std::string& path, const ImagePreprocessOptions& opt, float* out) {
  std::ifstream in(path, std::ios::binary);
  ADALOG_CHECK(in.good(), path, ": cannot open image");
  std::error_code ec;
  const uintmax_t size = fs::file_size(path, ec);
  ADALOG_CHECK(ec || size <= static_cast<uintmax_t>(INT32_MAX), path, ": image file too large (",
               size, " bytes)");
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ADALOG_CHECK(!in.bad(), path, ": read error");
  const DecodedImage img = DecodeImage(bytes, path);
  try {
    PreprocessPixels(img.rgb.data(), img.width, img.height, 3, opt, out);
  } catch (const Error& e) {
    Fail(path, ": ", e.what());
  }
}

void LoadImageBatch(const ImageFolder& folder, size_t begin, size_t count,
                    const ImagePreprocessOptions& opt, float* images, int64_t* labels) {
  ADALOG_CHECK(begin <= folder.items.size() && count <= folder.items.size() - begin,
               folder.root, ": batch [", begin, ", ", begin + count, ") outside ",
               folder.items.size(), " images");
  const size_t per_image = static_cast<size_t>(3) * opt.crop * opt.crop;
  for (size_t i = 0; i < count; ++i) {
    LoadImageChw(folder.items[begin + i].path, opt, images + i * per_image);
    labels[i] = folder.items[begin + i].label;
  }
}

}  // namespace adalog
