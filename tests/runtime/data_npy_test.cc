// .npy round trips, every malformed-header/payload case, NaN/inf detection, dataset label checks.
#include "runtime/data/npy.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "quant/error.h"

namespace adalog {
namespace {

std::string TempPath(const std::string& name) {
  const std::string dir = ::testing::TempDir() + "adalog_npy_test";
  std::filesystem::create_directories(dir);
  return dir + "/" + name;
}

std::string ReadBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

void WriteBytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out << bytes;
}

// A version-1 file with the given header dict and payload.
std::string MakeNpy(const std::string& dict, const std::string& payload, int major = 1) {
  std::string header = dict;
  header += '\n';
  std::string out = "\x93NUMPY";
  out.push_back(static_cast<char>(major));
  out.push_back(0);
  if (major == 1) {
    out.push_back(static_cast<char>(header.size() & 0xFF));
    out.push_back(static_cast<char>(header.size() >> 8));
  } else {
    for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((header.size() >> (8 * i)) & 0xFF));
  }
  return out + header + payload;
}

std::string FloatPayload(int n) { return std::string(static_cast<size_t>(n) * 4, '\0'); }

// Expects ParseNpyFloat32 to throw with a message containing every fragment.
void ExpectFloatError(const std::string& bytes, const std::vector<std::string>& fragments) {
  try {
    ParseNpyFloat32(bytes, "bad.npy");
    FAIL() << "no error for " << fragments[0];
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("bad.npy"), std::string::npos) << msg;
    for (const std::string& f : fragments) EXPECT_NE(msg.find(f), std::string::npos) << msg;
  }
}

TEST(DataNpyTest, Float32RoundTrip) {
  const std::string path = TempPath("f.npy");
  std::vector<float> v(2 * 3 * 4 * 5);
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(i) * 0.25f - 7.f;
  WriteNpyFloat32(path, v.data(), {2, 3, 4, 5});
  const NpyFloatArray a = ReadNpyFloat32(path);
  EXPECT_EQ(a.shape, (std::vector<int64_t>{2, 3, 4, 5}));
  EXPECT_EQ(a.data, v);
  // Header padded so the data starts on a 64-byte boundary (NumPy's own writer does the same).
  EXPECT_EQ(ParseNpyHeader(ReadBytes(path), path).data_offset % 64, 0u);
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp." + std::to_string(::getpid())));
}

TEST(DataNpyTest, ScalarAndEmptyAndOneDim) {
  const std::string path = TempPath("s.npy");
  const float one = 3.5f;
  WriteNpyFloat32(path, &one, {});
  NpyFloatArray a = ReadNpyFloat32(path);
  EXPECT_TRUE(a.shape.empty());
  ASSERT_EQ(a.data.size(), 1u);
  EXPECT_EQ(a.data[0], 3.5f);
  WriteNpyFloat32(path, nullptr, {0, 3});
  a = ReadNpyFloat32(path);
  EXPECT_EQ(a.shape, (std::vector<int64_t>{0, 3}));
  EXPECT_TRUE(a.data.empty());
  const std::string text = ReadBytes(path);
  EXPECT_NE(text.find("'shape': (0, 3)"), std::string::npos);
  const float three[3] = {1, 2, 3};
  WriteNpyFloat32(path, three, {3});
  EXPECT_NE(ReadBytes(path).find("'shape': (3,)"), std::string::npos);
}

TEST(DataNpyTest, LabelsInt64AndInt32) {
  const std::string path = TempPath("l.npy");
  const std::vector<int64_t> labels = {0, 5, 999, 3};
  WriteNpyInt64(path, labels.data(), {4});
  EXPECT_EQ(ReadNpyLabels(path), labels);
  std::string payload;
  for (int32_t v : {7, -1, 2}) payload.append(reinterpret_cast<const char*>(&v), 4);
  const std::string i4 = MakeNpy("{'descr': '<i4', 'fortran_order': False, 'shape': (3,), }", payload);
  EXPECT_EQ(ParseNpyLabels(i4, "i4.npy"), (std::vector<int64_t>{7, -1, 2}));
}

TEST(DataNpyTest, VersionTwoHeader) {
  const std::string b = MakeNpy("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }",
                                FloatPayload(2), 2);
  EXPECT_EQ(ParseNpyFloat32(b, "v2.npy").data.size(), 2u);
}

