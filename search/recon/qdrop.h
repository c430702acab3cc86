// QDrop (Wei et al., "QDrop: Randomly Dropping Quantization for Extremely Low-bit Post-Training
// Quantization", ICLR 2022), the option `adalog quantize --optimize-qdrop P` (docs/method.md §10):
// while a unit is reconstructed, each element of each activation quantizer's output is, with
// probability P, replaced by its unquantized input (value x, dx^/dx = 1, dx^/ds = 0), drawn anew
// every iteration. The learned rounding then has to work with partly quantized activations, which
// the paper shows flattens the optimum and helps at low bits. P = 0 is the official method.
//
// The draw is a hash of (iteration key, site, element index), not a sequential generator, so the
// mask is the same for any thread split and in the gradient checks' record / replay passes.
#pragma once

#include <cstdint>

namespace adalog::search {

inline uint64_t SplitMix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

class QDropMask {
 public:
  QDropMask() = default;
  // `prob` in [0, 1]; `key` identifies the iteration (KeyFor).
  static QDropMask FromRaw(uint64_t threshold, uint64_t key) {
    QDropMask m;
    m.threshold_ = threshold;
    m.key_ = key;
    return m;
  }
  QDropMask(double prob, uint64_t key)
      : threshold_(prob <= 0.0 ? 0 : (prob >= 1.0 ? kOne : static_cast<uint64_t>(prob * kOne))),
        key_(key) {}
  bool active() const { return threshold_ != 0; }
  // Whether element `e` of activation site `site` keeps its unquantized value.
  bool Dropped(int site, int64_t e) const {
    const uint64_t h =
        SplitMix64(key_ ^ SplitMix64((static_cast<uint64_t>(site) << 48) ^ static_cast<uint64_t>(e)));
    return (h >> 11) < threshold_;
  }
  uint64_t key() const { return key_; }
  uint64_t threshold() const { return threshold_; }
  // The key of iteration `it` of a unit trained with batch-sampling seed `seed`.
  static uint64_t KeyFor(uint32_t seed, int64_t it) {
    return SplitMix64((static_cast<uint64_t>(seed) << 32) ^ static_cast<uint64_t>(it));
  }

 private:
  static constexpr uint64_t kOne = uint64_t{1} << 53;
  uint64_t threshold_ = 0;  // dropped when the hash's top 53 bits are below it
  uint64_t key_ = 0;
};

// out[i] = QDropMask{with this key and threshold}.Dropped(site, e0 + i) ? 1 : 0, i in [0, n):
// the per-element hashes of a whole run at once. The reference loops over Dropped; the AVX-512 one
// (ste_batch__avx512.cc) does the same 64-bit integer operations on 8 lanes (vpmullq), so the same
// bits (BlockGrad.QDropBitsKernelsAgree). Selected like the other recon kernels
// (ste_batch_kernels.cc).
using QDropBitsFn = void (*)(uint64_t key, uint64_t threshold, int site, int64_t e0, int64_t n,
                             uint8_t* out);
void QDropBitsRef(uint64_t key, uint64_t threshold, int site, int64_t e0, int64_t n, uint8_t* out);
void QDropBitsAvx512(uint64_t key, uint64_t threshold, int site, int64_t e0, int64_t n,
                     uint8_t* out);
QDropBitsFn SelectQDropBits();

}  // namespace adalog::search
