// The calibration set: which images of a source (.npy or image folder) calibrate a model, chosen
// reproducibly by (size, seed), and loaded as the model expects them. `adalog quantize` and
// library callers of search::Calibrate get the same subset from the same (source, size, seed).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "runtime/data/image_folder.h"
#include "runtime/vit_model.h"

namespace adalog::search {

// The one default calibration seed (CalibOptions::seed and `adalog quantize --seed`).
inline constexpr uint32_t kDefaultCalibrationSeed = 0;

// Chooses `want` of `available` indices: all of them, in order, when available == want; else
// `want` distinct indices drawn with mt19937(seed) by a partial Fisher-Yates shuffle, returned
// ascending. Deterministic: the same arguments always give the same indices (any platform with
// the standard mt19937 and uniform_int_distribution<int64_t>). Throws adalog::Error unless
// 1 <= want <= available.
std::vector<int64_t> ChooseCalibrationIndices(int64_t available, int64_t want, uint32_t seed);

// Calibration images [count][C][H][W], float32, as the model expects them.
struct CalibrationSet {
  std::vector<float> images;
  int64_t available = 0;          // images in the source
  std::vector<int64_t> selected;  // source indices used, ascending
  std::string skipped;            // folders: DescribeSkipped of the scan ("" when none)
  int count() const { return static_cast<int>(selected.size()); }
};

// How a folder source is read (an .npy ignores it).
struct CalibrationSourceOptions {
  // Decoding and preprocessing of folder images; crop must be the model's image size.
  ImagePreprocessOptions preprocess;
  bool strict = false;  // any skipped folder entry is an error
  std::string size_option = "--calib-size";  // the option that sets `want`, named in the count error
  bool at_most = false;  // fewer than `want` images in the source: use all of them (no error)
};

// Loads `want` images of `source` for `model`, chosen by ChooseCalibrationIndices(seed):
//  - an .npy (IsNpyPath) must be float32 [N,C,H,W] with the model's C/H/W and all finite; it is
//    used as given (already preprocessed);
//  - an image folder (root/<class>/<image> with any number of classes, or a flat root/<image>:
//    calibration needs no labels) needs a 3-channel square model input; the chosen images are
//    decoded and preprocessed as the model's own eval transform (PreprocessOptionsFor) and must
//    come out finite.
// Fewer than `want` images in the source is an error (unless options.at_most: then all are used).
// Every failure throws adalog::Error naming the source (the count error names options.size_option,
// `--calib-size` by default: the CLI option that sets `want`).
CalibrationSet LoadCalibrationSet(const std::string& source, const VitModel& model, int want,
                                  uint32_t seed = kDefaultCalibrationSeed);
// The same with folder images preprocessed by `options` instead of the model's own transform.
CalibrationSet LoadCalibrationSet(const std::string& source, const VitModel& model, int want, uint32_t seed,
                                  const CalibrationSourceOptions& options);

}  // namespace adalog::search
