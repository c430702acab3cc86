// The calibration driver: VitModel + calibration images -> the rewritten VitModel + QuantPlan
// (method §4: FP capture block by block, then the per-op recipes of method §4.6).
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "runtime/quant_plan.h"
#include "runtime/vit_model.h"
#include "search/calibration_set.h"
#include "search/recipes.h"

namespace adalog::search {

struct CalibOptions {
  RecipeOptions recipe;
  int num_images = 32;  // calibration images used: the first num_images of those given
  int batch = 8;        // images per FP32 executor run during capture (memory vs speed)
  int threads = 0;      // executor threads; 0: omp_get_max_threads(). Search loops use the
                        // current OpenMP team size.
  // Recorded in the plan's meta. Calibrate uses the images it is given; to choose them from a
  // larger source the way `adalog quantize` does, load them with
  // LoadCalibrationSet(source, model, num_images, seed) (search/calibration_set.h).
  uint32_t seed = kDefaultCalibrationSeed;
};

// (done, total, label of the op just finished), called on the calling thread.
using ProgressFn = std::function<void(int done, int total, const std::string& label)>;

// Calibrates `model` on images [n][C][H][W] (float32, normalized as the model expects).
// Deterministic: the same inputs and options give a bit-identical result for any thread count.
// Throws adalog::Error on: fewer than options.num_images images, NaN/inf in the images,
// unsupported bit widths or quantizer names, an invalid model. Swin models are calibrated per
// window (search/README.md, "Swin") with their patch merges' reductions in plan.merges.
QuantizedModel Calibrate(const VitModel& model, const float* images, int n,
                         const CalibOptions& options, const ProgressFn& progress = nullptr);

}  // namespace adalog::search
