// The repository's test inputs for the GoogleTest binaries: where they are, reading one whole, and
// the image preprocessing that leaves pixel values as they are (for the image tests).
#pragma once

#include <gtest/gtest.h>

#include <fstream>
#include <iterator>
#include <string>

#include "runtime/data/image_folder.h"

namespace adalog::test {

// models/tiny/ of the source tree, with the trailing slash.
inline const std::string kTinyDir = std::string(ADALOG_SOURCE_DIR) + "/models/tiny/";

// A committed image of tests/data/images/ (README.md there says how each was made).
inline std::string TestImage(const std::string& name) {
  return std::string(ADALOG_SOURCE_DIR) + "/tests/data/images/" + name;
}

// The whole file at path, as bytes; a file that cannot be opened fails the test (and gives "").
inline std::string ReadFileBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in.good()) << path;
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// Resize to `resize` (shorter side), centre crop `crop`, mean 0 and std 1 (values stay in [0,1]).
inline ImagePreprocessOptions UnitPreprocess(
    int crop, int resize, Interpolation interp = ImagePreprocessOptions().interpolation) {
  ImagePreprocessOptions o;
  o.crop = crop;
  o.resize_shorter = resize;
  o.interpolation = interp;
  for (int c = 0; c < 3; ++c) {
    o.mean[c] = 0.f;
    o.std[c] = 1.f;
  }
  return o;
}

}  // namespace adalog::test
