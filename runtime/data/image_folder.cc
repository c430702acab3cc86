// Image-folder scanning, decoding (stb_image) and eval preprocessing (resize, crop, normalise).
#include "runtime/data/image_folder.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <stb/stb_image.h>
#include <string>

#include "quant/error.h"

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

// The stb_image in Debian 12 (libstb-dev 0.0~git20220908) builds a JPEG Huffman table from the
// 16 code-length counts of a DHT segment without checking that they total at most 256 (the
// table's capacity), so a crafted JPEG writes past the table inside the decoder's heap state
// (found by tests/fuzz/fuzz_image.cc; upstream stb_image 2.28 added the check). This refuses such
// files before stb sees them. stb reads a DHT wherever the byte pair FF C4 is taken as a marker;
// rather than re-implement its marker walk, every FF C4 in the file is checked the way stb's DHT
// loop would read it (segment length, then tables of class/id byte, 16 counts, values), which
// covers every table stb could build. A false alarm needs FF C4 inside metadata followed by
// bytes that read as a table class/id and counts totalling more than 256.
void CheckJpegHuffmanTables(const std::string& b, const std::string& path) {
  // Past the end stb's reader yields zero bytes, and so does this one.
  const auto u8 = [&b](size_t i) {
    return i < b.size() ? static_cast<unsigned>(static_cast<unsigned char>(b[i])) : 0u;
  };
  // JPEG iff SOI: stb's marker reader skips any number of FF fill bytes before the D8.
  size_t soi = 0;
  while (soi < b.size() && u8(soi) == 0xFF) ++soi;
  if (soi == 0 || u8(soi) != 0xD8) return;  // not a JPEG
  for (size_t m = soi + 1; m + 1 < b.size(); ++m) {
    if (u8(m) != 0xFF || u8(m + 1) != 0xC4) continue;
    long left = static_cast<long>((u8(m + 2) << 8) | u8(m + 3)) - 2;  // stb: L = get16 - 2
    size_t p = m + 4;
    while (left > 0 && p < b.size()) {
      const unsigned q = u8(p);
      if ((q >> 4) > 1 || (q & 15) > 3) break;  // stb rejects the file here
      unsigned n = 0;
      for (size_t i = 1; i <= 16; ++i) n += u8(p + i);
      ADALOG_CHECK(n <= 256, path, ": corrupt JPEG: Huffman table at offset ", p, " declares ", n,
                   " codes (at most 256)");
      left -= 17 + static_cast<long>(n);
      p += 17 + n;
    }
  }
}

// stb_image grows its PNG data buffer to a chunk's declared length (up to 2^31 bytes) before
// reading the chunk, so a 200-byte file could make it allocate gigabytes (found by
// tests/fuzz/fuzz_image.cc as a timeout). A chunk that runs past the end of the file can never
// decode, so such files are refused before stb sees them.
void CheckPngChunkLengths(const std::string& b, const std::string& path) {
  static const char kSig[8] = {'\x89', 'P', 'N', 'G', '\r', '\n', '\x1a', '\n'};
  if (b.size() < 8 || b.compare(0, 8, kSig, 8) != 0) return;  // not a PNG
  size_t p = 8;
  while (p + 8 <= b.size()) {
    uint64_t len = 0;
    for (int i = 0; i < 4; ++i) len = (len << 8) | static_cast<unsigned char>(b[p + i]);
    const std::string type = b.substr(p + 4, 4);
    ADALOG_CHECK(len + 4 <= b.size() - (p + 8), path, ": corrupt PNG: chunk '", type, "' at offset ",
                 p, " declares ", len, " bytes, the file has ", b.size() - (p + 8), " left");
    if (type == "IEND") break;
    p += 12 + static_cast<size_t>(len);
  }
}

// stb_image reads the three header numbers of a binary PGM/PPM (P5/P6) into an int without an
// overflow check (signed overflow, undefined behaviour; found by tests/fuzz/fuzz_image.cc). This
// reads the header the way stb does (one byte of lookahead, zero past the end, whitespace and
// '#' comments skipped) and refuses a number above INT_MAX first.
void CheckPnmHeaderNumbers(const std::string& b, const std::string& path) {
  if (b.size() < 2 || b[0] != 'P' || (b[1] != '5' && b[1] != '6')) return;  // not P5/P6
  size_t i = 2;
  char c = 0;
  const auto eof = [&] { return i >= b.size(); };
  const auto get = [&] { c = eof() ? 0 : b[i++]; };
  const auto space = [&] { return c == ' ' || (c >= '\t' && c <= '\r'); };
  get();
  for (int k = 0; k < 3; ++k) {
    while (!eof() && (space() || c == '#')) {
      while (!eof() && space()) get();
      if (c == '#') {
        while (!eof() && c != '\n' && c != '\r') get();
      }
    }
    int64_t value = 0;
    while (!eof() && c >= '0' && c <= '9') {
      value = value * 10 + (c - '0');
      ADALOG_CHECK(value <= INT32_MAX, path, ": corrupt PNM: header number at offset ", i - 1,
                   " exceeds ", INT32_MAX);
      get();
    }
  }
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
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ADALOG_CHECK(!in.bad(), path, ": read error");
  ADALOG_CHECK(bytes.size() <= static_cast<size_t>(INT32_MAX), path, ": image file too large");
  CheckJpegHuffmanTables(bytes, path);
  CheckPngChunkLengths(bytes, path);
  CheckPnmHeaderNumbers(bytes, path);
  int w = 0, h = 0, c = 0;
  std::unique_ptr<stbi_uc, void (*)(void*)> pixels(
      stbi_load_from_memory(reinterpret_cast<const stbi_uc*>(bytes.data()),
                            static_cast<int>(bytes.size()), &w, &h, &c, 0),
      stbi_image_free);
  if (!pixels) {
    const char* why = stbi_failure_reason();
    Fail(path, ": cannot decode image (", why ? why : "unknown reason", ")");
  }
  try {
    PreprocessPixels(pixels.get(), w, h, c, opt, out);
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
