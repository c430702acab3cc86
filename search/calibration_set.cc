// Calibration-set choice and loading (search/calibration_set.h).
#include "search/calibration_set.h"

#include <algorithm>
#include <random>

#include "quant/error.h"
#include "runtime/data/image_folder.h"
#include "runtime/data/image_source.h"
#include "runtime/data/npy.h"

namespace adalog::search {

std::vector<int64_t> ChooseCalibrationIndices(int64_t available, int64_t want, uint32_t seed) {
  ADALOG_CHECK(want >= 1 && want <= available, "calibration set: cannot choose ", want, " of ", available,
               " images");
  std::vector<int64_t> idx(static_cast<size_t>(available));
  for (int64_t i = 0; i < available; ++i) idx[static_cast<size_t>(i)] = i;
  if (want < available) {
    std::mt19937 rng(seed);
    for (int64_t i = 0; i < want; ++i) {
      std::uniform_int_distribution<int64_t> pick(i, available - 1);
      std::swap(idx[static_cast<size_t>(i)], idx[static_cast<size_t>(pick(rng))]);
    }
    idx.resize(static_cast<size_t>(want));
    std::sort(idx.begin(), idx.end());
  }
  return idx;
}

CalibrationSet LoadCalibrationSet(const std::string& source, const VitModel& m, int want, uint32_t seed) {
  CalibrationSourceOptions o;
  o.preprocess = PreprocessOptionsFor(m);
  return LoadCalibrationSet(source, m, want, seed, o);
}

CalibrationSet LoadCalibrationSet(const std::string& source, const VitModel& m, int want, uint32_t seed,
                                  const CalibrationSourceOptions& options) {
  const int64_t C = m.embed.in_channels, H = m.embed.image_h, W = m.embed.image_w, per = C * H * W;
  CalibrationSet set;
  ImageSourceOptions so;
  so.what = "calibration images";
  so.allow_flat = true;
  so.strict = options.strict;
  if (!IsNpyPath(source)) {
    so.preprocess = options.preprocess;
    ADALOG_CHECK(so.preprocess.crop == H, source, ": calibration crop ", so.preprocess.crop,
                 " differs from the model's input ", H, "x", W);
  }
  const ImageSource images = ImageSource::Open(source, so);
  set.skipped = images.skipped_summary();
  if (images.is_npy()) {
    const NpyFloatArray& x = images.npy();
    ADALOG_CHECK(x.shape[1] == C && x.shape[2] == H && x.shape[3] == W, source, ": calibration images are ",
                 ShapeString(x.shape), " but the model expects [N,", C, ",", H, ",", W, "]");
    CheckFinite(x.data.data(), static_cast<int64_t>(x.data.size()), source + ": calibration images", x.shape);
  } else {
    ADALOG_CHECK(C == 3, source, ": image folders give 3-channel images, the model expects ", C, " channels");
    ADALOG_CHECK(H == W, source, ": image folders give square crops, the model expects ", H, "x", W);
  }
  set.available = images.size();
  if (options.at_most && set.available < want) want = static_cast<int>(set.available);
  ADALOG_CHECK(set.available >= want, "calibration set ", source, " has ", set.available,
               " images, ", options.size_option, " asks for ", want);
  set.selected = ChooseCalibrationIndices(set.available, want, seed);
  set.images.resize(static_cast<size_t>(want * per));
  images.LoadIndices(set.selected, set.images.data());
  if (!images.is_npy()) {
    CheckFinite(set.images.data(), static_cast<int64_t>(set.images.size()), source + ": calibration images",
                {want, C, H, W});
  }
  return set;
}

}  // namespace adalog::search
