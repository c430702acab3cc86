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

// The largest width or height accepted (larger files are refused before their pixels are
// allocated): 16384, far above any eval image, small enough that 3 * 16384^2 bytes (768 MiB)
// is the worst single allocation.
inline constexpr int kMaxImageSide = 1 << 14;

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
