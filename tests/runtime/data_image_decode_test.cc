// Image decoding (runtime/data/image_decode.h): the decoded pixels equal Pillow's
// Image.convert("RGB") bit for bit (what torchvision's ImageFolder gives a model), and malformed
// or oversized files are refused with an error naming the file, before their pixels are allocated.
#include "runtime/data/image_decode.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "quant/error.h"
#include "tests/util/test_files.h"

namespace adalog {
namespace {

using test::ReadFileBytes;
using test::TestImage;

// Expects DecodeImage(bytes) to throw an adalog::Error whose message names `path` and contains
// `what`.
void ExpectRefused(const std::string& bytes, const std::string& path, const std::string& what) {
  try {
    const DecodedImage img = DecodeImage(bytes, path);
    ADD_FAILURE() << path << ": decoded as " << img.width << "x" << img.height
                  << ", expected an error containing '" << what << "'";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(path), std::string::npos) << msg;
    EXPECT_NE(msg.find(what), std::string::npos) << "expected '" << what << "' in: " << msg;
  }
}

// A string literal with embedded NUL bytes, whole.
template <size_t N>
std::string Bytes(const char (&s)[N]) {
  return std::string(s, N - 1);
}

uint32_t Crc32(const std::string& s) {  // PNG's CRC-32 (ISO 3309), bitwise
  uint32_t c = 0xFFFFFFFFu;
  for (unsigned char b : s) {
    c ^= b;
    for (int k = 0; k < 8; ++k) c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1u)));
  }
  return c ^ 0xFFFFFFFFu;
}

void PutBe32(std::string& s, size_t at, uint32_t v) {
  for (int i = 0; i < 4; ++i) s[at + i] = static_cast<char>((v >> (24 - 8 * i)) & 0xFF);
}

// tests/data/images/make_decoder_refs.py wrote each file with Pillow and, next to it, Pillow's
// decode as raw RGB bytes. Both decoders are libjpeg-turbo / libpng underneath (Debian's), so
// the bytes must be identical, not merely close.
class DecodeMatchesPillow : public ::testing::TestWithParam<const char*> {};

TEST_P(DecodeMatchesPillow, BitForBit) {
  const std::string name = GetParam();
  const std::string path = TestImage(name);
  const std::string expected = ReadFileBytes(path.substr(0, path.rfind('.')) + ".rgb");
  const DecodedImage img = DecodeImage(ReadFileBytes(path), path);
  ASSERT_EQ(img.width, 13);
  ASSERT_EQ(img.height, 9);
  ASSERT_EQ(img.rgb.size(), expected.size());
  size_t differ = 0;
  int max_diff = 0;
  for (size_t i = 0; i < expected.size(); ++i) {
    const int d = std::abs(int{img.rgb[i]} - int{static_cast<uint8_t>(expected[i])});
    differ += d != 0;
    max_diff = std::max(max_diff, d);
  }
  EXPECT_EQ(differ, 0u) << name << ": " << differ << " of " << expected.size()
                        << " bytes differ from Pillow's decode, by up to " << max_diff;
  // Not a degenerate image: the reference has many distinct values.
  EXPECT_GT(std::count_if(expected.begin(), expected.end(), [&](char c) { return c != expected[0]; }),
            static_cast<long>(expected.size() / 4));
}

INSTANTIATE_TEST_SUITE_P(
    Formats, DecodeMatchesPillow,
    ::testing::Values("ref_rgb420.jpg", "ref_rgb444_progressive.jpg", "ref_gray.jpg",
                      "ref_cmyk.jpg", "ref_palette_trns.png", "ref_gray_alpha.png",
                      "ref_bilevel.png", "ref_rgba.png", "ref_rgb16.png"),
    [](const ::testing::TestParamInfo<const char*>& i) {
      std::string n = i.param;
      for (char& c : n) c = std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
      return n;
    });

TEST(DataImageDecodeTest, UnknownSignatureIsRefused) {
  ExpectRefused("GIF89a\x01\x00\x01\x00", "/data/x.gif", "not an image this loader reads");
  ExpectRefused("", "/data/empty.jpg", "not an image this loader reads");
  // A JPEG preceded by fill bytes: Pillow refuses it too (it needs FF D8 FF first).
  ExpectRefused(std::string(7, '\xFF') + ReadFileBytes(TestImage("ref_rgb420.jpg")), "/data/fill.jpg",
                "not an image this loader reads");
}

// A JPEG that ends inside its scan decodes to grey fill in libjpeg (a warning); Pillow refuses it
// ("image file is truncated"), and so does this loader. A cut inside the headers is an error too.
TEST(DataImageDecodeTest, TruncatedFilesAreRefused) {
  for (const char* name : {"ref_rgb420.jpg", "ref_rgb444_progressive.jpg", "ref_cmyk.jpg"}) {
    const std::string jpg = ReadFileBytes(TestImage(name));
    const std::string path = std::string("/data/cut_") + name;
    ExpectRefused(jpg.substr(0, jpg.size() - 40), path, "cannot decode JPEG");
    ExpectRefused(jpg.substr(0, 30), path, "cannot decode JPEG");
  }
  const std::string png = ReadFileBytes(TestImage("ref_rgba.png"));
  ExpectRefused(png.substr(0, png.size() / 2), "/data/cut.png", "cannot decode PNG");
}

