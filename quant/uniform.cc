// Uniform quantizer (quant/uniform.h): array kernels and per-tensor/channel/head application.
#include "quant/uniform.h"

#include <cstring>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "quant/error.h"

namespace adalog {

UniformQuantizer::UniformQuantizer(const UniformParams& p) : p_(p) {
  p_.Validate();
  lo_ = static_cast<float>(p_.CodeMin() - p_.zero_point);
  hi_ = static_cast<float>(p_.CodeMax() - p_.zero_point);
}

void UniformQuantizer::Encode(const float* x, int64_t n, UniformCode* codes) const {
  ADALOG_CHECK(p_.mode == UniformMode::kAsymmetric,
               "uniform quantizer: uint8 codes need asymmetric mode");
  int64_t i = 0;
#if defined(__SSE2__)
  // 4 lanes of Encode(): NaN -> 0 (maxps returns its 2nd operand if either is NaN, so clamp the
  // NaN-zeroed t), round via the magic constant (exact after the clamp), then + z. Codes fit
  // 0..255, so the saturating packs are exact.
  const __m128 s = _mm_set1_ps(p_.scale), lo = _mm_set1_ps(lo_), hi = _mm_set1_ps(hi_);
  const __m128 magic = _mm_set1_ps(12582912.0f);
  const __m128i z = _mm_set1_epi32(p_.zero_point);
  for (; i + 4 <= n; i += 4) {
    __m128 t = _mm_div_ps(_mm_loadu_ps(x + i), s);
    t = _mm_and_ps(t, _mm_cmpord_ps(t, t));  // NaN -> +0
    t = _mm_min_ps(_mm_max_ps(t, lo), hi);
    t = _mm_sub_ps(_mm_add_ps(t, magic), magic);
    const __m128i c = _mm_add_epi32(_mm_cvttps_epi32(t), z);
    const __m128i c16 = _mm_packs_epi32(c, c);
    const int32_t packed = _mm_cvtsi128_si32(_mm_packus_epi16(c16, c16));
    std::memcpy(codes + i, &packed, 4);
  }
#endif
  for (; i < n; ++i) codes[i] = static_cast<UniformCode>(Encode(x[i]));
}

void UniformQuantizer::Encode(const float* x, int64_t n, SignedCode* codes) const {
  ADALOG_CHECK(p_.mode == UniformMode::kSymmetric,
               "uniform quantizer: int8 codes need symmetric mode");
  for (int64_t i = 0; i < n; ++i) codes[i] = static_cast<SignedCode>(Encode(x[i]));
}

void UniformQuantizer::Decode(const UniformCode* codes, int64_t n, float* out) const {
  for (int64_t i = 0; i < n; ++i) out[i] = Decode(static_cast<int32_t>(codes[i]));
}

void UniformQuantizer::Decode(const SignedCode* codes, int64_t n, float* out) const {
  for (int64_t i = 0; i < n; ++i) out[i] = Decode(static_cast<int32_t>(codes[i]));
}

void UniformQuantizer::FakeQuant(const float* x, int64_t n, float* out) const {
  // Same equation as Encode + Decode, fused: out = round(clamp(x/s, lo, hi)) * s, NaN -> NaN.
  const float s = p_.scale, lo = lo_, hi = hi_;
  int64_t i = 0;
#if defined(__SSE2__)
  // 4 lanes of the scalar loop below (the scalar loop does not auto-vectorize: its NaN-aware
  // selects are control flow under -ftrapping-math). maxps/minps return the 2nd operand when
  // one is NaN, which the final blend overrides with the NaN input.
  const __m128 vs = _mm_set1_ps(s), vlo = _mm_set1_ps(lo), vhi = _mm_set1_ps(hi);
  const __m128 magic = _mm_set1_ps(12582912.0f);
  for (; i + 4 <= n; i += 4) {
    const __m128 v = _mm_loadu_ps(x + i);
    __m128 t = _mm_min_ps(_mm_max_ps(_mm_div_ps(v, vs), vlo), vhi);
    t = _mm_mul_ps(_mm_sub_ps(_mm_add_ps(t, magic), magic), vs);
    const __m128 ord = _mm_cmpord_ps(v, v);
    _mm_storeu_ps(out + i, _mm_or_ps(_mm_and_ps(ord, t), _mm_andnot_ps(ord, v)));
  }
#endif
  for (; i < n; ++i) {
    const float v = x[i];
    float t = v / s;
    t = t >= lo ? t : lo;
    t = t <= hi ? t : hi;
    const float r = RoundHalfEvenSmall(t) * s;
    out[i] = (v == v) ? r : v;
  }
}

int64_t NumElements(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (size_t i = 0; i < shape.size(); ++i) {
    ADALOG_CHECK(shape[i] >= 0, "shape dimension ", i, " = ", shape[i], " is negative");
    n *= shape[i];
  }
  return n;
}

namespace {

// Splits a row-major shape at `axis` into outer x channels x inner.
struct AxisSplit {
  int64_t outer = 1, channels = 1, inner = 1;
};

AxisSplit SplitAt(const std::vector<int64_t>& shape, int axis, int64_t groups, const char* what) {
  NumElements(shape);  // validates dims
  ADALOG_CHECK(axis >= 0 && axis < static_cast<int>(shape.size()), what, ": axis ", axis,
               " is out of range for a rank-", shape.size(), " tensor");
  ADALOG_CHECK(shape[static_cast<size_t>(axis)] == groups, what, ": dims[", axis,
               "] = ", shape[static_cast<size_t>(axis)], " but ", groups,
               " parameter groups were given");
  AxisSplit s;
  for (int i = 0; i < axis; ++i) s.outer *= shape[static_cast<size_t>(i)];
  s.channels = groups;
  for (size_t i = static_cast<size_t>(axis) + 1; i < shape.size(); ++i) s.inner *= shape[i];
  return s;
}

template <typename Op>
void ForEachGroup(const AxisSplit& s, const std::vector<UniformQuantizer>& qs, Op op) {
  for (int64_t o = 0; o < s.outer; ++o) {
    for (int64_t c = 0; c < s.channels; ++c) {
      const int64_t off = (o * s.channels + c) * s.inner;
      op(qs[static_cast<size_t>(c)], off, s.inner);
    }
  }
}

std::vector<UniformQuantizer> MakeGroups(int bits, UniformMode mode,
                                         const std::vector<float>& scales,
                                         const std::vector<int32_t>& zps) {
  std::vector<UniformQuantizer> qs;
  qs.reserve(scales.size());
  for (size_t i = 0; i < scales.size(); ++i)
    qs.emplace_back(UniformParams{bits, scales[i], zps[i], mode});
  return qs;
}

// The groups of a per-channel or per-head quantizer over `shape` (validated), each with its own
// quantizer: fn(quantizer, offset, count) for every contiguous run of one group.
template <class Fn>
void ForEachGroupOf(const UniformPerChannel& q, const std::vector<int64_t>& shape, const Fn& fn) {
  q.Validate();
  const AxisSplit s = SplitAt(shape, q.axis, q.num_channels(), "per-channel uniform quantizer");
  ForEachGroup(s, MakeGroups(q.bits, q.mode, q.scales, q.zero_points), fn);
}

template <class Fn>
void ForEachGroupOf(const UniformPerHead& q, const std::vector<int64_t>& shape, const Fn& fn) {
  q.Validate();
  ADALOG_CHECK(shape.size() == 4,
               "per-head uniform quantizer: expects a rank-4 (B, H, N, d) tensor, got rank ",
               shape.size());
  const AxisSplit s =
      SplitAt(shape, UniformPerHead::kHeadAxis, q.num_heads(), "per-head uniform quantizer");
  ForEachGroup(s, MakeGroups(q.bits, q.mode, q.scales, q.zero_points), fn);
}

template <class Grouped>
void FakeQuantizeGroups(const Grouped& q, const float* x, const std::vector<int64_t>& shape,
                        float* out) {
  ForEachGroupOf(q, shape, [&](const UniformQuantizer& u, int64_t off, int64_t n) {
    u.FakeQuant(x + off, n, out + off);
  });
}

template <class Grouped>
void EncodeGroups(const Grouped& q, const float* x, const std::vector<int64_t>& shape,
                  UniformCode* codes) {
  ForEachGroupOf(q, shape, [&](const UniformQuantizer& u, int64_t off, int64_t n) {
    u.Encode(x + off, n, codes + off);
  });
}

}  // namespace

void FakeQuantize(const UniformPerTensor& q, const float* x, const std::vector<int64_t>& shape,
                  float* out) {
  UniformQuantizer(q.params).FakeQuant(x, NumElements(shape), out);
}

void FakeQuantize(const UniformPerChannel& q, const float* x, const std::vector<int64_t>& shape,
                  float* out) {
  FakeQuantizeGroups(q, x, shape, out);
}

void FakeQuantize(const UniformPerHead& q, const float* x, const std::vector<int64_t>& shape,
                  float* out) {
  FakeQuantizeGroups(q, x, shape, out);
}

void Encode(const UniformPerTensor& q, const float* x, const std::vector<int64_t>& shape,
            UniformCode* codes) {
  UniformQuantizer(q.params).Encode(x, NumElements(shape), codes);
}

void Encode(const UniformPerChannel& q, const float* x, const std::vector<int64_t>& shape,
            UniformCode* codes) {
  EncodeGroups(q, x, shape, codes);
}

void Encode(const UniformPerHead& q, const float* x, const std::vector<int64_t>& shape,
            UniformCode* codes) {
  EncodeGroups(q, x, shape, codes);
}

}  // namespace adalog
