// Plain reference forward of a VitModel in FP32: straight loops, double-precision dot products,
// the scalar float islands. The judge for the FP32 executor's tests; never optimise this file.
#pragma once

#include <vector>

#include "runtime/vit_model.h"

namespace adalog {
namespace ref {

// images: [batch][C][H][W] (NCHW float32). Returns logits [batch][num_classes].
std::vector<float> VitForwardFp32(const VitModel& model, const float* images, int batch);

// y[m][n] = sum_k x[m][k] * w[n][k] + b[n]  (w is [N][K], PyTorch layout), accumulated in double.
void Linear(const float* x, const float* w, const float* b, float* y, int m, int n, int k);

}  // namespace ref
}  // namespace adalog
