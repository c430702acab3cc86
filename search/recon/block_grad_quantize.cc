// The block's activation quantizers in training mode (see block_grad.h): the straight-through
// quantizer of a site, per kind and rounding mode, and the QDrop mask on top of it. Split from
// block_grad.cc (the block's steps and their backward); instantiated for float and double below.
#include <algorithm>
#include <cstdint>
#include <type_traits>

#include "search/recon/block_grad.h"
#include "search/recon/qdrop.h"
#include "search/recon/ste_batch.h"
#include "search/recon/ste_batch_kernels.h"

namespace adalog::search {

// Fake-quantizes data[0, n) in place with site `site`'s quantizer, except the elements the QDrop
// mask drops (value x, dx^/dx = 1, dx^/ds = 0). With a mask, chunk by chunk through a small
// buffer that stays in L1 (the quantizers are element-wise, so the chunking changes no value).
template <typename T>
void BlockRecon<T>::Quantize(int site, const BlockTrainParams<T>& p, int scale_index, T* data,
                             int64_t offset, int64_t n) {
  if (act_[site].kind == ActQuant::Kind::kNone) return;
  if (!drop_.active()) {
    QuantizeKinds(site, p, scale_index, data, offset, n);
    return;
  }
  static const QDropBitsFn kBits = SelectQDropBits();
  constexpr int64_t kChunk = 512;
  T q[kChunk];
  uint8_t bits[kChunk];
  for (int64_t i0 = 0; i0 < n; i0 += kChunk) {
    const int64_t m = std::min(kChunk, n - i0);
    T* dp = data + i0;
    std::copy(dp, dp + m, q);
    QuantizeKinds(site, p, scale_index, q, offset + i0, m);
    kBits(drop_.key(), drop_.threshold(), site, offset + i0, m, bits);
    T* xp = save_[site].dxdx.data() + offset + i0;
    T* sp = save_[site].dxds.data() + offset + i0;
    // Selects, not branches: the bits are random, a branch would mispredict half the time.
    for (int64_t j = 0; j < m; ++j) {
      const bool d = bits[j] != 0;
      dp[j] = d ? dp[j] : q[j];
      xp[j] = d ? T(1) : xp[j];
      sp[j] = d ? T(0) : sp[j];
    }
  }
}

// Fake-quantizes data[0, n) in place with site `site`'s quantizer (scale p.act_scale[site]
// [scale_index]); the elements are the site's elements offset .. offset + n.
template <typename T>
void BlockRecon<T>::QuantizeKinds(int site, const BlockTrainParams<T>& p, int scale_index, T* data,
                                  int64_t offset, int64_t n) {
  const ActSpec& s = act_[site];
  if (s.kind == ActQuant::Kind::kNone) return;
  ActSave& sv = save_[site];
  const T scale = p.act_scale[site][static_cast<size_t>(scale_index)];
  T* dxdx = sv.dxdx.data() + offset;
  T* dxds = sv.dxds.data() + offset;
  SteRecord<T>* rec = mode_ == SteMode::kNormal ? nullptr : sv.rec.data() + offset;
  if (mode_ != SteMode::kReplay) {  // the training path: ste_batch.h, same bytes as per element
    if (s.kind == ActQuant::Kind::kUniform) {
      const int32_t zp = s.head_zp.empty() ? s.zp : s.head_zp[static_cast<size_t>(scale_index)];
      if constexpr (std::is_same_v<T, float>) {
        if (rec == nullptr) {  // training: the run-time dispatched kernel (same bytes)
          static const UniformSteBatchF32Fn kUniform = SelectUniformSteBatchF32();
          kUniform(data, n, scale, zp, s.cmin, s.cmax, dxdx, dxds);
          return;
        }
      }
      UniformSteBatch(data, n, scale, zp, s.cmin, s.cmax, dxdx, dxds, rec);
    } else {
      if constexpr (std::is_same_v<T, float>) {
        if (rec == nullptr) {  // training: the run-time dispatched kernel (same bytes)
          static const LogSteBatchF32Fn kLog = SelectLogSteBatchF32();
          kLog(data, n, scale, s.bits, s.num, s.den, s.shift, s.folded, s.levels.data(),
               s.log_th.data(), dxdx, dxds);
          return;
        }
      }
      LogSteBatch(data, n, scale, s.bits, s.num, s.den, s.shift, s.folded, s.levels.data(), dxdx,
                  dxds, rec);
    }
    return;
  }
  // Replaying a recorded rounding (the gradient checks' frozen surrogate).
  if (s.kind == ActQuant::Kind::kUniform) {
    const int32_t zp = s.head_zp.empty() ? s.zp : s.head_zp[static_cast<size_t>(scale_index)];
    for (int64_t i = 0; i < n; ++i) {
      data[i] = UniformSte(data[i], scale, zp, s.cmin, s.cmax, &dxdx[i], &dxds[i], &rec[i], true);
    }
  } else {
    for (int64_t i = 0; i < n; ++i) {
      data[i] = LogSte(data[i], scale, s.bits, s.num, s.den, s.shift, s.folded, &dxdx[i],
                       &dxds[i], &rec[i], true);
    }
  }
}

#define ADALOG_INSTANTIATE(T)                                                                   \
  template void BlockRecon<T>::Quantize(int, const BlockTrainParams<T>&, int, T*, int64_t,       \
                                        int64_t);                                              \
  template void BlockRecon<T>::QuantizeKinds(int, const BlockTrainParams<T>&, int, T*, int64_t,  \
                                             int64_t);
ADALOG_INSTANTIATE(float)
ADALOG_INSTANTIATE(double)
#undef ADALOG_INSTANTIATE

}  // namespace adalog::search
