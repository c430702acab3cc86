// qgemm_u8s8_s32_maddubsw__avx2, qgemm_u8s8_s32_nibbles__avx2 and qgemm_s16s16_s32__avx2: the
// AVX2 integer GEMMs (vpmaddubsw / vpmaddwd microkernels of qgemm_avx2_impl.h, exactness proven
// there), and the AVX2 pack of q@k^T's key operand. Called only after a run-time check.
#include <immintrin.h>

#include <cstring>

#include "runtime/kernels/int/int_kernels.h"
#include "runtime/kernels/int/qgemm_avx2_impl.h"

namespace adalog::intk {

void QgemmU8S8MaddAvx2(const uint8_t* a, int64_t lda, int m0, int m1, const PackedS8& b,
                       const Epilogue& ep, float* c, int64_t ldc) {
  avx2::GemmU8S8<avx2::U8Kind::kMadd>(a, lda, m0, m1, b, ep, c, ldc);
}

void QgemmU8S8NibblesAvx2(const uint8_t* a, int64_t lda, int m0, int m1, const PackedS8& b,
                          const Epilogue& ep, float* c, int64_t ldc) {
  avx2::GemmU8S8<avx2::U8Kind::kNibbles>(a, lda, m0, m1, b, ep, c, ldc);
}

void QgemmS16S16Avx2(const int16_t* a, int64_t lda, int m0, int m1, const PackedS16& b,
                     const Epilogue& ep, float* c, int64_t ldc) {
  avx2::GemmS16S16<false>(a, lda, m0, m1, b, ep, c, ldc);
}

void MinMaxU8RowsAvx2(const uint8_t* b, int64_t ldb, int n, int k, int32_t* mn, int32_t* mx) {
  __m256i vmin = _mm256_set1_epi8(static_cast<char>(0xFF)), vmax = _mm256_setzero_si256();
  int smin = 255, smax = 0;
  for (int j = 0; j < n; ++j) {
    const uint8_t* row = b + j * ldb;
    int t = 0;
    for (; t + 32 <= k; t += 32) {
      const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + t));
      vmin = _mm256_min_epu8(vmin, v);
      vmax = _mm256_max_epu8(vmax, v);
    }
    for (; t < k; ++t) {
      smin = row[t] < smin ? row[t] : smin;
      smax = row[t] > smax ? row[t] : smax;
    }
  }
  alignas(32) uint8_t lo[32], hi[32];
  _mm256_store_si256(reinterpret_cast<__m256i*>(lo), vmin);
  _mm256_store_si256(reinterpret_cast<__m256i*>(hi), vmax);
  for (int i = 0; i < 32; ++i) {
    smin = lo[i] < smin ? lo[i] : smin;
    smax = hi[i] > smax ? hi[i] : smax;
  }
  *mn = n > 0 && k > 0 ? smin : 0;
  *mx = n > 0 && k > 0 ? smax : 0;
}

// As PackU8MinusAvx512: rows b[j][0..k) -> s8 (b - sub) panels [n/16][kp/4][16][4] (pads 0),
// row_sum[j] = sum_t (b[j][t] - sub); p->max_abs = max_abs (the caller's bound on |b - sub|).
void PackU8MinusAvx2(const uint8_t* b, int64_t ldb, int n, int k, int32_t sub, int32_t max_abs,
                     PackedS8* p, int32_t* row_sum) {
  p->n = n;
  p->k = k;
  p->kp = (k + 3) / 4 * 4;
  p->max_abs = max_abs;
  const int64_t panel_bytes = int64_t{p->kp} * 16;
  const __m256i vsub = _mm256_set1_epi8(static_cast<char>(sub));
  const __m256i lane = _mm256_setr_epi8(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
                                        17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31);
  alignas(32) int32_t line[8];
  alignas(32) uint8_t tail[32];
  for (int j = 0; j < (n + 15) / 16 * 16; ++j) {
    int8_t* col = p->data.data() + int64_t{j / 16} * panel_bytes + (j % 16) * 4;
    if (j >= n) {  // pad columns of the last panel
      for (int s = 0; s < p->kp / 4; ++s) std::memset(col + int64_t{s} * 64, 0, 4);
      continue;
    }
    int64_t sum = 0;
    for (int t = 0; t < p->kp; t += 32) {
      const int rem = k - t;
      __m256i v;
      if (rem >= 32) {
        v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + j * ldb + t));
      } else {
        std::memset(tail, 0, sizeof tail);
        std::memcpy(tail, b + j * ldb + t, static_cast<size_t>(rem));
        v = _mm256_load_si256(reinterpret_cast<const __m256i*>(tail));
      }
      sum += avx2::RowSumPart(v);
      sum -= int64_t{sub} * (rem >= 32 ? 32 : rem);
      // b - sub (wraps to the exact value when it fits s8, which the caller ensures); bytes at
      // positions >= k are 0.
      const __m256i valid = _mm256_cmpgt_epi8(_mm256_set1_epi8(static_cast<char>(rem >= 32 ? 32 : rem)), lane);
      _mm256_store_si256(reinterpret_cast<__m256i*>(line),
                         _mm256_and_si256(_mm256_sub_epi8(v, vsub), valid));
      const int dwords = (p->kp - t) / 4 < 8 ? (p->kp - t) / 4 : 8;
      for (int s = 0; s < dwords; ++s) std::memcpy(col + int64_t{t / 4 + s} * 64, &line[s], 4);
    }
    row_sum[j] = static_cast<int32_t>(sum);
  }
}

}  // namespace adalog::intk
