// Percentile candidate grids (method §4.4).
#include "search/grids.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "quant/error.h"
#include "quant/params.h"

namespace adalog::search {
namespace {

void CheckBits(int bits, const char* what) {
  ADALOG_CHECK(bits >= kMinBits && bits <= kMaxBits, what, ": unsupported bit width ", bits,
               " (supported: ", kMinBits, "..", kMaxBits, ")");
}

// torch.lerp for float32.
float Lerp(float a, float b, float w) { return w < 0.5f ? a + w * (b - a) : b - (b - a) * (1.0f - w); }

// k-th smallest of v (0-based), reordering v.
float KthSmallest(std::vector<float>& v, int64_t k) {
  std::nth_element(v.begin(), v.begin() + k, v.end());
  return v[static_cast<size_t>(k)];
}

// Quantile on a scratch copy the caller owns (reordered).
float QuantileInPlace(std::vector<float>& v, double p) {
  const int64_t n = static_cast<int64_t>(v.size());
  const float rank = static_cast<float>(p) * static_cast<float>(n - 1);
  const int64_t below = static_cast<int64_t>(std::floor(rank));
  const int64_t above = static_cast<int64_t>(std::ceil(rank));
  const float w = rank - static_cast<float>(below);
  const float lo = KthSmallest(v, below);
  // After nth_element, every element right of `below` is >= lo: the next order statistic is the
  // minimum of that suffix.
  float hi = lo;
  if (above != below) hi = *std::min_element(v.begin() + below + 1, v.end());
  return Lerp(lo, hi, w);
}

RangeStats StatsOfScratch(std::vector<float>& v) {
  RangeStats s;
  const auto mm = std::minmax_element(v.begin(), v.end());
  s.l0 = *mm.first;
  s.u100 = *mm.second;
  s.u90 = QuantileInPlace(v, 0.9);
  s.l10 = QuantileInPlace(v, 0.1);
  return s;
}

}  // namespace

float Quantile(const float* x, int64_t n, double p) {
  ADALOG_CHECK(n > 0, "quantile of an empty tensor");
  std::vector<float> v(x, x + n);
  return QuantileInPlace(v, p);
}

RangeStats ComputeRangeStats(const float* x, int64_t n) {
  ADALOG_CHECK(n > 0, "percentile grid of an empty tensor");
  std::vector<float> v(x, x + n);
  return StatsOfScratch(v);
}

std::vector<float> Linspace(float a, float b, int n) {
  std::vector<float> out(static_cast<size_t>(n));
  if (n == 1) {
    out[0] = a;
    return out;
  }
  const float step = (b - a) / static_cast<float>(n - 1);
  const int half = n / 2;
  for (int i = 0; i < n; ++i) {
    out[static_cast<size_t>(i)] = i < half ? a + step * static_cast<float>(i)
                                           : b - step * static_cast<float>(n - 1 - i);
  }
  return out;
}

UniformGrid MakePercentileGrid(const std::vector<RangeStats>& stats, int bits, int num_zp,
                               int zp_start, float scale_floor) {
  CheckBits(bits, "percentile grid");
  ADALOG_CHECK(num_zp >= 1 && kEqN % num_zp == 0, "percentile grid: num_zp ", num_zp,
               " does not divide ", kEqN);
  const int num_scale = kEqN / num_zp;
  const int groups = static_cast<int>(stats.size());
  const float levels = static_cast<float>((1 << bits) - 1);
  const std::vector<float> t = Linspace(0.0f, 1.0f, num_scale);
  UniformGrid g;
  g.cands.bits = bits;
  g.cands.groups = groups;
  g.cands.count = kEqN;
  g.cands.scales.resize(static_cast<size_t>(groups) * kEqN);
  g.cands.zero_points.resize(static_cast<size_t>(groups) * kEqN);
  g.delta.resize(static_cast<size_t>(groups));
  for (int gi = 0; gi < groups; ++gi) {
    const RangeStats& s = stats[static_cast<size_t>(gi)];
    const float dmin = s.u90 - s.l10, dmax = s.u100 - s.l0;
    for (int zi = 0; zi < num_zp; ++zi) {
      for (int si = 0; si < num_scale; ++si) {
        float sc = (dmin + t[static_cast<size_t>(si)] * (dmax - dmin)) / levels;
        if (scale_floor > 0.0f) sc = std::max(sc, scale_floor);
        const int idx = zi * num_scale + si;
        g.cands.scale(gi, idx) = sc;
        g.cands.zero_points[static_cast<size_t>(gi) * kEqN + idx] = zp_start + zi;
      }
    }
    // delta = S[1] - S[0] (candidates 0 and 1; the same zp block when num_scale >= 2).
    g.delta[static_cast<size_t>(gi)] = g.cands.scale(gi, 1) - g.cands.scale(gi, 0);
  }
  return g;
}

namespace {

std::vector<RangeStats> RowStats(const float* w, int64_t rows, int64_t cols) {
  std::vector<RangeStats> st(static_cast<size_t>(rows));
#pragma omp parallel if (rows * cols > (int64_t{1} << 17))
  {
    std::vector<float> buf;
#pragma omp for schedule(static)
    for (int64_t r = 0; r < rows; ++r) {
      buf.assign(w + r * cols, w + (r + 1) * cols);
      st[static_cast<size_t>(r)] = StatsOfScratch(buf);
    }
  }
  return st;
}

}  // namespace

UniformGrid LinearWeightGrid(const float* w, int rows, int cols, int bits) {
  CheckBits(bits, "weight grid");
  ADALOG_CHECK(rows > 0 && cols > 0, "weight grid: empty weight");
  const int n = 1 << (bits - 1);
  const int num_zp = std::min(16, n);
  return MakePercentileGrid(RowStats(w, rows, cols), bits, num_zp, n - num_zp / 2, 0.0f);
}

UniformGrid ConvWeightGrid(const float* w, int rows, int cols, int bits) {
  CheckBits(bits, "conv weight grid");
  ADALOG_CHECK(rows > 0 && cols > 0, "conv weight grid: empty weight");
  const int n = 1 << (bits - 1);
  const int num_zp = kEqN / n >= 2 ? n : 16;
  return MakePercentileGrid(RowStats(w, rows, cols), bits, num_zp, n - num_zp / 2, 0.0f);
}

UniformGrid TensorActivationGrid(const float* x, int64_t n_elems, int bits) {
  CheckBits(bits, "activation grid");
  const int n = 1 << (bits - 1);
  const int num_zp = std::min(16, 2 * n);
  return MakePercentileGrid({ComputeRangeStats(x, n_elems)}, bits, num_zp, n - num_zp / 2,
                            kActivationScaleFloor);
}

UniformGrid ChannelActivationGrid(const float* x, int64_t rows, int cols, int bits) {
  CheckBits(bits, "channel activation grid");
  ADALOG_CHECK(rows > 0 && cols > 0, "channel activation grid: empty tensor");
  const int n = 1 << (bits - 1);
  const int num_zp = std::min(16, 2 * n);
  std::vector<RangeStats> st(static_cast<size_t>(cols));
#pragma omp parallel if (rows * cols > (int64_t{1} << 17))
  {
    std::vector<float> buf(static_cast<size_t>(rows));
#pragma omp for schedule(static)
    for (int c = 0; c < cols; ++c) {
      buf.resize(static_cast<size_t>(rows));
      for (int64_t r = 0; r < rows; ++r) buf[static_cast<size_t>(r)] = x[r * cols + c];
      st[static_cast<size_t>(c)] = StatsOfScratch(buf);
    }
  }
  return MakePercentileGrid(st, bits, num_zp, n - num_zp / 2, kActivationScaleFloor);
}

UniformGrid HeadGrid(const float* x, int heads, int64_t per_head, int bits) {
  CheckBits(bits, "matmul operand grid");
  ADALOG_CHECK(heads > 0 && per_head > 0, "matmul operand grid: empty tensor");
  const int n = 1 << (bits - 1);
  const int num_zp = std::min(16, n);
  return MakePercentileGrid(RowStats(x, heads, per_head), bits, num_zp, n - num_zp / 2, 0.0f);
}

std::pair<float, float> PostGeluScaleRange(const float* x, int64_t n, float shift) {
  std::vector<float> pos;
  for (int64_t i = 0; i < n; ++i)
    if (x[i] > 0.0f) pos.push_back(x[i]);
  ADALOG_CHECK(!pos.empty(), "post-GELU scale range: the fc2 input has no positive element");
  const int64_t cnt = static_cast<int64_t>(pos.size());
  // Nearest rank: index ceil(count * p) - 1 (method §4.4).
  const int64_t r90 = std::max<int64_t>(0, static_cast<int64_t>(std::ceil(cnt * 0.9)) - 1);
  const float p90 = KthSmallest(pos, r90);
  const float pmax = *std::max_element(pos.begin(), pos.end());
  return {p90 + shift, pmax + shift};
}

}  // namespace adalog::search
