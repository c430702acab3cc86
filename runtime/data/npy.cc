// .npy reading (validated) and atomic writing.
#include "runtime/data/npy.h"


#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <limits>
#include <sstream>

#include "quant/error.h"
#include "runtime/atomic_write.h"

namespace adalog {
namespace {

constexpr char kMagic[] = "\x93NUMPY";
constexpr size_t kMagicLen = 6;

size_t ItemSize(NpyDtype d) {
  switch (d) {
    case NpyDtype::kInt64:
    case NpyDtype::kFloat64: return 8;
    case NpyDtype::kFloat16: return 2;
    case NpyDtype::kFloat32:
    case NpyDtype::kInt32: return 4;
  }
  return 4;
}

// IEEE binary16 -> binary32, exact for every value (subnormals, +-inf, NaN with its payload).
float HalfToFloat(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1Fu;
  uint32_t mant = h & 0x3FFu;
  uint32_t bits;
  if (exp == 0x1Fu) {
    bits = sign | 0x7F800000u | (mant << 13);  // inf or NaN
  } else if (exp != 0) {
    bits = sign | ((exp + 112u) << 23) | (mant << 13);  // rebias 15 -> 127
  } else if (mant == 0) {
    bits = sign;  // +-0
  } else {  // subnormal: mant * 2^-24, normalized
    int e = -1;
    do {
      mant <<= 1;
      ++e;
    } while ((mant & 0x400u) == 0);
    bits = sign | (static_cast<uint32_t>(112 - e) << 23) | ((mant & 0x3FFu) << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

// binary64 -> binary32 rounded to nearest even, without the undefined behaviour of casting an
// out-of-range double: |d| >= 2^128 - 2^103 (half an ulp above FLT_MAX) rounds to +-inf in IEEE
// arithmetic; finite values below that but above FLT_MAX round to +-FLT_MAX.
float DoubleToFloat(double d, bool* overflow) {
  static const double kOverflow = std::ldexp(2.0 - std::ldexp(1.0, -24), 127);
  const double a = std::fabs(d);
  if (std::isnan(d) || std::isinf(d)) return static_cast<float>(d);
  if (a >= kOverflow) {
    *overflow = true;
    const float inf = std::numeric_limits<float>::infinity();
    return d > 0 ? inf : -inf;
  }
  const float max = std::numeric_limits<float>::max();
  if (a > max) return d > 0 ? max : -max;
  return static_cast<float>(d);
}

std::string ReadWholeFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  ADALOG_CHECK(in.good(), path, ": cannot open for reading");
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ADALOG_CHECK(!in.bad(), path, ": read error");
  return bytes;
}

std::string Trim(const std::string& s) {
  const size_t b = s.find_first_not_of(" \t\n");
  if (b == std::string::npos) return "";
  const size_t e = s.find_last_not_of(" \t\n,");
  return s.substr(b, e - b + 1);
}

// Value text of 'key' in the header dict, up to the next top-level ',' or '}'.
std::string DictValue(const std::string& dict, const std::string& key, const std::string& name) {
  const std::string quoted1 = "'" + key + "'", quoted2 = "\"" + key + "\"";
  size_t pos = dict.find(quoted1);
  size_t klen = quoted1.size();
  if (pos == std::string::npos) {
    pos = dict.find(quoted2);
    klen = quoted2.size();
  }
  ADALOG_CHECK(pos != std::string::npos, name, ": npy header has no '", key, "' entry");
  size_t p = dict.find(':', pos + klen);
  ADALOG_CHECK(p != std::string::npos, name, ": npy header entry '", key, "' has no value");
  ++p;
  int depth = 0;
  size_t end = p;
  for (; end < dict.size(); ++end) {
    const char c = dict[end];
    if (c == '(') ++depth;
    if (c == ')') --depth;
    if (depth == 0 && (c == ',' || c == '}')) break;
    if (depth < 0) break;
  }
  ADALOG_CHECK(depth == 0, name, ": npy header entry '", key, "' is unbalanced");
  return Trim(dict.substr(p, end - p));
}

std::vector<int64_t> ParseShape(const std::string& text, const std::string& name) {
  ADALOG_CHECK(text.size() >= 2 && text.front() == '(' && text.back() == ')', name,
               ": npy shape '", text, "' is not a tuple");
  std::vector<int64_t> shape;
  std::string inner = text.substr(1, text.size() - 2);
  std::stringstream ss(inner);
  std::string item;
  while (std::getline(ss, item, ',')) {
    item = Trim(item);
    if (item.empty()) continue;  // trailing comma of a 1-tuple
    ADALOG_CHECK(item.find_first_not_of("0123456789") == std::string::npos && item.size() <= 18,
                 name, ": npy shape entry '", item, "' is not a non-negative integer");
    shape.push_back(std::stoll(item));
  }
  ADALOG_CHECK(shape.size() <= 16, name, ": npy rank ", shape.size(), " too large");
  return shape;
}

template <typename T>
void WriteAtomically(const std::string& path, NpyDtype dtype, const T* data,
                     const std::vector<int64_t>& shape) {
  std::ostringstream dict;
  dict << "{'descr': '" << (dtype == NpyDtype::kFloat32 ? "<f4" : "<i8")
       << "', 'fortran_order': False, 'shape': (";
  int64_t n = 1;
  for (size_t i = 0; i < shape.size(); ++i) {
    ADALOG_CHECK(shape[i] >= 0, path, ": negative dimension ", shape[i]);
    dict << shape[i] << (shape.size() == 1 || i + 1 < shape.size() ? "," : "");
    if (i + 1 < shape.size()) dict << " ";
    n *= shape[i];
  }
  dict << "), }";
  std::string header = dict.str();
  // Pad with spaces so that magic + 2-byte version + 2-byte length + header ends on 64 bytes.
  const size_t unpadded = kMagicLen + 2 + 2 + header.size() + 1;
  header.append((64 - unpadded % 64) % 64, ' ');
  header.push_back('\n');
  ADALOG_CHECK(header.size() <= 65535, path, ": npy header too long");
  std::string bytes(kMagic, kMagicLen);
  bytes += {1, 0};  // format version 1.0
  bytes += static_cast<char>(header.size() & 0xFF);
  bytes += static_cast<char>(header.size() >> 8);
  bytes += header;
  bytes.append(reinterpret_cast<const char*>(data), static_cast<size_t>(n) * sizeof(T));
  WriteFileAtomically(path, bytes, "output");
}

}  // namespace

int64_t NpyHeader::num_elements() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

NpyHeader ParseNpyHeader(const std::string& bytes, const std::string& name) {
  ADALOG_CHECK(bytes.size() >= kMagicLen + 4 && std::memcmp(bytes.data(), kMagic, kMagicLen) == 0,
               name, ": not a .npy file (bad magic)");
  const int major = static_cast<unsigned char>(bytes[6]);
  ADALOG_CHECK(major >= 1 && major <= 3, name, ": unsupported npy version ", major);
  size_t header_len = 0, prefix = 0;
  if (major == 1) {
    header_len = static_cast<unsigned char>(bytes[8]) | (static_cast<unsigned char>(bytes[9]) << 8);
    prefix = 10;
  } else {
    ADALOG_CHECK(bytes.size() >= 12, name, ": truncated npy header");
    for (int i = 0; i < 4; ++i) header_len |= static_cast<size_t>(static_cast<unsigned char>(bytes[8 + i])) << (8 * i);
    prefix = 12;
  }
  ADALOG_CHECK(header_len <= bytes.size() - prefix, name, ": truncated npy header (", header_len,
               " bytes declared, ", bytes.size() - prefix, " present)");
  const std::string dict = bytes.substr(prefix, header_len);
  ADALOG_CHECK(dict.find('{') != std::string::npos && dict.find('}') != std::string::npos, name,
               ": npy header is not a dict");
  NpyHeader h;
  std::string descr = DictValue(dict, "descr", name);
  if (descr.size() >= 2 && (descr.front() == '\'' || descr.front() == '"')) {
    descr = descr.substr(1, descr.size() - 2);
  }
  if (descr == "<f4") {
    h.dtype = NpyDtype::kFloat32;
  } else if (descr == "<f8") {
    h.dtype = NpyDtype::kFloat64;
  } else if (descr == "<f2") {
    h.dtype = NpyDtype::kFloat16;
  } else if (descr == "<i8") {
    h.dtype = NpyDtype::kInt64;
  } else if (descr == "<i4") {
    h.dtype = NpyDtype::kInt32;
  } else {
    Fail(name, ": unsupported npy dtype '", descr,
         "' (expected little-endian '<f4', '<f8' or '<f2' data, or '<i8' / '<i4' labels)");
  }
  const std::string fortran = DictValue(dict, "fortran_order", name);
  ADALOG_CHECK(fortran == "False", name, ": fortran_order ", fortran, " not supported (need C order)");
  h.shape = ParseShape(DictValue(dict, "shape", name), name);
  h.data_offset = prefix + header_len;
  // Element count without overflow, then the exact payload size.
  const int64_t limit = std::numeric_limits<int64_t>::max() / 8;
  int64_t n = 1;
  for (int64_t d : h.shape) {
    ADALOG_CHECK(d == 0 || n <= limit / d, name, ": npy shape too large");
    n *= d;
  }
  const uint64_t want = static_cast<uint64_t>(n) * ItemSize(h.dtype);
  const uint64_t have = bytes.size() - h.data_offset;
  ADALOG_CHECK(have >= want, name, ": truncated: expected ", want, " data bytes, found ", have);
  ADALOG_CHECK(have == want, name, ": ", have - want, " unexpected bytes after the data");
  return h;
}

NpyFloatArray ParseNpyFloat32(const std::string& bytes, const std::string& name) {
  const NpyHeader h = ParseNpyHeader(bytes, name);
  ADALOG_CHECK(h.dtype == NpyDtype::kFloat32 || h.dtype == NpyDtype::kFloat64 || h.dtype == NpyDtype::kFloat16,
               name, ": expected float data ('<f4', '<f8' or '<f2'), not integers");
  NpyFloatArray a;
  a.shape = h.shape;
  a.file_dtype = h.dtype;
  a.data.resize(static_cast<size_t>(h.num_elements()));
  const char* p = bytes.data() + h.data_offset;
  if (h.dtype == NpyDtype::kFloat32) {
    if (!a.data.empty()) std::memcpy(a.data.data(), p, a.data.size() * 4);
  } else if (h.dtype == NpyDtype::kFloat16) {
    for (size_t i = 0; i < a.data.size(); ++i) {
      uint16_t v;
      std::memcpy(&v, p + 2 * i, 2);
      a.data[i] = HalfToFloat(v);
    }
  } else {
    for (size_t i = 0; i < a.data.size(); ++i) {
      double v;
      std::memcpy(&v, p + 8 * i, 8);
      bool overflow = false;
      a.data[i] = DoubleToFloat(v, &overflow);
      if (overflow && a.overflowed++ == 0) a.first_overflow = static_cast<int64_t>(i);
    }
  }
  return a;
}

NpyFloatArray ReadNpyFloat32(const std::string& path) {
  NpyFloatArray a = ParseNpyFloat32(ReadWholeFile(path), path);
  if (a.overflowed > 0) {
    std::fprintf(stderr,
                 "adalog: warning: %s: %lld float64 value%s outside float32's range became infinite when "
                 "converted to float32 (the first at flat index %lld)\n",
                 path.c_str(), static_cast<long long>(a.overflowed), a.overflowed == 1 ? "" : "s",
                 static_cast<long long>(a.first_overflow));
  }
  return a;
}

std::vector<int64_t> ParseNpyLabels(const std::string& bytes, const std::string& name) {
  const NpyHeader h = ParseNpyHeader(bytes, name);
  ADALOG_CHECK(h.dtype == NpyDtype::kInt64 || h.dtype == NpyDtype::kInt32, name,
               ": labels must be int64 or int32, not floats");
  ADALOG_CHECK(h.shape.size() == 1, name, ": labels must be 1-D, got rank ", h.shape.size());
  std::vector<int64_t> labels(static_cast<size_t>(h.shape[0]));
  const char* p = bytes.data() + h.data_offset;
  for (size_t i = 0; i < labels.size(); ++i) {
    if (h.dtype == NpyDtype::kInt64) {
      std::memcpy(&labels[i], p + 8 * i, 8);
    } else {
      int32_t v;
      std::memcpy(&v, p + 4 * i, 4);
      labels[i] = v;
    }
  }
  return labels;
}

std::vector<int64_t> ReadNpyLabels(const std::string& path) { return ParseNpyLabels(ReadWholeFile(path), path); }

void WriteNpyFloat32(const std::string& path, const float* data, const std::vector<int64_t>& shape) {
  WriteAtomically(path, NpyDtype::kFloat32, data, shape);
}

void WriteNpyInt64(const std::string& path, const int64_t* data, const std::vector<int64_t>& shape) {
  WriteAtomically(path, NpyDtype::kInt64, data, shape);
}

void CheckFinite(const float* data, int64_t n, const std::string& what,
                 const std::vector<int64_t>& shape) {
  for (int64_t i = 0; i < n; ++i) {
    if (std::isfinite(data[i])) continue;
    std::string where = std::to_string(i);
    if (!shape.empty()) {
      std::vector<int64_t> idx(shape.size());
      int64_t rest = i;
      for (size_t d = shape.size(); d-- > 0;) {
        idx[d] = shape[d] > 0 ? rest % shape[d] : 0;
        rest = shape[d] > 0 ? rest / shape[d] : 0;
      }
      where = "[";
      for (size_t d = 0; d < idx.size(); ++d) where += (d ? "," : "") + std::to_string(idx[d]);
      where += "]";
    }
    Fail(what, ": element ", where, " is ", std::isnan(data[i]) ? "NaN" : "infinite",
         " (inputs must be finite)");
  }
}

NpyDataset ReadNpyDataset(const std::string& images_path, const std::string& labels_path,
                          int num_classes) {
  NpyDataset d;
  d.images = ReadNpyFloat32(images_path);
  ADALOG_CHECK(d.images.shape.size() == 4, images_path, ": images must be [N][C][H][W], got rank ",
               d.images.shape.size());
  d.labels = ReadNpyLabels(labels_path);
  ADALOG_CHECK(static_cast<int64_t>(d.labels.size()) == d.images.shape[0], "label count mismatch: ",
               labels_path, " has ", d.labels.size(), " labels but ", images_path, " has ",
               d.images.shape[0], " images");
  if (num_classes > 0) {
    for (size_t i = 0; i < d.labels.size(); ++i) {
      ADALOG_CHECK(d.labels[i] >= 0 && d.labels[i] < num_classes, labels_path, ": label ", i,
                   " is ", d.labels[i], ", outside 0..", num_classes - 1);
    }
  }
  CheckFinite(d.images.data.data(), static_cast<int64_t>(d.images.data.size()), images_path,
              d.images.shape);
  return d;
}

}  // namespace adalog
