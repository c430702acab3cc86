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
// Triangle (bilinear) kernel with half-pixel centres; with antialias the kernel is stretched by the
// downscale factor (PIL's ImagingResample, torchvision antialias=True).
struct AxisWeights {
  std::vector<int> first;
  std::vector<int> count;
  std::vector<float> w;  // taps per output, padded to max_taps
  int max_taps = 0;
};

AxisWeights MakeAxisWeights(int in_size, int out_size, bool antialias) {
  AxisWeights a;
  const double scale = static_cast<double>(in_size) / out_size;
  const double support = antialias ? std::max(scale, 1.0) : 1.0;  // triangle half-width
  a.max_taps = static_cast<int>(std::ceil(support)) * 2 + 1;
  a.first.resize(out_size);
  a.count.resize(out_size);
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
      const double d = std::fabs((j + 0.5 - center) / support);
      const double t = d < 1.0 ? 1.0 - d : 0.0;
      taps.push_back(t);
      total += t;
    }
    // Trim zero taps at both ends so count <= max_taps.
    size_t b = 0, e = taps.size();
    while (b < e && taps[b] == 0.0) ++b;
    while (e > b && taps[e - 1] == 0.0) --e;
    if (b == e) {  // cannot happen for in_size >= 1, but keep a valid nearest tap
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

ImagePreprocessOptions PreprocessOptionsFor(const VitModel& model) {
  ImagePreprocessOptions o;
  o.crop = model.embed.image_h;
  o.resize_shorter = model.preprocess.resize_shorter;
  for (int c = 0; c < 3; ++c) {
    o.mean[c] = model.preprocess.mean[c];
    o.std[c] = model.preprocess.std[c];
  }
  return o;
}

ImageFolder ScanImageFolder(const std::string& root, int expected_classes) {
  std::error_code ec;
  ADALOG_CHECK(fs::is_directory(root, ec), root, ": not a directory");
  ImageFolder f;
  f.root = root;
  for (const fs::directory_entry& e : fs::directory_iterator(root, ec)) {
    if (e.is_directory()) f.classes.push_back(e.path().filename().string());
  }
  ADALOG_CHECK(!ec, root, ": cannot list: ", ec.message());
  std::sort(f.classes.begin(), f.classes.end());
  ADALOG_CHECK(!f.classes.empty(), root, ": no class sub-folders (expected root/<class>/<image>)");
  if (expected_classes > 0) {
    ADALOG_CHECK(static_cast<int>(f.classes.size()) == expected_classes, root, ": found ",
                 f.classes.size(), " class folders but the model has ", expected_classes,
                 " classes");
  }
  for (size_t label = 0; label < f.classes.size(); ++label) {
    std::vector<std::string> files;
    for (const fs::directory_entry& e : fs::directory_iterator(fs::path(root) / f.classes[label], ec)) {
      if (e.is_regular_file() && IsImageFile(e.path())) files.push_back(e.path().string());
    }
    std::sort(files.begin(), files.end());
    for (std::string& p : files) f.items.push_back({std::move(p), static_cast<int>(label)});
  }
  ADALOG_CHECK(!f.items.empty(), root, ": no images (.jpg/.jpeg/.png/.bmp/.ppm/.pgm) found");
  return f;
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
  const AxisWeights wx = MakeAxisWeights(width, rw, opt.antialias);
  const AxisWeights wy = MakeAxisWeights(height, rh, opt.antialias);
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
      for (int c = 0; c < 3; ++c) tmp[(static_cast<size_t>(y) * S + x) * 3 + c] = acc[c];
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
      for (int c = 0; c < 3; ++c) {
        out[(static_cast<size_t>(c) * S + y) * S + x] = (acc[c] / 255.f - opt.mean[c]) / opt.std[c];
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
