// A calibration case for the search tests: a random-weight model, n seeded random images and
// CalibOptions for all n of them (the test sets the rest of the options).
#pragma once

#include <cstdint>
#include <vector>

#include "search/calibrate.h"
#include "tests/util/exec_random_vit.h"

namespace adalog::test {

struct CalibCase {
  CalibCase(const testing_util::RandomVitSpec& spec, int n_images, uint32_t image_seed)
      : model(testing_util::MakeRandomVit(spec)),
        n(n_images),
        images(testing_util::RandomImages(model, n_images, image_seed)) {
    options.num_images = n_images;
  }
  // search::Calibrate on all n images with the options as they are now.
  QuantizedModel Calibrate() const { return search::Calibrate(model, images.data(), n, options); }

  const VitModel model;
  const int n;
  const std::vector<float> images;
  search::CalibOptions options;
};

}  // namespace adalog::test