TEST(DataNpyTest, MalformedFilesNameFileAndProblem) {
  const std::string ok = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
  ExpectFloatError("", {"bad magic"});
  ExpectFloatError("\x93NUMPX\x01\x00", {"bad magic"});
  ExpectFloatError(MakeNpy(ok, FloatPayload(6), 9), {"version 9"});
  ExpectFloatError(MakeNpy(ok, FloatPayload(5)), {"truncated", "24", "20"});
  ExpectFloatError(MakeNpy(ok, FloatPayload(7)), {"unexpected bytes"});
  ExpectFloatError(MakeNpy(ok, "").substr(0, 20), {"truncated npy header"});
  ExpectFloatError(MakeNpy("{'descr': '>f4', 'fortran_order': False, 'shape': (2, 3), }", FloatPayload(6)),
                   {"dtype '>f4'"});
  // Big-endian floats stay refused (float64 / float16 are converted only when little-endian).
  ExpectFloatError(MakeNpy("{'descr': '>f8', 'fortran_order': False, 'shape': (2, 3), }", FloatPayload(12)),
                   {"dtype '>f8'", "little-endian"});
  ExpectFloatError(MakeNpy("{'descr': '>f2', 'fortran_order': False, 'shape': (2, 3), }", FloatPayload(3)),
                   {"dtype '>f2'"});
  ExpectFloatError(MakeNpy("{'descr': '<f8', 'fortran_order': True, 'shape': (2, 3), }", FloatPayload(12)),
                   {"fortran_order"});
  ExpectFloatError(MakeNpy("{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }", FloatPayload(11)),
                   {"truncated", "48", "44"});
  ExpectFloatError(MakeNpy("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }", FloatPayload(6)),
                   {"fortran_order"});
  ExpectFloatError(MakeNpy("{'descr': '<f4', 'fortran_order': False, }", FloatPayload(6)), {"'shape'"});
  ExpectFloatError(MakeNpy("{'fortran_order': False, 'shape': (6,), }", FloatPayload(6)), {"'descr'"});
  ExpectFloatError(MakeNpy("{'descr': '<f4', 'fortran_order': False, 'shape': (2, -3), }", FloatPayload(6)),
                   {"'-3'"});
  ExpectFloatError(MakeNpy("{'descr': '<f4', 'fortran_order': False, 'shape': 6, }", FloatPayload(6)),
                   {"not a tuple"});
  ExpectFloatError(MakeNpy("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3, }", FloatPayload(6)),
                   {"unbalanced"});
  ExpectFloatError(MakeNpy("no dict here", FloatPayload(6)), {"not a dict"});
  ExpectFloatError(MakeNpy("{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296, 4294967296), }",
                           FloatPayload(1)),
                   {"too large"});
  // Right format, wrong kind.
  ExpectFloatError(MakeNpy("{'descr': '<i8', 'fortran_order': False, 'shape': (2,), }", std::string(16, '\0')),
                   {"expected float data"});
  EXPECT_THROW(ParseNpyLabels(MakeNpy(ok, FloatPayload(6)), "x.npy"), Error);
  EXPECT_THROW(ParseNpyLabels(MakeNpy("{'descr': '<i8', 'fortran_order': False, 'shape': (2, 1), }",
                                      std::string(16, '\0')), "x.npy"),
               Error);
}

template <typename T>
std::string Payload(const std::vector<T>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T));
}

bool SameFloatBits(float a, float b) { return std::memcmp(&a, &b, 4) == 0; }

