// Image decoding: JPEG by libjpeg-turbo, PNG by libpng, binary PNM here (image_decode.h).
//
// Both C libraries report fatal errors through a callback that must not return; each decoder
// below longjmps back to its own frame. The rules that keeps defined: the only C++ objects alive
// across setjmp are declared before it in the same function (so no destructor is skipped), and
// locals written after setjmp and read after the jump are volatile or not read.
#include "runtime/data/image_decode.h"

#include <csetjmp>
#include <cstdio>
#include <cstring>

// clang-format off
#include <jpeglib.h>  // needs <cstdio> first
#include <jerror.h>
// clang-format on
#include <png.h>

#include "quant/error.h"

namespace adalog {
namespace {

void CheckSize(uint64_t w, uint64_t h, const char* format, const std::string& path) {
  ADALOG_CHECK(w >= 1 && h >= 1, path, ": ", format, " declares an empty image (", w, "x", h, ")");
  ADALOG_CHECK(w <= kMaxImageSide && h <= kMaxImageSide && w * h <= kMaxImagePixels, path, ": ",
               format, " image is ", w, "x", h, ", larger than this loader accepts (",
               kMaxImageSide, " per side, ", kMaxImagePixels, " pixels)");
}

// ---- JPEG (libjpeg-turbo) ----

struct JpegErrors {
  jpeg_error_mgr pub;  // first member: libjpeg sees a jpeg_error_mgr*
  jmp_buf jump;
  char message[JMSG_LENGTH_MAX + 64];
};

[[noreturn]] void JpegFatal(j_common_ptr cinfo) {
  auto* e = reinterpret_cast<JpegErrors*>(cinfo->err);
  cinfo->err->format_message(cinfo, e->message);
  std::longjmp(e->jump, 1);
}

// Warnings (msg_level -1) are ignored except "premature end of data": the rest of such an image
// is grey fill, which PIL refuses too. Trace messages (level >= 0) are never shown.
void JpegMessage(j_common_ptr cinfo, int msg_level) {
  if (msg_level < 0 && cinfo->err->msg_code == JWRN_JPEG_EOF) JpegFatal(cinfo);
}

// A progressive JPEG of a few hundred bytes can declare thousands of scans, each a full pass over
// the coefficient buffer (libjpeg-turbo's own fuzzers cap scans the same way). 1000 is far above
// what encoders write (about 10).
constexpr int kMaxJpegScans = 1000;

void JpegProgress(j_common_ptr cinfo) {
  if (!cinfo->is_decompressor) return;
  auto* d = reinterpret_cast<j_decompress_ptr>(cinfo);
  if (d->input_scan_number > kMaxJpegScans) {
    auto* e = reinterpret_cast<JpegErrors*>(cinfo->err);
    std::snprintf(e->message, sizeof(e->message), "more than %d progressive scans",
                  kMaxJpegScans);
    std::longjmp(e->jump, 1);
  }
}

// CMYK JPEGs (from Adobe tools, with the APP14 marker) store inverted ink values; PIL and most
// viewers convert them as R = C*K/255 on the stored values.
void CmykToRgb(const uint8_t* cmyk, size_t pixels, bool inverted, uint8_t* rgb) {
  for (size_t i = 0; i < pixels; ++i) {
    int c = cmyk[4 * i], m = cmyk[4 * i + 1], y = cmyk[4 * i + 2], k = cmyk[4 * i + 3];
    if (!inverted) {
      c = 255 - c;
      m = 255 - m;
      y = 255 - y;
      k = 255 - k;
    }
    rgb[3 * i] = static_cast<uint8_t>((c * k + 127) / 255);
    rgb[3 * i + 1] = static_cast<uint8_t>((m * k + 127) / 255);
    rgb[3 * i + 2] = static_cast<uint8_t>((y * k + 127) / 255);
  }
}

DecodedImage DecodeJpeg(const std::string& bytes, const std::string& path) {
  DecodedImage img;
  std::vector<uint8_t> cmyk;
  jpeg_decompress_struct cinfo;
  JpegErrors err;
  jpeg_progress_mgr progress;
  std::memset(&cinfo, 0, sizeof(cinfo));
  cinfo.err = jpeg_std_error(&err.pub);
  err.pub.error_exit = JpegFatal;
  err.pub.emit_message = JpegMessage;
  err.message[0] = '\0';
  progress.progress_monitor = JpegProgress;
  if (setjmp(err.jump)) {
    jpeg_destroy_decompress(&cinfo);
    Fail(path, ": cannot decode JPEG (", err.message, ")");
  }
  jpeg_create_decompress(&cinfo);
  cinfo.progress = &progress;
  cinfo.mem->max_memory_to_use = 1024L * 1024 * 1024;
  jpeg_mem_src(&cinfo, reinterpret_cast<const unsigned char*>(bytes.data()),
               static_cast<unsigned long>(bytes.size()));
  jpeg_read_header(&cinfo, TRUE);
  if (cinfo.image_width < 1 || cinfo.image_height < 1 || cinfo.image_width > kMaxImageSide ||
      cinfo.image_height > kMaxImageSide ||
      int64_t{cinfo.image_width} * cinfo.image_height > kMaxImagePixels) {
    std::snprintf(err.message, sizeof(err.message),
                  "image is %ux%u, outside 1..%d per side or above %lld pixels", cinfo.image_width,
                  cinfo.image_height, kMaxImageSide, static_cast<long long>(kMaxImagePixels));
    std::longjmp(err.jump, 1);
  }
  const bool four = cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK;
  cinfo.out_color_space = four ? JCS_CMYK : JCS_RGB;  // libjpeg-turbo expands grayscale to RGB
  jpeg_start_decompress(&cinfo);
  img.width = static_cast<int>(cinfo.output_width);
  img.height = static_cast<int>(cinfo.output_height);
  const size_t channels = static_cast<size_t>(cinfo.output_components);
  if (channels != (four ? 4u : 3u)) {
    std::snprintf(err.message, sizeof(err.message), "unexpected %d output components",
                  cinfo.output_components);
    std::longjmp(err.jump, 1);
  }
  const size_t row = static_cast<size_t>(img.width) * channels;
  std::vector<uint8_t>& out = four ? cmyk : img.rgb;
  out.resize(row * static_cast<size_t>(img.height));
  while (cinfo.output_scanline < cinfo.output_height) {
    JSAMPROW r = out.data() + row * cinfo.output_scanline;
    jpeg_read_scanlines(&cinfo, &r, 1);
  }
  const bool inverted = cinfo.saw_Adobe_marker;
  jpeg_finish_decompress(&cinfo);
  jpeg_destroy_decompress(&cinfo);
  if (four) {
    img.rgb.resize(static_cast<size_t>(img.width) * img.height * 3);
    CmykToRgb(cmyk.data(), static_cast<size_t>(img.width) * img.height, inverted, img.rgb.data());
  }
  return img;
}

// ---- PNG (libpng) ----

struct PngReader {
  const unsigned char* data;
  size_t size;
  size_t pos;
  jmp_buf jump;
  char message[600];  // error + " (" + warning + ")"
  char warning[256];  // the last warning: libpng explains some errors only in a warning before
};

[[noreturn]] void PngFatal(png_structp png, png_const_charp msg) {
  auto* r = static_cast<PngReader*>(png_get_error_ptr(png));
  std::snprintf(r->message, sizeof(r->message), "%s%s%s%s", msg ? msg : "unknown error",
                r->warning[0] ? " (" : "", r->warning, r->warning[0] ? ")" : "");
  std::longjmp(r->jump, 1);
}

// Warnings (e.g. a bad CRC in an ancillary chunk) do not stop decoding; the last one is kept
// for the message of a later error ("Invalid IHDR data" follows "Image width exceeds user limit").
void PngWarning(png_structp png, png_const_charp msg) {
  auto* r = static_cast<PngReader*>(png_get_error_ptr(png));
  std::snprintf(r->warning, sizeof(r->warning), "%s", msg ? msg : "");
}

void PngRead(png_structp png, png_bytep out, size_t n) {
  auto* r = static_cast<PngReader*>(png_get_io_ptr(png));
  if (n > r->size - r->pos) png_error(png, "file ends inside a chunk");
  std::memcpy(out, r->data + r->pos, n);
  r->pos += n;
}

DecodedImage DecodePng(const std::string& bytes, const std::string& path) {
  DecodedImage img;
  std::vector<png_bytep> rows;
  PngReader reader{reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(), 0, {}, {}, {}};
  png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &reader, PngFatal, PngWarning);
  ADALOG_CHECK(png != nullptr, path, ": cannot decode PNG (out of memory)");
  png_infop info = png_create_info_struct(png);
  if (info == nullptr) {
    png_destroy_read_struct(&png, nullptr, nullptr);
    Fail(path, ": cannot decode PNG (out of memory)");
  }
  if (setjmp(reader.jump)) {
    png_destroy_read_struct(&png, &info, nullptr);
    Fail(path, ": cannot decode PNG (", reader.message, ")");
  }
  png_set_read_fn(png, &reader, PngRead);
  png_set_user_limits(png, kMaxImageSide, kMaxImageSide);
  png_read_info(png, info);
  if (int64_t{png_get_image_width(png, info)} * png_get_image_height(png, info) > kMaxImagePixels) {
    std::snprintf(reader.warning, sizeof(reader.warning), "image is %ux%u, above %lld pixels",
                  png_get_image_width(png, info), png_get_image_height(png, info),
                  static_cast<long long>(kMaxImagePixels));
    png_error(png, "image too large");
  }
  const png_byte color = png_get_color_type(png, info);
  const png_byte depth = png_get_bit_depth(png, info);
  if (color == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
  if (color == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
  if (depth == 16) png_set_strip_16(png);  // keep the high byte, as PIL does
  // Alpha, and the alpha that expanding a tRNS chunk adds to a palette, is dropped.
  if ((color & PNG_COLOR_MASK_ALPHA) || png_get_valid(png, info, PNG_INFO_tRNS)) {
    png_set_strip_alpha(png);
  }
  if (!(color & PNG_COLOR_MASK_COLOR)) png_set_gray_to_rgb(png);
  png_set_interlace_handling(png);
  png_read_update_info(png, info);
  img.width = static_cast<int>(png_get_image_width(png, info));
  img.height = static_cast<int>(png_get_image_height(png, info));
  const size_t row = static_cast<size_t>(img.width) * 3;
  if (png_get_rowbytes(png, info) != row) {
    png_error(png, "unexpected row size after conversion to 8-bit RGB");
  }
  img.rgb.resize(row * static_cast<size_t>(img.height));
  rows.resize(static_cast<size_t>(img.height));
  for (size_t y = 0; y < rows.size(); ++y) rows[y] = img.rgb.data() + row * y;
  png_read_image(png, rows.data());
  png_destroy_read_struct(&png, &info, nullptr);  // trailing chunks after the image are not read
  return img;
}

// ---- Binary PGM/PPM (P5/P6), read here: the format is a text header and a raw raster ----

// Header: magic, then width, height and maxval as decimal numbers separated by whitespace or
// '#' comments, then exactly one whitespace byte; the raster is width*height*channels samples of
// one byte (maxval < 256) or two big-endian bytes. Samples are scaled to 0..255 as
// round(v * 255 / maxval); a sample above maxval, a short raster or trailing bytes beyond one
// more image are errors. Only the first image of a multi-image file is read (as Pillow does).
DecodedImage DecodePnm(const std::string& b, const std::string& path) {
  const int channels = b[1] == '6' ? 3 : 1;
  size_t i = 2;
  uint64_t v[3] = {0, 0, 0};
  for (uint64_t& value : v) {
    for (;;) {  // whitespace and comments before each number
      ADALOG_CHECK(i < b.size(), path, ": truncated PNM header");
      if (b[i] == '#') {
        while (i < b.size() && b[i] != '\n' && b[i] != '\r') ++i;
      } else if (b[i] == ' ' || (b[i] >= '\t' && b[i] <= '\r')) {
        ++i;
      } else {
        break;
      }
    }
    ADALOG_CHECK(b[i] >= '0' && b[i] <= '9', path, ": corrupt PNM: expected a number at offset ", i);
    for (; i < b.size() && b[i] >= '0' && b[i] <= '9'; ++i) {
      value = value * 10 + static_cast<uint64_t>(b[i] - '0');
      ADALOG_CHECK(value <= INT32_MAX, path, ": corrupt PNM: header number at offset ", i,
                   " exceeds ", INT32_MAX);
    }
  }
  ADALOG_CHECK(i < b.size() && (b[i] == ' ' || (b[i] >= '\t' && b[i] <= '\r')), path,
               ": corrupt PNM: no whitespace after the header at offset ", i);
  ++i;
  const uint64_t w = v[0], h = v[1], maxval = v[2];
  CheckSize(w, h, "PNM", path);
  ADALOG_CHECK(maxval >= 1 && maxval <= 65535, path, ": corrupt PNM: maxval ", maxval,
               " outside 1..65535");
  const size_t bytes_per = maxval < 256 ? 1 : 2;
  const size_t samples = static_cast<size_t>(w) * h * channels;
  ADALOG_CHECK(b.size() - i >= samples * bytes_per, path, ": truncated PNM: ", samples * bytes_per,
               " raster bytes expected, ", b.size() - i, " present");
  DecodedImage img;
  img.width = static_cast<int>(w);
  img.height = static_cast<int>(h);
  img.rgb.resize(static_cast<size_t>(w) * h * 3);
  const auto* raster = reinterpret_cast<const unsigned char*>(b.data()) + i;
  for (size_t s = 0; s < samples; ++s) {
    const uint32_t x = bytes_per == 1 ? raster[s] : (uint32_t{raster[2 * s]} << 8) | raster[2 * s + 1];
    ADALOG_CHECK(x <= maxval, path, ": corrupt PNM: sample ", s, " is ", x, ", above maxval ",
                 maxval);
    const auto u = static_cast<uint8_t>(maxval == 255 ? x : (x * 255 + maxval / 2) / maxval);
    if (channels == 3) {
      img.rgb[s] = u;
    } else {
      img.rgb[3 * s] = img.rgb[3 * s + 1] = img.rgb[3 * s + 2] = u;
    }
  }
  return img;
}

bool StartsWith(const std::string& b, const char* sig, size_t n) {
  return b.size() >= n && std::memcmp(b.data(), sig, n) == 0;
}

}  // namespace

DecodedImage DecodeImage(const std::string& bytes, const std::string& path) {
  ADALOG_CHECK(bytes.size() <= static_cast<size_t>(INT32_MAX), path, ": image file too large");
  if (StartsWith(bytes, "\xFF\xD8\xFF", 3)) return DecodeJpeg(bytes, path);
  if (StartsWith(bytes, "\x89PNG\r\n\x1a\n", 8)) return DecodePng(bytes, path);
  if (StartsWith(bytes, "P5", 2) || StartsWith(bytes, "P6", 2)) return DecodePnm(bytes, path);
  ADALOG_CHECK(!StartsWith(bytes, "BM", 2), path,
               ": BMP images are not supported (convert them to PNG, e.g. with Pillow)");
  Fail(path, ": not an image this loader reads (expected JPEG, PNG or binary PGM/PPM by signature)");
}

}  // namespace adalog
