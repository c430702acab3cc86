// Fake quantization callbacks and uniform code thresholds; see fake_quant_fns.h.
#include "search/fake_quant_fns.h"

#include <algorithm>
#include <limits>
#include <memory>

#include "quant/float_order.h"
#include "quant/log_quantizers.h"
#include "quant/twin_uniform.h"
#include "quant/uniform.h"
#include "search/scan_kernels.h"

namespace adalog::search {

std::vector<float> UniformCodeThresholds(const UniformParams& p) {
  // The uniform code is monotone non-decreasing over the ordered non-NaN floats (-0 and +0
  // encode alike): thr[c - 1] = the smallest float whose code is >= c, by bisection over the
  // float bit patterns with the quantizer's own Encode.
  const UniformQuantizer q(p);
  const int32_t levels = int32_t{1} << p.bits;
  const uint32_t kmin = OrderedFloatKey(-std::numeric_limits<float>::infinity());
  const uint32_t kmax = OrderedFloatKey(std::numeric_limits<float>::infinity());
  std::vector<float> thr;
  for (int32_t c = 1; c < levels; ++c) {
    if (q.Encode(FloatFromOrderedKey(kmin)) >= c) {
      thr.push_back(FloatFromOrderedKey(kmin));
      continue;
    }
    if (q.Encode(FloatFromOrderedKey(kmax)) < c) {
      thr.push_back(std::numeric_limits<float>::quiet_NaN());  // never reached: no x >= NaN
      continue;
    }
    uint32_t lo = kmin, hi = kmax;  // code(lo) < c <= code(hi)
    while (hi - lo > 1) {
      const uint32_t mid = lo + (hi - lo) / 2;
      if (q.Encode(FloatFromOrderedKey(mid)) >= c) hi = mid; else lo = mid;
    }
    thr.push_back(FloatFromOrderedKey(hi));
  }
  return thr;
}

FakeQuantFn UniformFq(const UniformParams& p) {
  auto q = std::make_shared<UniformQuantizer>(p);
  return [q](const float* x, int64_t n, float* out) { q->FakeQuant(x, n, out); };
}

namespace {
// A log quantizer's code as a count of thresholds: the code is monotone non-increasing over
// the ordered non-NaN floats (-inf .. +inf; -0 and +0 encode alike), so {x : code(x) >= c} is
// a prefix, and thr[c - 1] = the smallest float whose code is < c, found by bisection over the
// float bit patterns with the quantizer's own Encode. code(x) = #{c : x < thr[c - 1]} for every
// non-NaN x (exact by construction; tested against Encode).
struct LogThresholdQuant {
  std::vector<float> thr;  // descending, LogZeroCode(bits) entries
  std::vector<float> lv;   // unscaled levels
  float scale = 1.0f;
  explicit LogThresholdQuant(const LogQuantizer& q) : lv(q.levels()), scale(q.params().scale) {
    const int32_t zc = q.zero_code();
    const uint32_t kmin = OrderedFloatKey(-std::numeric_limits<float>::infinity());
    const uint32_t kmax = OrderedFloatKey(std::numeric_limits<float>::infinity());
    for (int32_t c = 1; c <= zc; ++c) {
      uint32_t lo = kmin, hi = kmax;  // code(lo) >= c is assumed; code(hi) = 0 < c
      if (static_cast<int32_t>(q.Encode(FloatFromOrderedKey(lo))) < c) {
        thr.push_back(FloatFromOrderedKey(lo));  // (not reached: -inf has the zero code)
        continue;
      }
      while (hi - lo > 1) {
        const uint32_t mid = lo + (hi - lo) / 2;
        if (static_cast<int32_t>(q.Encode(FloatFromOrderedKey(mid))) < c) hi = mid; else lo = mid;
      }
      thr.push_back(FloatFromOrderedKey(hi));
    }
  }
  // out = Decode(Encode(x)) (NaN -> NaN), for x already shifted.
  void Apply(const float* x, int64_t n, float* out) const {
    SelectScanKernels().threshold_levels(x, n, thr.data(), static_cast<int>(thr.size()), 0,
                                         lv.data(), out);
    for (int64_t i = 0; i < n; ++i) out[i] = x[i] == x[i] ? out[i] * scale : x[i];
  }
};
}  // namespace

FakeQuantFn LogFq(const LogParams& p, float shift) {
  if (p.bits > 4) {  // many thresholds: the quantizer's table encoder is faster
    if (shift == 0.0f) {
      auto q = std::make_shared<LogQuantizer>(p);
      return [q](const float* x, int64_t n, float* out) { q->FakeQuant(x, n, out); };
    }
    auto q = std::make_shared<ShiftLogQuantizer>(p, shift, false);
    return [q](const float* x, int64_t n, float* out) { q->FakeQuant(x, n, out); };
  }
  // Same values as LogQuantizer / ShiftLogQuantizer::FakeQuant, through the threshold count
  // (an in-register binary search on AVX-512).
  auto q = std::make_shared<LogThresholdQuant>(LogQuantizer(p));
  if (shift == 0.0f) return [q](const float* x, int64_t n, float* out) { q->Apply(x, n, out); };
  return [q, shift](const float* x, int64_t n, float* out) {
    constexpr int64_t kChunk = 4096;
    float tmp[kChunk];
    for (int64_t i0 = 0; i0 < n; i0 += kChunk) {
      const int64_t m = std::min(kChunk, n - i0);
      for (int64_t i = 0; i < m; ++i) tmp[i] = x[i0 + i] + shift;
      q->Apply(tmp, m, out + i0);
      for (int64_t i = 0; i < m; ++i) out[i0 + i] = out[i0 + i] - shift;
    }
  };
}

FakeQuantFn TwinFq(const TwinUniformParams& p) {
  auto q = std::make_shared<TwinUniformQuantizer>(p);
  return [q](const float* x, int64_t n, float* out) { q->FakeQuant(x, n, out); };
}

}  // namespace adalog::search
