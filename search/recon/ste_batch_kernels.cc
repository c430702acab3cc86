// Reference float UniformSteBatch kernel and the run-time choice; see ste_batch_kernels.h.
#include "search/recon/ste_batch_kernels.h"

#include <cmath>
#include <cstring>
#include <vector>

#include "runtime/cpu_features.h"
#include "runtime/kernel_registry.h"
#include "search/recon/qdrop.h"
#include "search/recon/ste_batch.h"

namespace adalog::search {

void UniformSteBatchF32Ref(float* x, int64_t n, float s, int32_t z, int32_t cmin, int32_t cmax,
                           float* dx, float* ds) {
  UniformSteBatch<float>(x, n, s, z, cmin, cmax, dx, ds, nullptr);
}

UniformSteBatchF32Fn SelectUniformSteBatchF32() {
  static const std::vector<KernelImpl<UniformSteBatchF32Fn>> list = {
      {"uniform_ste_batch_f32__avx512", IsaLevel::kAvx512, {}, UniformSteBatchF32Avx512},
      {"uniform_ste_batch_f32__ref", IsaLevel::kRef, {}, UniformSteBatchF32Ref},
  };
  static const UniformSteBatchF32Fn f =
      SelectKernel("uniform_ste_batch_f32", list, ActiveIsaLevel()).fn;
  return f;
}

namespace {

// The reference's code of a clamped u (LogSte / LogSteBatch: the same expression).
float LogCode(float u, int num, int den) {
  return RoundHalfEvenFast((-std::log2(u) * static_cast<float>(num)) / static_cast<float>(den));
}

float FromBits(uint32_t b) {
  float f;
  std::memcpy(&f, &b, sizeof f);
  return f;
}

uint32_t ToBits(float f) {
  uint32_t b;
  std::memcpy(&b, &f, sizeof b);
  return b;
}

}  // namespace

void LogSteThresholdsF32(int bits, int num, int den, float* th) {
  // Positive floats order as their bit patterns.
  const uint32_t b_min = ToBits(static_cast<float>(1e-15f)), b_max = ToBits(1.0f);
  for (int64_t k = 1; k <= (int64_t{1} << bits); ++k) {
    const float kf = static_cast<float>(k);
    if (!(LogCode(FromBits(b_min), num, den) >= kf)) {
      th[k - 1] = -1.0f;
      continue;
    }
    uint32_t lo = b_min, hi = b_max;  // r(lo) >= k; find the largest such bit pattern
    if (LogCode(FromBits(hi), num, den) >= kf) {
      lo = hi;
    } else {
      while (hi - lo > 1) {  // invariant: r(lo) >= k > r(hi)
        const uint32_t mid = lo + (hi - lo) / 2;
        if (LogCode(FromBits(mid), num, den) >= kf) {
          lo = mid;
        } else {
          hi = mid;
        }
      }
    }
    th[k - 1] = FromBits(lo);
  }
}

void LogSteBatchF32Ref(float* x, int64_t n, float s, int bits, int num, int den, float shift,
                       bool shift_folded, const float* levels, const float* /*th*/, float* dx,
                       float* ds) {
  LogSteBatch<float>(x, n, s, bits, num, den, shift, shift_folded, levels, dx, ds, nullptr);
}

LogSteBatchF32Fn SelectLogSteBatchF32() {
  static const std::vector<KernelImpl<LogSteBatchF32Fn>> list = {
      {"log_ste_batch_f32__avx512", IsaLevel::kAvx512, {}, LogSteBatchF32Avx512},
      {"log_ste_batch_f32__ref", IsaLevel::kRef, {}, LogSteBatchF32Ref},
  };
  static const LogSteBatchF32Fn f = SelectKernel("log_ste_batch_f32", list, ActiveIsaLevel()).fn;
  return f;
}

void QDropBitsRef(uint64_t key, uint64_t threshold, int site, int64_t e0, int64_t n, uint8_t* out) {
  const QDropMask m = QDropMask::FromRaw(threshold, key);
  for (int64_t i = 0; i < n; ++i) out[i] = m.Dropped(site, e0 + i) ? 1 : 0;
}

QDropBitsFn SelectQDropBits() {
  static const std::vector<KernelImpl<QDropBitsFn>> list = {
      {"qdrop_bits__avx512", IsaLevel::kAvx512, {}, QDropBitsAvx512},
      {"qdrop_bits__ref", IsaLevel::kRef, {}, QDropBitsRef},
  };
  static const QDropBitsFn f = SelectKernel("qdrop_bits", list, ActiveIsaLevel()).fn;
  return f;
}

}  // namespace adalog::search
