// Named tolerances of the vectorized float islands against the scalar reference.
//
// Why these numbers: the vector kernels sum in a different order (16/8 lanes, then a tree) and
// use polynomial exp (|rel err| < 2e-7 on [-87, 88]) and the Abramowitz-Stegun 7.1.26 erf
// (|abs err| < 1.5e-7). For n <= 4096 the reordered float sums differ by a few ulp of the sum.
#pragma once

namespace adalog {

// |y - y_ref| <= kTolAbs + kTolRel * |y_ref| per element.
struct FloatIslandTolerance {
  float abs;
  float rel;
};
// LayerNorm outputs are O(|gamma| * few); mean/var reordering moves them by a few ulp.
constexpr FloatIslandTolerance kLayerNormTol = {2e-6f, 2e-5f};
// Softmax outputs in [0, 1]: exp relative error plus the reordered denominator.
constexpr FloatIslandTolerance kSoftmaxTol = {1e-7f, 2e-6f};
// GELU: 0.5 * x * (erf error 1.5e-7 absolute) -> absolute error grows with |x|; rel covers that.
constexpr FloatIslandTolerance kGeluTol = {5e-7f, 1e-6f};
// Add is computed identically at every level.
constexpr FloatIslandTolerance kAddTol = {0.f, 0.f};

}  // namespace adalog
