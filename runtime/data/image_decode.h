// Decoding one image file's bytes into 8-bit RGB pixels. JPEG goes to libjpeg-turbo and PNG to
// libpng (Debian's libjpeg62-turbo and libpng16: the decoders PIL and torchvision use, fuzzed
// upstream by OSS-Fuzz); binary PGM/PPM are read here. BMP is refused with a clear error (the one
// header-only decoder available, stb_image, kept failing the fuzzer; see tests/fuzz/README.md).
// Image files are untrusted input: every failure is an adalog::Error naming the file, and sizes
// are bounded before allocation.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace adalog {

// The largest width or height, and the most pixels, accepted; larger images are refused from
// their header, before their pixels are allocated. A JPEG or PNG of a few hundred bytes can
// declare any size, and the decoder allocates it whole: 2^26 pixels (67 MP, e.g. 8192 x 8192;
// Pillow warns from 89 MP) bounds that to 192 MiB, far above any eval image. (At 16384^2 pixels,
// 768 MiB, one such fuzzer input took over 10 s under ASan on a loaded machine.)
inline constexpr int kMaxImageSide = 1 << 14;
inline constexpr int64_t kMaxImagePixels = int64_t{1} << 26;

struct DecodedImage {
  int width = 0;
  int height = 0;
  std::vector<uint8_t> rgb;  // height x width x 3, row-major
};

// Decodes `bytes` (the whole file) by its signature, not its name. Conversions follow PIL's
// Image.convert("RGB"), which torchvision's ImageFolder applies: grayscale is replicated, alpha
// and PNG transparency are dropped (not composited), palettes expanded, 16-bit samples keep their
// high byte, CMYK/YCCK JPEGs are converted to RGB. A JPEG that ends before its last scan is an
// error (PIL: "image file is truncated"); libjpeg's other warnings (e.g. extraneous bytes before
// a marker, common in ImageNet) are not. `path` is only used in error messages.
DecodedImage DecodeImage(const std::string& bytes, const std::string& path);

}  // namespace adalog
