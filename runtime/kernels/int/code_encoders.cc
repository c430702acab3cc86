// Threshold tables and dispatch for the vector code encoders (code_encoders.h).
#include "runtime/kernels/int/code_encoders.h"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "quant/error.h"
#include "quant/float_order.h"
#include "runtime/kernel_registry.h"

namespace adalog::intk {
namespace {

constexpr int kMaxPermuteLog2 = 6;  // tables above 64 entries take the bucket-table path

uint32_t Key(float f) { return OrderedFloatKey(f); }
float FromKey(uint32_t k) { return FloatFromOrderedKey(k); }

int32_t CountByCompare(const std::vector<float>& thr, float x) {
  int32_t n = 0;
  for (float t : thr) n += static_cast<int32_t>(x < t);
  return n;
}

// The level an encoder's Encode runs at: AVX-512, AVX2 or quant's scalar Encode. Every level
// encodes every table (the table size picks the path inside the level, see path()), so only the
// ISA declines. Names: code_encode_log__avx512, code_encode_u8__avx2, ...
IsaLevel LogEncoderLevel(IsaLevel cap) {
  static const std::vector<KernelImpl<IsaLevel>> list = {
      {"code_encode_log__avx512", IsaLevel::kAvx512, {}, IsaLevel::kAvx512},
      {"code_encode_log__avx2", IsaLevel::kAvx2, {}, IsaLevel::kAvx2},
      {"code_encode_log__scalar", IsaLevel::kRef, {}, IsaLevel::kRef},
  };
  return SelectKernel("code_encode_log", list, cap).fn;
}

IsaLevel UniformEncoderLevel(IsaLevel cap) {
  static const std::vector<KernelImpl<IsaLevel>> list = {
      {"code_encode_u8__avx512", IsaLevel::kAvx512, {}, IsaLevel::kAvx512},
      {"code_encode_u8__avx2", IsaLevel::kAvx2, {}, IsaLevel::kAvx2},
      {"code_encode_u8__scalar", IsaLevel::kRef, {}, IsaLevel::kRef},
  };
  return SelectKernel("code_encode_u8", list, cap).fn;
}

// The thresholds of a base log code g over y, descending (t_0 the largest), when each is a finite
// positive float and every y <= 0 has the largest code: the shape the exponent and key-bucket
// tables need. Empty otherwise.
std::vector<float> PositiveThresholds(const ThresholdLogEncoder& g) {
  std::vector<float> pos;
  for (int c = 0; c < g.max_code(); ++c) {
    const float t = g.thresholds()[static_cast<size_t>(c)];
    if (!(t > 0.0f) || !std::isfinite(t)) return {};
    pos.push_back(t);
  }
  if (g.Scalar(-FLT_MAX) != g.max_code() || g.Scalar(0.0f) != g.max_code()) return {};
  return pos;
}

}  // namespace

ThresholdLogEncoder::ThresholdLogEncoder(std::function<int32_t(float)> code, IsaLevel cap)
    : code_(std::move(code)) {
  const float lo_f = -FLT_MAX, hi_f = FLT_MAX;
  max_code_ = code_(lo_f);
  const int32_t min_code = code_(hi_f);
  ADALOG_CHECK(max_code_ >= 0 && max_code_ <= 255 && min_code >= 0 && min_code <= max_code_,
               "threshold encoder: code range [", min_code, ", ", max_code_,
               "] is not a non-increasing range within 0..255 (internal error)");
  while (padded_ < max_code_) {
    padded_ <<= 1;
    ++log2_padded_;
  }
  thr_.assign(static_cast<size_t>(padded_), -std::numeric_limits<float>::infinity());
  const uint32_t klo = Key(lo_f), khi = Key(hi_f);
  for (int32_t c = 0; c < max_code_; ++c) {
    if (code_(hi_f) > c) {  // no finite x reaches a code <= c
      thr_[static_cast<size_t>(c)] = std::numeric_limits<float>::infinity();
      continue;
    }
    uint32_t a = klo, b = khi;  // code(a) > c >= code(b)
    while (b - a > 1) {
      const uint32_t mid = a + (b - a) / 2;
      if (code_(FromKey(mid)) <= c) {
        b = mid;
      } else {
        a = mid;
      }
    }
    thr_[static_cast<size_t>(c)] = FromKey(b);
  }
  // Re-check the equation at every threshold's neighbourhood and on spread-out samples: a
  // non-monotone code function (or a jump between -0 and +0) would fail here, not at run time.
  auto check = [&](float x) {
    if (!std::isfinite(x)) return;
    const int32_t want = code_(x), got = CountByCompare(thr_, x);
    ADALOG_CHECK(want == got && ThresholdCount(thr_.data(), log2_padded_, x) == want,
                 "threshold encoder: table gives code ", got, " for x = ", x, ", quant's Encode ",
                 want, " (the code function is not monotone; internal error)");
  };
  for (int32_t c = 0; c < max_code_; ++c) {
    const float t = thr_[static_cast<size_t>(c)];
    if (!std::isfinite(t)) continue;
    const uint32_t k = Key(t);
    for (uint32_t d = 0; d < 3; ++d) {
      if (k - d >= klo) check(FromKey(k - d));
      if (k + d <= khi) check(FromKey(k + d));
    }
  }
  uint32_t s = 0x9e3779b9u;
  for (int i = 0; i < 1024; ++i) {
    s = s * 1664525u + 1013904223u;
    check(FromKey(klo + static_cast<uint32_t>((static_cast<uint64_t>(s) * (khi - klo)) >> 32)));
  }
  for (float x : {0.0f, -0.0f, 1.0f, -1.0f, FLT_MIN, -FLT_MIN, lo_f, hi_f}) check(x);

  isa_ = LogEncoderLevel(cap);
}

ThresholdLogEncoder::ThresholdLogEncoder(const LogQuantizer& q, IsaLevel cap)
    : ThresholdLogEncoder([q](float x) { return static_cast<int32_t>(q.Encode(x)); }, cap) {
  if (log2_padded_ > kMaxPermuteLog2) {
    if (q.params().kind != LogKind::kLogSqrt2) BuildLargeTablePaths(q, false, 0.f);
  } else {
    BuildKeyBucketPath(q, false, 0.f);
  }
}

ThresholdLogEncoder::ThresholdLogEncoder(const ShiftLogQuantizer& q, IsaLevel cap)
    : ThresholdLogEncoder([q](float x) { return static_cast<int32_t>(q.Encode(x)); }, cap) {
  if (log2_padded_ > kMaxPermuteLog2) {
    if (q.base().params().kind != LogKind::kLogSqrt2) BuildLargeTablePaths(q.base(), true, q.shift());
  } else {
    BuildKeyBucketPath(q.base(), true, q.shift());
  }
}

// KeyBucketTable (code_encoders.h): the thresholds of the base code over y, bucketed by the top
// bits of their float representation. Leaves key_table_ empty where the shape does not fit.
void ThresholdLogEncoder::BuildKeyBucketPath(const LogQuantizer& base, bool add_shift,
                                             float shift) {
  if (isa_ == IsaLevel::kRef) return;
  const ThresholdLogEncoder g([base](float y) { return static_cast<int32_t>(base.Encode(y)); },
                              IsaLevel::kRef);
  const std::vector<float> pos = PositiveThresholds(g);  // descending (t_0 is the largest)
  if (pos.empty()) return;  // not the expected shape: keep the search
  auto bits = [](float f) {
    int32_t b;
    std::memcpy(&b, &f, sizeof b);
    return b;
  };
  constexpr int kB = KeyBucketTable::kBuckets;
  int chosen = -1, per_bucket = 0;
  for (int m = 0; m <= 7 && per_bucket != 1; ++m) {
    const int s = 23 - m;
    const int32_t kmin = bits(pos.back()) >> s, kmax = bits(pos.front()) >> s;
    if (kmax - kmin >= kB) break;  // a finer key only spans more buckets
    int most = 0, run = 0;
    for (size_t j = 0; j < pos.size(); ++j) {
      run = (j > 0 && (bits(pos[j]) >> s) == (bits(pos[j - 1]) >> s)) ? run + 1 : 1;
      most = std::max(most, run);
    }
    if (most <= 1 || (most <= KeyBucketTable::kMaxPerBucket && chosen < 0)) {
      chosen = m;
      per_bucket = most;
    }
  }
  if (chosen < 0) return;
  KeyBucketTable t;
  t.key_shift = 23 - chosen;
  t.k0 = bits(pos.back()) >> t.key_shift;
  t.per_bucket = per_bucket;
  t.code_nonpos = g.max_code();
  t.shift = shift;
  t.add_shift = add_shift;
  for (int i = 0; i < kB; ++i) {
    int k = 0;
    t.base[i] = 0;
    for (auto it = pos.rbegin(); it != pos.rend(); ++it) {  // ascending
      const int32_t key = bits(*it) >> t.key_shift;
      if (key >= t.k0 + i) ++t.base[i];
      if (key == t.k0 + i) t.thr[k++][i] = *it;
    }
    for (; k < KeyBucketTable::kMaxPerBucket; ++k) {
      t.thr[k][i] = std::numeric_limits<float>::infinity();
    }
  }
  // Re-check against quant around every threshold, at every bucket edge and on samples.
  auto check = [&](float y) {
    if (!std::isfinite(y)) return;
    ADALOG_CHECK(KeyBucketCode(t, y) == g.Scalar(y), "key-bucket code table: code ",
                 KeyBucketCode(t, y), " for y = ", y, ", quant's Encode ", g.Scalar(y),
                 " (internal error)");
  };
  for (float th : pos) {
    float y = th;
    for (int d = 0; d < 3; ++d) y = std::nextafter(y, 0.0f);
    for (int d = 0; d < 6; ++d, y = std::nextafter(y, FLT_MAX)) check(y);
  }
  for (int i = -1; i <= kB + 1; ++i) {
    const int64_t key = int64_t{t.k0} + i;
    if (key <= 0 || (key << t.key_shift) >= 0x7f800000) continue;
    float y;
    const int32_t b = static_cast<int32_t>(key << t.key_shift);
    std::memcpy(&y, &b, sizeof y);
    check(y);
    check(std::nextafter(y, 0.0f));
  }
  uint32_t r = 0x2545f491u;
  for (int i = 0; i < 1024; ++i) {
    r = r * 1664525u + 1013904223u;
    check(std::ldexp(static_cast<float>(r >> 8) / 16777216.0f, static_cast<int>(r % 64) - 40));
  }
  for (float y : {0.0f, -0.0f, -1.0f, FLT_MIN, 1e-45f, FLT_MAX, -FLT_MAX}) check(y);
  add_shift_ = add_shift;
  shift_ = shift;
  key_table_ = t;
}

void ThresholdLogEncoder::BuildLargeTablePaths(const LogQuantizer& base, bool add_shift,
                                               float shift) {
  add_shift_ = add_shift;
  shift_ = shift;
  table_.emplace(MakeLogCodeWriter(base.params(), add_shift ? shift : 0.f));
  if (isa_ < IsaLevel::kAvx512) return;
  // Thresholds of the base code over y (exact, checked), then per-exponent buckets.
  const ThresholdLogEncoder g([base](float y) { return static_cast<int32_t>(base.Encode(y)); },
                              IsaLevel::kRef);
  const std::vector<float> pos = PositiveThresholds(g);
  if (pos.empty()) return;  // not the expected shape: keep the gathers
  auto exponent = [](float f) {
    uint32_t b;
    std::memcpy(&b, &f, sizeof b);
    return static_cast<int32_t>(b >> 23);
  };
  const int32_t e_min = exponent(pos.back()), e_max = exponent(pos.front());
  ExponentCodeTable t;
  t.e0 = e_min - 1;  // every positive threshold lies strictly above B_0
  if (t.e0 < 1 || e_max - t.e0 >= ExponentCodeTable::kBuckets) return;
  t.code_nonpos = g.max_code();
  t.shift = shift;
  t.add_shift = add_shift;
  for (int i = 0; i < ExponentCodeTable::kBuckets; ++i) {
    const int32_t e = t.e0 + i;
    const float lo = e <= 254 ? std::ldexp(1.0f, e - 127) : std::numeric_limits<float>::infinity();
    const float hi =
        e + 1 <= 254 ? std::ldexp(1.0f, e + 1 - 127) : std::numeric_limits<float>::infinity();
    int32_t above = 0, k = 0;
    for (int c = g.max_code() - 1; c >= 0; --c) {  // ascending thresholds
      const float th = pos[static_cast<size_t>(c)];
      if (th > lo) ++above;
      if (th > lo && th < hi) {
        if (k == ExponentCodeTable::kPerBucket) return;  // denser than 4 per octave
        t.thr[k++][i] = th;
      }
    }
    for (; k < ExponentCodeTable::kPerBucket; ++k) {
      t.thr[k][i] = std::numeric_limits<float>::infinity();
    }
    t.base[i] = above;
  }
  // Re-check against quant at every threshold's neighbourhood and at bucket edges.
  auto table_code = [&](float y) -> int32_t {
    if (!(y > 0.0f)) return t.code_nonpos;
    int32_t i = exponent(y) - t.e0;
    i = i < 0 ? 0 : (i > ExponentCodeTable::kBuckets - 1 ? ExponentCodeTable::kBuckets - 1 : i);
    int32_t c = t.base[i];
    for (int k = 0; k < ExponentCodeTable::kPerBucket; ++k) c -= static_cast<int32_t>(t.thr[k][i] <= y);
    return c;
  };
  for (float th : pos) {
    float y = th;
    for (int d = 0; d < 3; ++d) y = std::nextafter(y, 0.0f);
    for (int d = 0; d < 6; ++d, y = std::nextafter(y, FLT_MAX)) {
      ADALOG_CHECK(table_code(y) == g.Scalar(y), "exponent code table: code ", table_code(y),
                   " for y = ", y, ", quant's Encode ", g.Scalar(y), " (internal error)");
    }
  }
  for (int e = 1; e < 255; ++e) {
    const float y = std::ldexp(1.0f, e - 127);
    ADALOG_CHECK(table_code(y) == g.Scalar(y) &&
                     table_code(std::nextafter(y, 0.0f)) == g.Scalar(std::nextafter(y, 0.0f)),
                 "exponent code table: mismatch at 2^", e - 127, " (internal error)");
  }
  exp_table_ = t;
}

const char* ThresholdLogEncoder::path() const {
  if (key_table_) return "key-bucket";
  if (exp_table_) return "exponent";
  if (isa_ == IsaLevel::kRef) return "scalar";
  if (table_) return "bucket-gather";
  const int max_permute = isa_ == IsaLevel::kAvx2 ? 5 : kMaxPermuteLog2;
  return log2_padded_ > max_permute ? "threshold-gather" : "permute";
}

void ThresholdLogEncoder::Encode(const float* x, int64_t n, uint8_t* codes) const {
  bool nonfinite = false;
  if (key_table_) {
    const bool any = isa_ == IsaLevel::kAvx2 ? EncodeLogKeyBucketsAvx2(*key_table_, x, n, codes)
                                             : EncodeLogKeyBucketsAvx512(*key_table_, x, n, codes);
    if (any) {
      for (int64_t i = 0; i < n; ++i) {
        const float y = add_shift_ ? x[i] + shift_ : x[i];
        if (!std::isfinite(y)) codes[i] = static_cast<uint8_t>(code_(x[i]));
      }
    }
    return;
  }
  if (exp_table_) {
    if (EncodeLogExponentAvx512(*exp_table_, x, n, codes)) {
      for (int64_t i = 0; i < n; ++i) {
        const float y = add_shift_ ? x[i] + shift_ : x[i];
        if (!std::isfinite(y)) codes[i] = static_cast<uint8_t>(code_(x[i]));
      }
    }
    return;
  }
  if (table_ && isa_ != IsaLevel::kRef) {  // exact for every input, NaN and inf included
    if (isa_ == IsaLevel::kAvx2) {
      LogCodesFromFloatsAvx2(*table_, add_shift_, x, n, codes);
    } else {
      LogCodesFromFloatsAvx512(*table_, add_shift_, x, n, codes);
    }
    return;
  }
  switch (isa_) {
    case IsaLevel::kAvx512:
    case IsaLevel::kAvx512Vnni:
      nonfinite = EncodeLogThresholdsAvx512(thr_.data(), log2_padded_, x, n, codes);
      break;
    case IsaLevel::kAvx2:
      nonfinite = EncodeLogThresholdsAvx2(thr_.data(), log2_padded_, x, n, codes);
      break;
    case IsaLevel::kRef:
      for (int64_t i = 0; i < n; ++i) codes[i] = static_cast<uint8_t>(code_(x[i]));
      return;
  }
  if (nonfinite) {
    for (int64_t i = 0; i < n; ++i) {
      if (!std::isfinite(x[i])) codes[i] = static_cast<uint8_t>(code_(x[i]));
    }
  }
}

VectorUniformEncoder::VectorUniformEncoder(const UniformQuantizer& q, IsaLevel cap) : q_(q) {
  const UniformParams& p = q.params();
  ADALOG_CHECK(p.mode == UniformMode::kAsymmetric,
               "vector uniform encoder: uint8 codes need an asymmetric quantizer");
  lo_ = static_cast<float>(0 - p.zero_point);
  hi_ = static_cast<float>(((int32_t{1} << p.bits) - 1) - p.zero_point);
  isa_ = UniformEncoderLevel(cap);
}

SegmentedUniformEncoder::SegmentedUniformEncoder(
    const std::vector<const VectorUniformEncoder*>& segments, const std::vector<int>& lengths)
    : seg_(segments), len_(lengths) {
  ADALOG_CHECK(seg_.size() == len_.size(), "segmented encoder: ", seg_.size(), " encoders for ",
               len_.size(), " lengths");
  struct Config {
    bool all_avx512 = true;   // every segment's encoder runs at AVX-512
    bool whole_vectors = true;  // every segment a multiple of 16 floats
  } config;
  IsaLevel lowest = DetectedIsaLevel();  // the cap the segments' encoders were made under
  for (size_t i = 0; i < seg_.size(); ++i) {
    ADALOG_CHECK(seg_[i] != nullptr && len_[i] >= 0, "segmented encoder: bad segment ", i);
    if (seg_[i]->isa() < lowest) lowest = seg_[i]->isa();
    row_ += len_[i];
    config.whole_vectors = config.whole_vectors && len_[i] % 16 == 0;
    config.all_avx512 = config.all_avx512 && (seg_[i]->isa() == IsaLevel::kAvx512 ||
                                              seg_[i]->isa() == IsaLevel::kAvx512Vnni);
  }
  // The segments' own levels already carry the ISA cap; the lowest of them is passed as the cap so
  // the dispatch log names the cap in force (it said the detected level under ADALOG_ISA=avx2).
  static const std::vector<KernelImpl<bool, Config>> list = {
      {"code_encode_u8_segments__avx512", IsaLevel::kAvx512,
       [](const Config& c) -> const char* {
         if (!c.all_avx512) return "a segment's encoder is below avx512";
         if (!c.whole_vectors) return "a segment is not a multiple of 16 floats";
         return nullptr;
       },
       true},
      {"code_encode_u8_segments__per_segment", IsaLevel::kRef, {}, false},
  };
  vectorized_ = SelectKernel("code_encode_u8_segments", list, config, lowest, [&] {
                  return std::to_string(seg_.size()) + " segments";
                }).fn;
  if (!vectorized_) return;
  for (size_t i = 0; i < seg_.size(); ++i) {
    for (int v = 0; v < len_[i] / 16; ++v) {
      scale_.push_back(seg_[i]->params().scale);
      lo_.push_back(seg_[i]->clamp_lo());
      hi_.push_back(seg_[i]->clamp_hi());
      zero_.push_back(seg_[i]->params().zero_point);
    }
  }
}

void SegmentedUniformEncoder::Encode(const float* x, int64_t ldx, int64_t rows, uint8_t* codes,
                                     int64_t ldc) const {
  if (vectorized_) {
    EncodeUniformU8VectorsAvx512(scale_.data(), lo_.data(), hi_.data(), zero_.data(),
                                 static_cast<int>(scale_.size()), x, ldx, rows, codes, ldc);
    return;
  }
  for (int64_t r = 0; r < rows; ++r) {
    int off = 0;
    for (size_t i = 0; i < seg_.size(); ++i) {
      seg_[i]->Encode(x + r * ldx + off, len_[i], codes + r * ldc + off);
      off += len_[i];
    }
  }
}

void VectorUniformEncoder::Encode(const float* x, int64_t n, uint8_t* codes) const {
  const UniformParams& p = q_.params();
  switch (isa_) {
    case IsaLevel::kAvx512:
    case IsaLevel::kAvx512Vnni:
      EncodeUniformU8Avx512(p.scale, lo_, hi_, p.zero_point, x, n, codes);
      return;
    case IsaLevel::kAvx2:
      EncodeUniformU8Avx2(p.scale, lo_, hi_, p.zero_point, x, n, codes);
      return;
    case IsaLevel::kRef:
      q_.Encode(x, n, codes);
      return;
  }
}

}  // namespace adalog::intk
