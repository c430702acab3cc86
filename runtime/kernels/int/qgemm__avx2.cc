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

namespace {

// One MR x 16 tile of Matmul1ShortKAvx2: `steps` dwords of K, int16 sums in registers (the caller
// checked the bound), then the epilogue; `cols` (1..16) columns of the panel are stored.
template <int MR>
__attribute__((noinline)) void ShortKTile(const uint8_t* q, int64_t ldq, int m, const int8_t* panel,
                                          int steps, const int32_t* bias, float alpha, float* s,
                                          int64_t lds, int cols) {
  __m256i acc[2 * MR];
#pragma GCC unroll 12
  for (int i = 0; i < 2 * MR; ++i) acc[i] = _mm256_setzero_si256();
  const uint8_t* rows[MR];
  for (int r = 0; r < MR; ++r) rows[r] = q + (m + r) * ldq;
  for (int t = 0; t < steps; ++t) {
    const __m256i b0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(panel + 64 * t));
    const __m256i b1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(panel + 64 * t + 32));
#pragma GCC unroll 6
    for (int r = 0; r < MR; ++r) {
      const __m256i a = avx2::Bcast(rows[r] + 4 * t);
      acc[2 * r] = avx2::AddInPlace16(acc[2 * r], _mm256_maddubs_epi16(a, b0));
      acc[2 * r + 1] = avx2::AddInPlace16(acc[2 * r + 1], _mm256_maddubs_epi16(a, b1));
    }
  }
  const __m256i ones = _mm256_set1_epi16(1);
  const __m256 va = _mm256_set1_ps(alpha), zero = _mm256_setzero_ps();
  alignas(32) int32_t bias16[16] = {};
  std::memcpy(bias16, bias, sizeof(int32_t) * static_cast<size_t>(cols));
  const __m256i bias0 = _mm256_load_si256(reinterpret_cast<const __m256i*>(bias16));
  const __m256i bias1 = _mm256_load_si256(reinterpret_cast<const __m256i*>(bias16 + 8));
#pragma GCC unroll 6
  for (int r = 0; r < MR; ++r) {
    const __m256i v0 = _mm256_add_epi32(_mm256_madd_epi16(acc[2 * r], ones), bias0);
    const __m256i v1 = _mm256_add_epi32(_mm256_madd_epi16(acc[2 * r + 1], ones), bias1);
    const __m256 y0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(v0), va, zero);
    const __m256 y1 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(v1), va, zero);
    float* out = s + (m + r) * lds;
    if (cols == 16) {
      _mm256_storeu_ps(out, y0);
      _mm256_storeu_ps(out + 8, y1);
    } else {
      alignas(32) float tmp[16];
      _mm256_store_ps(tmp, y0);
      _mm256_store_ps(tmp + 8, y1);
      std::memcpy(out, tmp, sizeof(float) * static_cast<size_t>(cols));
    }
  }
}

}  // namespace

bool Matmul1ShortKAvx2(const uint8_t* q, int64_t ldq, int tq, const PackedS8& b,
                       const int32_t* col_acc_bias, float alpha, float* s, int64_t lds) {
  if (b.k % 4 != 0 || tq <= 0) return false;
  const int steps = b.k / 4;
  const int qmax = avx2::MaxRowsU8(q, ldq, 0, tq, b.k);
  if (avx2::MaddChunk(qmax, b.max_abs) < steps) return false;
  constexpr int kMr = 6;
  const int64_t panel_bytes = int64_t{b.kp} * 16;
  for (int v = 0; v < (b.n + 15) / 16; ++v) {
    const int8_t* panel = b.data.data() + v * panel_bytes;
    const int cols = b.n - 16 * v < 16 ? b.n - 16 * v : 16;
    const int32_t* bias = col_acc_bias + 16 * v;
    float* sv = s + 16 * v;
    int m = 0;
    for (; m + kMr <= tq; m += kMr) ShortKTile<kMr>(q, ldq, m, panel, steps, bias, alpha, sv, lds, cols);
    switch (tq - m) {
      case 1: ShortKTile<1>(q, ldq, m, panel, steps, bias, alpha, sv, lds, cols); break;
      case 2: ShortKTile<2>(q, ldq, m, panel, steps, bias, alpha, sv, lds, cols); break;
      case 3: ShortKTile<3>(q, ldq, m, panel, steps, bias, alpha, sv, lds, cols); break;
      case 4: ShortKTile<4>(q, ldq, m, panel, steps, bias, alpha, sv, lds, cols); break;
      case 5: ShortKTile<5>(q, ldq, m, panel, steps, bias, alpha, sv, lds, cols); break;
      default: break;
    }
  }
  return true;
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