// float64 rounds to nearest float32 as IEEE does; finite values past half an ulp above FLT_MAX
// become +-inf and are counted; NaN / inf / signed zero carry over.
TEST(DataNpyTest, Float64IsConvertedToFloat32) {
  const double just_above_max = static_cast<double>(std::numeric_limits<float>::max()) * (1 + 1e-9);
  const std::vector<double> in = {1.5, -0.1, 1e39, -1e300, just_above_max, std::nan(""), -0.0,
                                  std::numeric_limits<double>::infinity(), 1e-50, 3.0e38};
  const NpyFloatArray a = ParseNpyFloat32(
      MakeNpy("{'descr': '<f8', 'fortran_order': False, 'shape': (2, 5), }", Payload(in)), "f8.npy");
  ASSERT_EQ(a.data.size(), in.size());
  EXPECT_EQ(a.shape, std::vector<int64_t>({2, 5}));
  EXPECT_EQ(a.file_dtype, NpyDtype::kFloat64);
  const float inf = std::numeric_limits<float>::infinity();
  EXPECT_EQ(a.data[0], 1.5f);
  EXPECT_EQ(a.data[1], -0.1f);  // the nearest float32, as the compiler rounds the literal
  EXPECT_EQ(a.data[2], inf);
  EXPECT_EQ(a.data[3], -inf);
  EXPECT_EQ(a.data[4], std::numeric_limits<float>::max());  // below the rounding threshold
  EXPECT_TRUE(std::isnan(a.data[5]));
  EXPECT_TRUE(SameFloatBits(a.data[6], -0.0f));
  EXPECT_EQ(a.data[7], inf);  // already infinite: not an overflow
  EXPECT_EQ(a.data[8], 0.0f);
  EXPECT_EQ(a.data[9], 3.0e38f);
  EXPECT_EQ(a.overflowed, 2);
  EXPECT_EQ(a.first_overflow, 2);
  // float32 input reports no conversion.
  const NpyFloatArray f = ParseNpyFloat32(
      MakeNpy("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", Payload(std::vector<float>{1e38f, inf})),
      "f4.npy");
  EXPECT_EQ(f.file_dtype, NpyDtype::kFloat32);
  EXPECT_EQ(f.overflowed, 0);
}

// float16 converts exactly: normals, the extremes, subnormals, signed zero, inf, NaN.
TEST(DataNpyTest, Float16IsConvertedExactly) {
  const std::vector<uint16_t> in = {0x3C00, 0xC000, 0x3555, 0x7BFF, 0x0001, 0x03FF, 0x8000, 0x7C00, 0xFC00, 0x7E00};
  const std::vector<float> want = {1.0f, -2.0f, 0.333251953125f, 65504.0f, std::ldexp(1.0f, -24),
                                   1023 * std::ldexp(1.0f, -24), -0.0f, std::numeric_limits<float>::infinity(),
                                   -std::numeric_limits<float>::infinity()};
  const NpyFloatArray a = ParseNpyFloat32(
      MakeNpy("{'descr': '<f2', 'fortran_order': False, 'shape': (10,), }", Payload(in)), "f2.npy");
  ASSERT_EQ(a.data.size(), in.size());
  EXPECT_EQ(a.file_dtype, NpyDtype::kFloat16);
  for (size_t i = 0; i < want.size(); ++i) EXPECT_TRUE(SameFloatBits(a.data[i], want[i])) << i << ": " << a.data[i];
  EXPECT_TRUE(std::isnan(a.data[9]));
  EXPECT_EQ(a.overflowed, 0);
  // Every finite half value survives a round trip through float (exactness over all 2^16 codes).
  int finite = 0;
  for (uint32_t h = 0; h < 0x10000; ++h) {
    const std::vector<uint16_t> one = {static_cast<uint16_t>(h)};
    const float f = ParseNpyFloat32(MakeNpy("{'descr': '<f2', 'fortran_order': False, 'shape': (1,), }", Payload(one)),
                                    "h.npy").data[0];
    if (!std::isfinite(f)) continue;
    ++finite;
    // Decode independently: sign * mantissa * 2^exponent from the bit fields.
    const int e = (h >> 10) & 0x1F, m = h & 0x3FF;
    const float mag = e == 0 ? std::ldexp(static_cast<float>(m), -24) : std::ldexp(static_cast<float>(1024 + m), e - 25);
    ASSERT_TRUE(SameFloatBits(f, (h & 0x8000) ? -mag : mag)) << std::hex << h;
  }
  EXPECT_EQ(finite, 2 * 31 * 1024);  // both signs, exponents 0..30
}

TEST(DataNpyTest, MissingFileNamesIt) {
  try {
    ReadNpyFloat32(TempPath("does_not_exist.npy"));
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("does_not_exist.npy"), std::string::npos);
  }
}

