// Plain scalar references of the log-code writers (softmax / GELU). Never optimized.
#include "runtime/kernels/reference/logcode_writers_ref.h"

#include <cmath>
#include <cstring>
#include <vector>

namespace adalog::intk::ref {

float ExpPoly(float x) {
  const bool small = x < -87.3f;
  x = x < 88.3f ? x : 88.3f;
  x = x > -87.3f ? x : -87.3f;
  const int32_t ni = static_cast<int32_t>(std::nearbyint(x * 1.44269504088896341f));
  const float n = static_cast<float>(ni);
  float r = std::fmaf(-n, 0.693359375f, x);
  r = std::fmaf(-n, -2.12194440e-4f, r);
  float p = 1.f / 5040.f;
  p = std::fmaf(p, r, 1.f / 720.f);
  p = std::fmaf(p, r, 1.f / 120.f);
  p = std::fmaf(p, r, 1.f / 24.f);
  p = std::fmaf(p, r, 1.f / 6.f);
  p = std::fmaf(p, r, 0.5f);
  p = std::fmaf(p, r, 1.f);
  p = std::fmaf(p, r, 1.f);
  const uint32_t bits = static_cast<uint32_t>(ni + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return small ? 0.f : p * scale;
}

float GeluPoly(float x) {
  const float z = x * 0.707106781f;
  const float a = std::fabs(z);
  const float t = 1.f / std::fmaf(0.3275911f, a, 1.f);
  float q = 1.061405429f;
  q = std::fmaf(q, t, -1.453152027f);
  q = std::fmaf(q, t, 1.421413741f);
  q = std::fmaf(q, t, -0.284496736f);
  q = std::fmaf(q, t, 0.254829592f);
  q = q * t;
  const float erf_a = std::fmaf(-q, ExpPoly(-(a * a)), 1.f);
  const float erf = z < 0.f ? -erf_a : erf_a;
  return (0.5f * x) * (1.f + erf);
}

void SoftmaxPolyRef(const float* x, int64_t rows, int n, float* probs) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * n;
    float m = xr[0];
    for (int i = 1; i < n; ++i) m = xr[i] > m ? xr[i] : m;
    float lanes[16] = {};
    for (int i = 0; i < n; ++i) lanes[i % 16] += ExpPoly(xr[i] - m);
    float total = lanes[0];
    for (int l = 1; l < 16; ++l) total += lanes[l];
    const float inv = 1.f / total;
    for (int i = 0; i < n; ++i) probs[r * n + i] = ExpPoly(xr[i] - m) * inv;
  }
}

void SoftmaxToLogCodesRef(const FastLogEncoder& enc, const float* x, int64_t rows, int n,
                          uint8_t* codes) {
  std::vector<float> p(static_cast<size_t>(n));
  for (int64_t r = 0; r < rows; ++r) {
    SoftmaxPolyRef(x + r * n, 1, n, p.data());
    for (int i = 0; i < n; ++i) codes[r * n + i] = enc.Encode(p[static_cast<size_t>(i)]);
  }
}

void GeluToLogCodesRef(const FastLogEncoder& enc, float shift, const float* x, int64_t n,
                       uint8_t* codes) {
  for (int64_t i = 0; i < n; ++i) codes[i] = enc.Encode(GeluPoly(x[i]) + shift);
}

}  // namespace adalog::intk::ref
