// The initial 128-candidate percentile grids of method §4.4 (uniform weights, conv weights,
// per-tensor / per-channel activations, per-head matmul operands) and the post-GELU scale range.
//
// Quantiles follow torch.quantile (linear interpolation, float32 rank and lerp) but are EXACT
// global quantiles of the whole tensor: the official code averages per-chunk quantiles for
// tensors above 2^24 elements (method §8.9); adalog never chunks. At the default sizes (32 images
// at 224^2) the two agree, since no default tensor reaches the limit.
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

namespace adalog::search {

// Candidates per FPCS stage (method §1, eq_n).
inline constexpr int kEqN = 128;
// Lower bound of every activation scale candidate (method §1, "activation scale floor").
inline constexpr float kActivationScaleFloor = 1e-4f;

// A batch of uniform (scale, zero point) candidates for `groups` independent groups (rows,
// channels, heads; 1 for per-tensor), `count` candidates each, laid out [group][count].
struct UniformCandidates {
  int bits = 4;
  int groups = 0;
  int count = 0;
  std::vector<float> scales;
  std::vector<int32_t> zero_points;
  float& scale(int g, int i) { return scales[static_cast<size_t>(g) * count + i]; }
  float scale(int g, int i) const { return scales[static_cast<size_t>(g) * count + i]; }
  int32_t zp(int g, int i) const { return zero_points[static_cast<size_t>(g) * count + i]; }
};

// The initial grid plus the per-group spacing delta = S[1] - S[0] that FPCS refines from.
struct UniformGrid {
  UniformCandidates cands;
  std::vector<float> delta;  // [groups]
};

// torch.quantile(x, p) with linear interpolation over `n` values (modifies nothing; O(n)).
// rank = float(p) * (n - 1) in float32, value = lerp(x_(floor), x_(ceil), rank - floor) with
// torch's lerp formula. Throws adalog::Error when n == 0.
float Quantile(const float* x, int64_t n, double p);

// Percentile statistics of one group: U90 = q(0.9), U100 = max, L10 = q(0.1), L0 = min.
struct RangeStats {
  float u90 = 0, u100 = 0, l10 = 0, l0 = 0;
};
RangeStats ComputeRangeStats(const float* x, int64_t n);

// The grid of method §4.4 from per-group statistics: num_zp zero points n - num_zp/2 ... and
// num_scale = 128 / num_zp scales s_k = (dmin + t_k (dmax - dmin)) / (2^b - 1), t_k =
// linspace(0, 1, num_scale); index = zp_idx * num_scale + scale_idx. Scales are clamped to
// `scale_floor` (0: no floor). zp_start is the first zero point.
UniformGrid MakePercentileGrid(const std::vector<RangeStats>& stats, int bits, int num_zp,
                               int zp_start, float scale_floor);

// Uniform Linear weights [rows][cols], per row: num_zp = min(16, n), n = 2^(b-1).
UniformGrid LinearWeightGrid(const float* w, int rows, int cols, int bits);
// Patch-embed conv weights [oc][ic*kh*kw], per output channel: num_zp = n uncapped, as the
// official code, EXCEPT where that leaves fewer than 2 scales (b = 8: num_scale = 1, delta = 0,
// the scale stuck at (P90 - P10)/255, method §8.8): there num_zp is capped at 16 like the Linear
// weights (the official fix of commit 75a57d2 applied to conv). Identical to the official grid
// for b <= 7.
UniformGrid ConvWeightGrid(const float* w, int rows, int cols, int bits);
// Per-tensor activations over all n elements: num_zp = min(16, 2n), zp start n - num_zp/2
// (i.e. all codes at 3/4 bits), scales >= 1e-4.
UniformGrid TensorActivationGrid(const float* x, int64_t n, int bits);
// Per-channel activations of x [rows][cols] (the LN pre-search): one group per column,
// quantiles over all rows; same zero points and floor as per-tensor.
UniformGrid ChannelActivationGrid(const float* x, int64_t rows, int cols, int bits);
// Matmul operands per head: `heads` contiguous groups of `per_head` elements each;
// num_zp = min(16, n) (the matmul code uses the Linear-weight zero points), no floor.
UniformGrid HeadGrid(const float* x, int heads, int64_t per_head, int bits);

// Post-GELU AdaLog scale range ud = [P90+ + shift, max+ + shift] over the POSITIVE elements of
// the raw input, nearest-rank percentiles (rank = ceil(count * p) - 1). Throws adalog::Error if
// no element is positive.
std::pair<float, float> PostGeluScaleRange(const float* x, int64_t n, float shift);

// torch.linspace(a, b, n) in float32 (n >= 1): a + i*step for i < n/2, b - (n-1-i)*step after.
std::vector<float> Linspace(float a, float b, int n);

}  // namespace adalog::search