TEST(DataNpyTest, TruncatedFileOnDisk) {
  const std::string path = TempPath("t.npy");
  std::vector<float> v(100, 1.f);
  WriteNpyFloat32(path, v.data(), {10, 10});
  std::string bytes = ReadBytes(path);
  WriteBytes(path, bytes.substr(0, bytes.size() - 7));
  try {
    ReadNpyFloat32(path);
    FAIL();
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(path), std::string::npos) << msg;
    EXPECT_NE(msg.find("truncated"), std::string::npos) << msg;
  }
}

TEST(DataNpyTest, WriteFailureLeavesNoFile) {
  // The message names the path asked for, never the temporary file.
  try {
    WriteNpyFloat32("/nonexistent_dir_adalog/x.npy", nullptr, {0});
    FAIL() << "no error";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("'/nonexistent_dir_adalog/x.npy': cannot create a file in directory"), std::string::npos) << msg;
    EXPECT_EQ(msg.find(".tmp"), std::string::npos) << msg;
  }
}

// An existing output that is not a regular file is refused and left as it was: a rename over a
// FIFO (or, as root, a device node) would replace it with a regular file.
TEST(DataNpyTest, WriteRefusesNonRegularTargets) {
  const std::string fifo = TempPath("fifo_" + std::to_string(getpid()) + ".npy");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  const float v[2] = {1.f, 2.f};
  try {
    WriteNpyFloat32(fifo, v, {2});
    ADD_FAILURE() << "wrote over a FIFO";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("exists and is a FIFO (named pipe), not a regular file"), std::string::npos)
        << e.what();
  }
  EXPECT_TRUE(std::filesystem::is_fifo(fifo));
  std::filesystem::remove(fifo);
  const std::string dir = TempPath("dir_" + std::to_string(getpid()) + ".npy");
  std::filesystem::create_directories(dir);
  EXPECT_THROW(WriteNpyFloat32(dir, v, {2}), Error);
  EXPECT_TRUE(std::filesystem::is_directory(dir));
  std::filesystem::remove(dir);
  // Sanity: a regular file is replaced.
  const std::string file = TempPath("regular.npy");
  WriteBytes(file, "old");
  WriteNpyFloat32(file, v, {2});
  EXPECT_EQ(ReadNpyFloat32(file).data, std::vector<float>({1.f, 2.f}));
}

TEST(DataNpyTest, CheckFiniteReportsIndex) {
  std::vector<float> v(2 * 3 * 4 * 4, 0.5f);
  EXPECT_NO_THROW(CheckFinite(v.data(), static_cast<int64_t>(v.size()), "input"));
  v[1 * 48 + 2 * 16 + 3 * 4 + 1] = std::nanf("");
  try {
    CheckFinite(v.data(), static_cast<int64_t>(v.size()), "input", {2, 3, 4, 4});
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("[1,2,3,1] is NaN"), std::string::npos) << e.what();
  }
  v.assign(v.size(), 0.f);
  v[5] = -INFINITY;
  try {
    CheckFinite(v.data(), static_cast<int64_t>(v.size()), "x.npy");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("element 5 is infinite"), std::string::npos) << e.what();
  }
}

TEST(DataNpyTest, DatasetLabelCountMismatch) {
  const std::string images = TempPath("images.npy"), labels = TempPath("labels.npy");
  std::vector<float> img(4 * 3 * 2 * 2, 0.1f);
  WriteNpyFloat32(images, img.data(), {4, 3, 2, 2});
  const std::vector<int64_t> five = {0, 1, 2, 3, 4};
  WriteNpyInt64(labels, five.data(), {5});
  try {
    ReadNpyDataset(images, labels);
    FAIL();
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("label count mismatch"), std::string::npos) << msg;
    EXPECT_NE(msg.find("5 labels"), std::string::npos) << msg;
    EXPECT_NE(msg.find("4 images"), std::string::npos) << msg;
  }
  WriteNpyInt64(labels, five.data(), {4});
  EXPECT_EQ(ReadNpyDataset(images, labels, 10).labels.size(), 4u);
  EXPECT_THROW(ReadNpyDataset(images, labels, 3), Error);  // label 3 outside 0..2
  img[7] = std::nanf("");
  WriteNpyFloat32(images, img.data(), {4, 3, 2, 2});
  EXPECT_THROW(ReadNpyDataset(images, labels), Error);
}

}  // namespace
}  // namespace adalog
