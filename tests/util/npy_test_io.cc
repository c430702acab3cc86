// Minimal .npy reader for tests (see npy_test_io.h).
#include "tests/util/npy_test_io.h"

#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace adalog::test {

NpyF32 ReadNpyF32ForTest(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string b = ss.str();
  if (b.size() < 10 || b.compare(0, 6, "\x93NUMPY") != 0) {
    throw std::runtime_error(path + ": not a .npy file");
  }
  const int major = static_cast<unsigned char>(b[6]);
  size_t hlen, off;
  if (major == 1) {
    hlen = static_cast<unsigned char>(b[8]) | (static_cast<unsigned char>(b[9]) << 8);
    off = 10;
  } else {
    if (b.size() < 12) throw std::runtime_error(path + ": short header");
    uint32_t h;
    std::memcpy(&h, b.data() + 8, 4);
    hlen = h;
    off = 12;
  }
  if (off + hlen > b.size()) throw std::runtime_error(path + ": truncated header");
  const std::string header = b.substr(off, hlen);
  if (header.find("'descr': '<f4'") == std::string::npos ||
      header.find("'fortran_order': False") == std::string::npos) {
    throw std::runtime_error(path + ": only C-order float32 is supported: " + header);
  }
  NpyF32 r;
  const size_t lp = header.find('(', header.find("'shape'"));
  const size_t rp = header.find(')', lp);
  std::string dims = header.substr(lp + 1, rp - lp - 1);
  std::stringstream ds(dims);
  std::string tok;
  int64_t n = 1;
  while (std::getline(ds, tok, ',')) {
    if (tok.find_first_of("0123456789") == std::string::npos) continue;
    r.shape.push_back(std::stoll(tok));
    n *= r.shape.back();
  }
  const size_t data_off = off + hlen;
  if (b.size() - data_off != static_cast<size_t>(n) * 4) {
    throw std::runtime_error(path + ": data size does not match the shape");
  }
  r.data.resize(static_cast<size_t>(n));
  std::memcpy(r.data.data(), b.data() + data_off, static_cast<size_t>(n) * 4);
  return r;
}

}  // namespace adalog::test
