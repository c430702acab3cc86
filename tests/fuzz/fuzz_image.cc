// libFuzzer target: arbitrary bytes as an image file into the image-folder loader
// (runtime/data/image_decode.cc: libjpeg-turbo, libpng or the PGM/PPM reader, then
// image_folder.cc: resize, centre crop and normalise). The loader reads from a path, so each
// input is written to one temporary file.
// Any outcome other than a preprocessed image or an adalog::Error is a bug.
#include <unistd.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "quant/error.h"
#include "runtime/data/image_folder.h"

namespace {

// One file per fuzzer process, removed at normal exit (a crashing run leaves it behind).
struct TempFile {
  TempFile() {
    const char* dir = std::getenv("TMPDIR");
    path = std::string(dir && *dir ? dir : "/tmp") + "/adalog_fuzz_image_XXXXXX";
    const int fd = mkstemp(&path[0]);
    if (fd < 0) std::abort();
    close(fd);
  }
  ~TempFile() { unlink(path.c_str()); }
  std::string path;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const TempFile tmp;
  const std::string& path = tmp.path;
  {
    FILE* f = std::fopen(path.c_str(), "wb");
    if (!f) std::abort();
    if (size && std::fwrite(data, 1, size, f) != size) std::abort();
    std::fclose(f);
  }
  adalog::ImagePreprocessOptions opt;
  opt.crop = 16;                    // small output: the decoder is what is under test
  opt.antialias = (size % 2) == 0;  // both resampling paths
  std::vector<float> out(3 * 16 * 16, NAN);
  try {
    adalog::LoadImageChw(path, opt, out.data());
    for (float v : out) {
      if (!std::isfinite(v)) std::abort();  // every output value written, none NaN/inf
    }
  } catch (const adalog::Error&) {
  }
  return 0;
}
