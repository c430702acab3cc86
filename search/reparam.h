// Function-preserving model rewrites of calibration: the per-channel -> per-tensor LayerNorm
// reparameterization (method §2.8, RepQ-ViT style) and the post-GELU shift bias fold
// (method §2.6).
#pragma once

#include <cstdint>
#include <vector>

#include "quant/params.h"
#include "runtime/vit_model.h"
#include "search/fpcs.h"

namespace adalog::search {

// The transform of method §2.8 step 2 from per-channel input parameters (s_c, z_c):
//   s* = mean_c s_c, z* = round_half_even(mean_c z_c), r_c = s_c / s*,
//   beta_c = min_c / r_c - min*,  min_c = -z_c s_c,  min* = -z* s*.
// Means are accumulated in double and rounded once to float; the rest is float32 like torch.
struct LnReparam {
  float s_star = 1.0f;
  int32_t z_star = 0;
  std::vector<float> r;     // [C]
  std::vector<float> beta;  // [C]
};
LnReparam ComputeLnReparam(const UniformChoice& per_channel);

// Applies the transform (method §2.8 steps 3-4), an exact FP identity of the block:
//   LN: gamma <- gamma / r;  beta_LN <- beta_LN / r - beta
//   next Linear: W[:, c] <- W[:, c] * r_c;  bias <- bias + W_new . beta   (double sum, one rounding)
//   cached input x [rows][C] (may be null): x <- x / r - beta
// Throws adalog::Error on mismatched sizes.
void ApplyLnReparam(const LnReparam& t, LayerNormParams* ln, LinearParams* next, float* x,
                    int64_t rows);

// fc2 bias fold: bias <- bias - delta * rowsum(W_hat), W_hat the dequantized quantized weight
// (quant::FoldShiftIntoBias). Must run after the weight quantizer is final (method §8.21).
void FoldGeluShiftIntoBias(LinearParams* fc2, const UniformPerChannel& weight_quant, float delta);

// Dequantized weight [out][in] under per-row parameters.
std::vector<float> QuantizeWeight(const LinearParams& lin, const UniformPerChannel& q);

}  // namespace adalog::search