// Files that broke the earlier stb_image JPEG/PNG decoders (fuzzer finds, tests/fuzz/README.md):
// each is refused with an error naming it.
TEST(DataImageDecodeTest, EarlierDecoderFindsAreRefused) {
  // A DHT segment whose 16 code-length counts total more than 256 (stb wrote past its table).
  std::string jpg = ReadFileBytes(TestImage("gradient_8x8.jpg"));
  const size_t dht = jpg.find("\xFF\xC4");
  ASSERT_NE(dht, std::string::npos);
  ASSERT_NO_THROW(DecodeImage(jpg, "good.jpg"));
  for (size_t i = 0; i < 2; ++i) jpg[dht + 5 + 15 - i] = static_cast<char>(0xFF);
  ExpectRefused(jpg, "/data/dht.jpg", "cannot decode JPEG");
  ExpectRefused(jpg.substr(0, dht + 5 + 16), "/data/dht_cut.jpg", "cannot decode JPEG");
  // A progressive JPEG whose AC code does not match its table (stb's consistency assert).
  const std::string mismatch = TestImage("regress_jpeg_code_mismatch.jpg");
  ExpectRefused(ReadFileBytes(mismatch), mismatch, "cannot decode JPEG");
  // A PNG IDAT declaring about 2 GB in a small file (stb allocated it up front).
  std::string png = ReadFileBytes(TestImage("ref_rgba.png"));
  const size_t idat = png.find("IDAT");
  ASSERT_NE(idat, std::string::npos);
  png[idat - 4] = '\x7f';
  ExpectRefused(png, "/data/idat.png", "cannot decode PNG");
}

// Binary PNM: samples scaled by 255 / maxval (16-bit samples big-endian), gray replicated.
TEST(DataImageDecodeTest, PnmSamplesAreScaledByMaxval) {
  const std::string pgm16 = Bytes("P5 3 1\n# comment\n65535\n\x00\x00\x80\x00\xff\xff");
  const DecodedImage g = DecodeImage(pgm16, "/data/g16.pgm");
  ASSERT_EQ(g.width, 3);
  ASSERT_EQ(g.height, 1);
  // round(v * 255 / 65535) for v = 0, 32768, 65535.
  const std::vector<uint8_t> want = {0, 0, 0, 128, 128, 128, 255, 255, 255};
  EXPECT_EQ(g.rgb, want);
  const DecodedImage c = DecodeImage(Bytes("P6\n1 2\n15\n\x00\x07\x0f\x0f\x08\x01"), "/data/c.ppm");
  ASSERT_EQ(c.height, 2);
  const std::vector<uint8_t> want_c = {0, 119, 255, 255, 136, 17};  // round(v * 17)
  EXPECT_EQ(c.rgb, want_c);
  ExpectRefused("P5 2 1 15\n\x03\x10", "/data/over.pgm", "above maxval 15");
  ExpectRefused("P5 2 2 255\n\x03\x10", "/data/short.pgm", "truncated PNM");
  ExpectRefused("P5 2 2 0\n\x03\x10", "/data/zero.pgm", "maxval 0");
  ExpectRefused("P6 2 2", "/data/head.ppm", "truncated PNM header");
  ExpectRefused("P6 0 2 255\n", "/data/empty.ppm", "empty image");
  ExpectRefused("BM\x36\x00", "/data/x.bmp", "BMP images are not supported");
}

// Sizes are checked from the header, before the pixel buffer exists: a tiny file declaring
// 20000 x 20000 (1.2 GB of RGB) is refused by its declared size.
TEST(DataImageDecodeTest, OversizedImagesAreRefusedFromTheHeader) {
  std::string jpg = ReadFileBytes(TestImage("ref_rgb420.jpg"));
  const size_t sof = jpg.find("\xFF\xC0");
  ASSERT_NE(sof, std::string::npos);
  // SOF0: FF C0, length (2), precision (1), height (2), width (2).
  for (size_t at : {sof + 5, sof + 7}) {
    jpg[at] = static_cast<char>(20000 >> 8);
    jpg[at + 1] = static_cast<char>(20000 & 0xFF);
  }
  ExpectRefused(jpg, "/data/big.jpg", "20000x20000");

  std::string png = ReadFileBytes(TestImage("ref_rgba.png"));
  const size_t ihdr = png.find("IHDR");
  ASSERT_EQ(ihdr, 12u);
  PutBe32(png, ihdr + 4, 20000);  // width
  PutBe32(png, ihdr + 8, 20000);  // height
  PutBe32(png, ihdr + 4 + 13, Crc32(png.substr(ihdr, 4 + 13)));
  ExpectRefused(png, "/data/big.png", "exceeds user limit");

  // Within the side limit but above the pixel limit: 9000 x 9000 = 81 MP > 2^26.
  for (size_t at : {sof + 5, sof + 7}) {
    jpg[at] = static_cast<char>(9000 >> 8);
    jpg[at + 1] = static_cast<char>(9000 & 0xFF);
  }
  ExpectRefused(jpg, "/data/big9k.jpg", "9000x9000");
  PutBe32(png, ihdr + 4, 9000);
  PutBe32(png, ihdr + 8, 9000);
  PutBe32(png, ihdr + 4 + 13, Crc32(png.substr(ihdr, 4 + 13)));
  ExpectRefused(png, "/data/big9k.png", "9000x9000");
  ExpectRefused("P5 9000 9000 255\n", "/data/big9k.pgm", "9000x9000");
  // The limits themselves are accepted as far as size goes (this PGM then fails on its raster).
  ExpectRefused("P5 8192 8192 255\n", "/data/8k.pgm", "truncated PNM");
}

}  // namespace
}  // namespace adalog
